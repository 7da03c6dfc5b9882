// One source for the ZooKeeper config formats every host sees: the `server.N=` line, the membership
// block between zkmigrate's markers, and the layout of a whole zoo.cfg (hosts' config step, EC2 user
// data, the pods' ConfigMap). Pure text; validation of addresses and ports is the renderers' job.
import type { Membership, ServerId } from "../types";

export const BLOCK_BEGIN = "# BEGIN zkmigrate membership";
export const BLOCK_END = "# END zkmigrate membership";

/** The four-letter words zkmigrate's gates and the pods' probes use; never `*`. */
export const FOUR_LETTER_WHITELIST = "srvr,mntr,conf,ruok";

/**
 * `server.<id>=<address>:<peer>:<election>`, with `:observer` for an observer (issue 13's observer
 * join); IPv6 literals in brackets, as ZooKeeper 3.5+ parses them.
 */
export function serverLine(m: { id: ServerId; address: string; peerPort: number; electionPort: number; observer?: true }): string {
    const address = m.address.includes(":") && !m.address.startsWith("[") ? `[${m.address}]` : m.address;
    return `server.${m.id}=${address}:${m.peerPort}:${m.electionPort}${m.observer ? ":observer" : ""}`;
}

/** Whether `id` is an observer of membership `m` (its own line says `:observer`). */
export function isObserverIn(m: Membership, id: ServerId): boolean {
    return m.members.some((x) => x.id === id && x.observer === true);
}

/** The zoo.cfg lines of a membership: the server lines sorted by myid, then quorumListenOnAllIPs. */
export function membershipLines(m: Membership): string[] {
    return [...[...m.members].sort((a, b) => a.id - b.id).map(serverLine), `quorumListenOnAllIPs=${m.quorumListenOnAllIPs ? "true" : "false"}`];
}

export function sameMembership(a: Membership, b: Membership): boolean {
    return membershipLines(a).join("\n") === membershipLines(b).join("\n");
}

/** The membership between zkmigrate's markers, as the config step writes it (server lines already validated). */
export function membershipBlock(serverLines: string[], quorumListenOnAllIPs: boolean): string[] {
    return [BLOCK_BEGIN, ...serverLines, `quorumListenOnAllIPs=${quorumListenOnAllIPs ? "true" : "false"}`, BLOCK_END];
}

/**
 * Settings every zoo.cfg zkmigrate writes starts from: timing, the four-letter words its gates
 * need, no AdminServer, static membership. Callers add dataDir and clientPort, and may override.
 */
export const ZOO_CFG_BASE: readonly [string, string][] = [
    ["tickTime", "2000"],
    ["initLimit", "10"],
    ["syncLimit", "5"],
];

/**
 * A whole zoo.cfg: comment lines, `key=value` settings in order, then the membership block at the
 * end, exactly as the hosts' config step leaves it (so that step finds such a file "unchanged").
 */
export function renderZooCfg(a: { comments: string[]; settings: Iterable<[string, string]>; serverLines: string[]; quorumListenOnAllIPs: boolean }): string {
    return [...a.comments.map((c) => `# ${c}`), ...[...a.settings].map(([k, v]) => `${k}=${v}`), ...membershipBlock(a.serverLines, a.quorumListenOnAllIPs), ""].join("\n");
}
