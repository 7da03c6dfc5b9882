// The local Kubernetes' command line (as root), beside a fleet made by rehearsal/fleet-cli.ts:
//   node --import tsx rehearsal/kubernetes/cluster-cli.ts start <name> --fleet <fleet> [--zookeeper <version>]
//   node --import tsx rehearsal/kubernetes/cluster-cli.ts status <name>
//   node --import tsx rehearsal/kubernetes/cluster-cli.ts kubectl <name> <kubectl arguments...>
//   node --import tsx rehearsal/kubernetes/cluster-cli.ts stop <name>       (keeps the data)
//   node --import tsx rehearsal/kubernetes/cluster-cli.ts destroy <name>    (safe to run twice)
// Exit codes: 0 done, 1 failed, 2 usage.
import { loadFleet } from "../fleet";
import { destroyCluster, kubectl, loadCluster, startCluster, stopCluster } from "./cluster";

const USAGE = `usage: cluster-cli <command> <name> ...
  start <name> --fleet <fleet> [--zookeeper <version>]   starts (or completes) a single-node cluster beside the fleet
  status <name>                                         addresses, ranges, pids, kubeconfig
  kubectl <name> <arguments...>                         kubectl with the cluster's kubeconfig
  stop <name>                                           stops its processes and pods; keeps its data
  destroy <name>                                        removes all of it
`;

async function main(argv: string[]): Promise<number> {
    const [command, name, ...rest] = argv;
    if (!command || !name) {
        process.stderr.write(USAGE);
        return 2;
    }
    const log = (line: string) => console.log(`[${name}] ${line}`);
    switch (command) {
        case "start": {
            let fleetName: string | undefined;
            let zookeeper: string | undefined;
            for (let i = 0; i < rest.length; i++) {
                if (rest[i] === "--fleet") fleetName = rest[++i];
                else if (rest[i] === "--zookeeper") zookeeper = rest[++i];
                else {
                    process.stderr.write(`unknown argument ${rest[i]}\n${USAGE}`);
                    return 2;
                }
            }
            if (!fleetName) {
                process.stderr.write(`start needs --fleet <fleet>\n${USAGE}`);
                return 2;
            }
            const fleet = loadFleet(fleetName);
            if (!fleet) throw new Error(`no fleet ${fleetName} (create it with rehearsal/fleet-cli.ts create ${fleetName})`);
            const t0 = Date.now();
            const c = await startCluster(name, { fleet, zookeeperVersion: zookeeper, log });
            console.log(`cluster ${c.name} up in ${((Date.now() - t0) / 1000).toFixed(1)} s: API ${c.server}, kubeconfig ${c.kubeconfig}`);
            return 0;
        }
        case "status": {
            const c = loadCluster(name);
            if (!c) {
                console.log(`no cluster ${name}`);
                return 1;
            }
            console.log(JSON.stringify({ ...c, images: Object.fromEntries(Object.entries(c.images).map(([k, v]) => [k, `${v.name}@${v.digest}`])) }, null, 2));
            return 0;
        }
        case "kubectl": {
            const c = loadCluster(name);
            if (!c) throw new Error(`no cluster ${name}`);
            const r = await kubectl(c, rest, { timeoutMs: 120_000 });
            process.stdout.write(r.stdout);
            process.stderr.write(r.stderr);
            return r.code === 0 ? 0 : 1;
        }
        case "stop": {
            const problems = await stopCluster(name, { log });
            for (const p of problems) console.error(p);
            return problems.length === 0 ? 0 : 1;
        }
        case "destroy":
            await destroyCluster(name, { log });
            console.log(`cluster ${name} destroyed`);
            return 0;
        default:
            process.stderr.write(USAGE);
            return 2;
    }
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
        console.error((e as Error).message);
        process.exit(1);
    },
);
