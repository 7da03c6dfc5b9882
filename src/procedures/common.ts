// Helpers the procedures' rooms share: memberships, connect strings and the config checks that
// every procedure with ZooKeeper servers makes.
import { connectStringOf, type ConnectString } from "../format/connect-string";
import { ensemblePath, type ConfigIssue } from "../config/errors";
import type { EnsembleBase, ServerSpec } from "../config/schema";
import type { MemberLine, Membership, ServerId } from "../types";

export function memberLines(servers: { id: ServerId; address: string }[], ports: { peer: number; election: number }): MemberLine[] {
    return servers
        .map((s) => ({ id: s.id, address: s.address, peerPort: ports.peer, electionPort: ports.election }))
        .sort((a, b) => a.id - b.id);
}

export function hostMembership(servers: ServerSpec[], ports: { peer: number; election: number }, quorumListenOnAllIPs: boolean): Membership {
    return { members: memberLines(servers.map((s) => ({ id: s.id, address: s.host })), ports), quorumListenOnAllIPs };
}

/** The connect string of `servers` (their `host`) on the client port, with an optional chroot. */
export function serversConnect(servers: { id: ServerId; host: string }[], port: number, chroot: string | undefined): ConnectString {
    return connectStringOf(servers, port, chroot);
}

/** An ensemble needs an odd number of at least 3 servers (or one, for a dev server that says so). */
export function ensembleSizeIssue(e: EnsembleBase, group: string, n: number): ConfigIssue | undefined {
    if (n === 1 && e.allowSingleServer) {
        return undefined;
    }
    if (n < 3 || n % 2 === 0) {
        return {
            path: ensemblePath(e, `.${group}`),
            reason:
                `${n} server${n === 1 ? "" : "s"}: an ensemble needs an odd number of at least 3 servers ` +
                `(an even one tolerates no more failures than one server fewer)` +
                (n === 1 ? "; a single dev server needs allowSingleServer: true" : ""),
        };
    }
    return undefined;
}

/** A myid used twice across the given server lists (one ensemble). */
export function duplicateIds(e: EnsembleBase, groups: [string, ServerSpec[]][]): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    const seen = new Map<number, string>();
    for (const [group, list] of groups) {
        list.forEach((s, i) => {
            const where = `${group}[${i}]`;
            const prev = seen.get(s.id);
            if (prev !== undefined) {
                issues.push({ path: ensemblePath(e, `.${where}.id`), reason: `myid ${s.id} is used twice (also ${prev})` });
            } else {
                seen.set(s.id, where);
            }
        });
    }
    return issues;
}

/** A configured leader must be one of the ensemble's servers. */
export function leaderIssue(e: EnsembleBase, servers: ServerSpec[]): ConfigIssue[] {
    return e.leader !== undefined && !servers.some((s) => s.id === e.leader)
        ? [{ path: ensemblePath(e, ".leader"), reason: `myid ${e.leader} is not a server of this ensemble` }]
        : [];
}

/** The warning of a rolling restart whose leader could not be read (myid order, the highest last). */
export function unknownLeaderWarning(e: { name: string }, leader: { detail?: string }): string {
    return (
        `${e.name}: the current leader could not be read with srvr from here (${leader.detail ?? "unknown"}); ` +
        "restarting in myid order, the highest last (ZooKeeper's election favours the highest myid), " +
        "or set the ensemble's `leader` in the config"
    );
}

/** The servers of `groups` as SSH hosts, each with its config path (`.source[0]`). */
export function groupHosts(groups: [string, ServerSpec[]][]): { path: string; spec: ServerSpec }[] {
    return groups.flatMap(([group, list]) => list.map((spec, i) => ({ path: `.${group}[${i}]`, spec })));
}
