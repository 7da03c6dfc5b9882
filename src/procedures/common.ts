// Helpers shared by both procedures.
import type { ServerSpec } from "../config";
import type { ConnectString, MemberLine, Membership, ServerId } from "../types";

export function memberLines(
    servers: { id: ServerId; address: string }[],
    ports: { peer: number; election: number },
): MemberLine[] {
    return servers
        .map((s) => ({ id: s.id, address: s.address, peerPort: ports.peer, electionPort: ports.election }))
        .sort((a, b) => a.id - b.id);
}

export function hostMembership(
    servers: ServerSpec[],
    ports: { peer: number; election: number },
    quorumListenOnAllIPs: boolean,
): Membership {
    return { members: memberLines(servers.map((s) => ({ id: s.id, address: s.host })), ports), quorumListenOnAllIPs };
}

export function connectString(
    servers: { id: ServerId; address: string }[],
    port: number,
    chroot: string | undefined,
): ConnectString {
    return { servers: servers.map((s) => ({ id: s.id, address: s.address, port })), chroot };
}

/** `a:2181,b:2181/chroot`: the form ZooKeeper clients and Kafka's `zookeeper.connect` take. */
export function formatConnect(c: ConnectString): string {
    const hostPort = (a: string, p: number) => (a.includes(":") ? `[${a}]:${p}` : `${a}:${p}`);
    return c.servers.map((s) => hostPort(s.address, s.port)).join(",") + (c.chroot ?? "");
}

/** The zoo.cfg form of a membership, one line each, as the host scripts write it. */
export function membershipLines(m: Membership): string[] {
    return [
        ...m.members.map((l) => `server.${l.id}=${l.address.includes(":") ? `[${l.address}]` : l.address}:${l.peerPort}:${l.electionPort}`),
        `quorumListenOnAllIPs=${m.quorumListenOnAllIPs}`,
    ];
}

export function sameMembership(a: Membership, b: Membership): boolean {
    return membershipLines(a).join("\n") === membershipLines(b).join("\n");
}
