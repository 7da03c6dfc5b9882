// The config rules about hosts and what lives on them, stated once for every procedure that runs
// ZooKeeper servers (the rooms' `managesServers`). Hosts are compared as the resolver sees them
// (src/config/hosts.ts), and, at preview, as DNS resolves them (`resolvedHostIssues`):
// - one server per host in an ensemble, one SSH host (machine) per server of an ensemble;
// - one ensemble per host:clientPort;
// - an ensemble's client, peer and election ports differ;
// - two ensembles on one host share nothing a server owns there: zoo.cfg, dataDir, the myid file,
//   dataLogDir, the dynamic config file, the service commands, a port.
import { lookup } from "node:dns/promises";
import type { HostSettings } from "../types";
import { procedureOf, type EnsembleConfig } from "../procedures/registry";
import { ensemblePath, type ConfigIssue } from "./errors";
import { canonicalHost, isAddress } from "./hosts";

/** The keys a host is known by: its canonical form, and at preview the addresses its name resolves to. */
export type HostIdentity = (host: string) => string[];

export const spelledIdentity: HostIdentity = (h) => [canonicalHost(h)];

interface Placed {
    e: EnsembleConfig;
    group: string;
    host: string;
    /** Where pulumi SSHes to: sshHost, else host. */
    ssh: string;
    hostPath: string;
    /** The config path of the SSH host: `.sshHost` when set, else `.host`. */
    sshPath: string;
}

function placedOf(e: EnsembleConfig): Placed[] {
    return procedureOf(e)
        .groups(e)
        .flatMap(([group, list]) =>
            list.map((s, i) => ({
                e,
                group,
                host: s.host,
                ssh: s.sshHost ?? s.host,
                hostPath: ensemblePath(e, `.${group}[${i}].host`),
                sshPath: ensemblePath(e, `.${group}[${i}].${s.sshHost !== undefined ? "sshHost" : "host"}`),
            })),
        );
}

/** How two spellings are one host: "" when written alike, else the spelling or the address they share. */
function sameHost(a: string, b: string, identity: HostIdentity): string | undefined {
    if (a === b) return "";
    const ka = identity(a);
    const kb = new Set(identity(b));
    const common = ka.find((k) => kb.has(k));
    if (common === undefined) return undefined;
    if (canonicalHost(a) === canonicalHost(b)) return ` (written ${b} there: the same host)`;
    return ` (${a} and ${b} are both ${common} to the resolver here)`;
}

/** What a server of `e` owns on its host, by name, for the comparison across ensembles. */
function ownedOnHost(e: EnsembleConfig): { label: string; value: string; dir?: boolean }[] {
    const h: HostSettings = e.host;
    const out: { label: string; value: string; dir?: boolean }[] = [
        { label: "zoo.cfg", value: h.paths.configFile },
        { label: "dataDir", value: h.paths.dataDir, dir: true },
        { label: "myid file", value: h.paths.myidFile },
    ];
    if (h.paths.dataLogDir) out.push({ label: "dataLogDir", value: h.paths.dataLogDir, dir: true });
    if (h.paths.dynamicConfigFile) out.push({ label: "dynamic config file", value: h.paths.dynamicConfigFile });
    return out;
}

const within = (a: string, b: string) => a === b || a.startsWith(`${b.replace(/\/+$/, "")}/`) || b.startsWith(`${a.replace(/\/+$/, "")}/`);

/** What two ensembles on one host would share (empty: nothing). */
function sharedOnHost(a: EnsembleConfig, b: EnsembleConfig): string[] {
    const shared: string[] = [];
    for (const x of ownedOnHost(a)) {
        for (const y of ownedOnHost(b)) {
            if (x.value === y.value || (x.dir && y.dir && within(x.value, y.value))) {
                shared.push(x.label === y.label && x.value === y.value ? `${x.label} ${x.value}` : `${x.label} ${x.value} / ${y.label} ${y.value}`);
            }
        }
    }
    for (const cmd of ["start", "stop", "restart", "disable"] as const) {
        if (a.host.service[cmd] === b.host.service[cmd]) shared.push(`service ${cmd} command \`${a.host.service[cmd]}\``);
    }
    const portsA = Object.entries(a.ports);
    for (const [kb, pb] of Object.entries(b.ports)) {
        const hit = portsA.find(([, pa]) => pa === pb);
        if (hit) shared.push(hit[0] === kb ? `${kb} port ${pb}` : `port ${pb} (${hit[0]} port of "${a.name}", ${kb} port of "${b.name}")`);
    }
    return shared;
}

/** An ensemble's client, peer and election ports must differ: one server binds all three. */
function portIssues(e: EnsembleConfig): ConfigIssue[] {
    const { client, peer, election } = e.ports;
    const pairs: [string, number, string, number][] = [
        ["clientPort", client, "peerPort", peer],
        ["clientPort", client, "electionPort", election],
        ["peerPort", peer, "electionPort", election],
    ];
    return pairs
        .filter(([, a, , b]) => a === b)
        .map(([ka, a, kb]) => ({
            path: ensemblePath(e, `.zookeeper.${kb}`),
            reason: `${kb} ${a} equals ${ka}: a server binds its client, peer and election ports each on its own (set here or in zkmigrate:defaults.zookeeper)`,
        }));
}

