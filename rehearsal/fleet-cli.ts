// The local fleet's command line (as root):
//   node --import tsx rehearsal/fleet-cli.ts create <name> [--ensemble NAME:SERVERS[:VERSION[:FIRSTID]]]... [--version V] [--no-start] [--json]
//   node --import tsx rehearsal/fleet-cli.ts status [<name>] [--json]
//   node --import tsx rehearsal/fleet-cli.ts destroy <name>...
//   node --import tsx rehearsal/fleet-cli.ts ssh <name> <host> [command...]     (prints the ssh command without one)
//   node --import tsx rehearsal/fleet-cli.ts versions
// Exit codes: 0 done, 1 failed, 2 usage.
import { spawnSync } from "node:child_process";
import {
    createFleet,
    destroyFleet,
    fleetStatus,
    host,
    listFleets,
    loadFleet,
    sshArgs,
    stackHostConfig,
    type FleetEnsembleSpec,
    type FleetSpec,
} from "./fleet";
import { DEFAULT_ZK_VERSION, ZK_VERSIONS, findCommand } from "./zookeeper";

const USAGE = `usage: fleet-cli <command> ...
  create <name> [--ensemble NAME:SERVERS[:VERSION[:FIRSTID]]]... [--version V] [--no-start] [--health-timeout S] [--json]
        creates (or completes) a fleet; default one ensemble "zk" of 3 servers running ZooKeeper ${DEFAULT_ZK_VERSION}
  status [<name>] [--json]      hosts, addresses, pids, ZooKeeper modes (all fleets without a name)
  destroy <name>...             kills the fleet's processes, removes namespaces, bridge, rules and files
  ssh <name> <host> [command]   runs a command on a host over SSH (prints the ssh command line without one)
  versions                      the ZooKeeper versions by line (Maven Central)
`;

class UsageError extends Error {}

function parseEnsemble(s: string): FleetEnsembleSpec {
    const [name, servers, version, firstId] = s.split(":");
    if (!name || !servers || !/^\d+$/.test(servers) || (firstId !== undefined && !/^\d+$/.test(firstId))) {
        throw new UsageError(`--ensemble ${s}: expected NAME:SERVERS[:VERSION[:FIRSTID]], e.g. source:3:3.8 or target:3:3.9.5:4`);
    }
    return {
        name,
        servers: Number(servers),
        ...(version ? { version } : {}),
        ...(firstId ? { firstId: Number(firstId) } : {}),
    };
}

async function main(argv: string[]): Promise<number> {
    const [cmd, ...rest] = argv;
    const json = rest.includes("--json");
    const args = rest.filter((a) => a !== "--json");
    const log = json ? () => undefined : (l: string) => console.error(`fleet: ${l}`);
    switch (cmd) {
        case "create": {
            const name = args[0];
            if (!name || name.startsWith("-")) throw new UsageError("create needs a fleet name");
            const ensembles: FleetEnsembleSpec[] = [];
            let version: string | undefined;
            let start = true;
            let health: number | undefined;
            for (let i = 1; i < args.length; i++) {
                const a = args[i];
                if (a === "--ensemble") ensembles.push(parseEnsemble(args[++i] ?? ""));
                else if (a === "--version") version = args[++i];
                else if (a === "--no-start") start = false;
                else if (a === "--health-timeout") health = Number(args[++i]);
                else throw new UsageError(`create: unknown argument ${a}`);
            }
            if (ensembles.length === 0) ensembles.push({ name: "zk", servers: 3 });
            const spec: FleetSpec = {
                name,
                ensembles: ensembles.map((e) => (start ? e : { ...e, start: false })),
                ...(version ? { version } : {}),
                ...(health ? { healthTimeoutSeconds: health } : {}),
            };
            const f = await createFleet(spec, { log });
            if (json) {
                console.log(JSON.stringify({ fleet: f, stackConfig: stackHostConfig(f) }, null, 2));
            } else {
                console.log(`fleet ${f.name}: ${f.hosts.length} hosts on ${f.bridge} ${f.subnet}, state ${f.stateFile}`);
                for (const h of f.hosts) console.log(`  ${h.name.padEnd(14)} myid ${String(h.id).padEnd(3)} ${h.address.padEnd(15)} ZooKeeper ${h.version}`);
                console.log(`ssh: ssh -i ${f.sshKey} -o UserKnownHostsFile=${f.knownHosts} -o StrictHostKeyChecking=yes root@<address>`);
                console.log(`host keys for a stack: pulumi config set zkmigrate:sshKnownHosts ${f.knownHosts}`);
            }
            return 0;
        }
        case "status": {
            const names = args.length > 0 ? args : listFleets();
            const out: Record<string, unknown> = {};
            let ok = true;
            for (const n of names) {
                const f = loadFleet(n);
                if (!f) {
                    ok = false;
                    out[n] = null;
                    if (!json) console.log(`fleet ${n}: not found`);
                    continue;
                }
                const st = await fleetStatus(f);
                out[n] = { subnet: f.subnet, bridge: f.bridge, dir: f.dir, hosts: st };
                if (!json) {
                    console.log(`fleet ${n}: ${f.subnet} on ${f.bridge}, state ${f.stateFile}`);
                    for (const s of st) {
                        console.log(
                            `  ${s.name.padEnd(14)} ${s.address.padEnd(15)} ZooKeeper ${s.version.padEnd(7)} netns ${s.netns ? "yes" : "NO "}  ` +
                                `sshd ${s.sshd ? String(s.sshdPid).padEnd(7) : "down   "} zk ${s.zkPid !== undefined ? String(s.zkPid).padEnd(7) : "down   "} ` +
                                `${s.mode ?? `(${s.detail ?? "no answer"})`}`,
                        );
                    }
                }
            }
            if (json) console.log(JSON.stringify(out, null, 2));
            if (!json && names.length === 0) console.log("no fleets");
            return ok ? 0 : 1;
        }
        case "destroy": {
            if (args.length === 0) throw new UsageError("destroy needs a fleet name");
            for (const n of args) {
                await destroyFleet(n, { log });
                if (!json) console.log(`fleet ${n}: destroyed`);
            }
            return 0;
        }
        case "ssh": {
            const [name, hostName, ...command] = args;
            if (!name || !hostName) throw new UsageError("ssh needs a fleet and a host");
            const f = loadFleet(name);
            if (!f) throw new Error(`fleet ${name} not found`);
            const h = host(f, /^\d+$/.test(hostName) ? Number(hostName) : hostName);
            const a = sshArgs(f, h, command.join(" "));
            if (command.length === 0) {
                console.log(["ssh", ...a.slice(0, -1)].join(" "));
                return 0;
            }
            const r = spawnSync(findCommand("ssh") ?? "ssh", a, { stdio: "inherit" });
            return r.status ?? 1;
        }
        case "versions": {
            if (json) console.log(JSON.stringify({ versions: ZK_VERSIONS, default: DEFAULT_ZK_VERSION }));
            else for (const [line, v] of Object.entries(ZK_VERSIONS)) console.log(`${line}  ${v}${v === DEFAULT_ZK_VERSION ? "  (default)" : ""}`);
            return 0;
        }
        case undefined:
        case "-h":
        case "--help":
        case "help":
            process.stdout.write(USAGE);
            return cmd === undefined ? 2 : 0;
        default:
            throw new UsageError(`unknown command ${cmd}`);
    }
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
        if (e instanceof UsageError) {
            process.stderr.write(`fleet-cli: ${e.message}\n${USAGE}`);
            process.exit(2);
        }
        process.stderr.write(`fleet-cli: ${e.message}\n`);
        process.exit(1);
    },
);