/**
 * The host rules across a fleet (pure, for table tests). `identity` says which keys a host is known
 * by: the canonical spelling (config check), plus the resolved addresses (preview).
 */
export function hostRules(ensembles: EnsembleConfig[], identity: HostIdentity = spelledIdentity): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    const managed = ensembles.filter((e) => procedureOf(e).managesServers);
    const placed = new Map(managed.map((e) => [e, placedOf(e)]));
    for (const e of managed) {
        issues.push(...portIssues(e));
        // One ensemble: a host, and a machine, per server.
        const seen: Placed[] = [];
        for (const p of placed.get(e)!) {
            for (const q of seen) {
                const how = sameHost(p.host, q.host, identity);
                if (how !== undefined) {
                    issues.push({
                        path: p.hostPath,
                        reason: how === "" && p.group !== q.group ? `host ${p.host} is in both the ${q.group} and the ${p.group}` : `host ${p.host} is listed twice (also ${q.hostPath})${how}`,
                    });
                    break;
                }
                const viaSsh = sameHost(p.ssh, q.ssh, identity);
                if (viaSsh !== undefined) {
                    issues.push({
                        path: p.sshPath,
                        reason:
                            `SSH host ${p.ssh} is also the SSH host of ${q.sshPath}${viaSsh}: two servers of one ensemble cannot share a machine ` +
                            "(they would share its zoo.cfg, dataDir and service)",
                    });
                    break;
                }
            }
            seen.push(p);
        }
    }
    // Across ensembles: a host:clientPort is one server; a host shared by two ensembles shares nothing else.
    managed.forEach((b, j) => {
        for (const a of managed.slice(0, j)) {
            let sharing = false;
            for (const pb of placed.get(b)!) {
                const dup = a.ports.client === b.ports.client ? placed.get(a)!.find((pa) => sameHost(pb.host, pa.host, identity) !== undefined) : undefined;
                if (dup) {
                    issues.push({ path: pb.hostPath, reason: `host ${pb.host} is listed twice (also ${dup.hostPath})${sameHost(pb.host, dup.host, identity)}` });
                    continue;
                }
                if (sharing) continue;
                for (const pa of placed.get(a)!) {
                    const how = sameHost(pb.host, pa.host, identity);
                    const machine = how ?? sameHost(pb.ssh, pa.ssh, identity);
                    if (machine === undefined) continue;
                    const shared = sharedOnHost(a, b);
                    if (shared.length > 0) {
                        const where =
                            how !== undefined
                                ? `host ${pb.host} also runs a server of ensemble "${a.name}" (${pa.hostPath})${how}`
                                : `SSH host ${pb.ssh} also runs a server of ensemble "${a.name}" (${pa.sshPath})${machine}`;
                        issues.push({
                            path: how !== undefined ? pb.hostPath : pb.sshPath,
                            reason:
                                `${where}, and both would use ${shared.join(", ")}: two ensembles on one host need their own zoo.cfg, dataDir, ` +
                                "myid file, service and ports (override zookeeper.* and service in one of them)",
                        });
                        sharing = true;
                    }
                    break;
                }
            }
        }
    });
    return issues;
}

/** Resolves names with a bound; a name that does not resolve in time maps to nothing (best effort). */
export async function resolveNames(names: string[], timeoutMs: number, resolve: (name: string) => Promise<string[]> = lookupAll): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    await Promise.all(
        [...new Set(names)].map(async (name) => {
            let timer: NodeJS.Timeout | undefined;
            const bound = new Promise<string[]>((r) => {
                timer = setTimeout(() => r([]), timeoutMs);
            });
            const addresses = await Promise.race([resolve(name).catch(() => [] as string[]), bound]);
            clearTimeout(timer);
            out.set(name, addresses);
        }),
    );
    return out;
}

async function lookupAll(name: string): Promise<string[]> {
    return (await lookup(name, { all: true })).map((a) => a.address);
}

/**
 * The host rules again with every name resolved (at preview): a name and an address of one server,
 * or two names of one host, are found only where they resolve. Returns the problems that the
 * spelling alone did not show. Each lookup is bounded by `timeoutMs`; names that do not resolve are
 * skipped (the preflight checks that they resolve on the hosts).
 */
export async function resolvedHostIssues(ensembles: EnsembleConfig[], timeoutMs: number, resolve?: (name: string) => Promise<string[]>): Promise<ConfigIssue[]> {
    const managed = ensembles.filter((e) => procedureOf(e).managesServers);
    const names = managed.flatMap(placedOf).flatMap((p) => [p.host, p.ssh]).filter((h) => !isAddress(h));
    if (names.length === 0) return [];
    const resolved = await resolveNames(names, timeoutMs, resolve);
    const identity: HostIdentity = (h) => [canonicalHost(h), ...(resolved.get(h) ?? []).map(canonicalHost)];
    const known = new Set(hostRules(ensembles).map((i) => `${i.path}\n${i.reason}`));
    return hostRules(ensembles, identity).filter((i) => !known.has(`${i.path}\n${i.reason}`));
}
