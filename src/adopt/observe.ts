// What one server runs, as the adopt probe (src/scripts/adopt.ts) printed it: the membership of
// its config files, its myid, whether it listens and serves (srvr), the membership it runs with
// (conf, ZooKeeper 3.5+, when the whitelist allows it), and whether the ensemble's firewall split
// is on its host. Pure parsing, for table tests.
import type { MemberLine, Membership, ServerId } from "../types";

export type FirewallSeen = { state: "present" | "absent" | "partial" } | { state: "unknown"; reason: string };

export interface Observation {
    id: ServerId;
    /** Where it was reached over SSH. */
    sshHost: string;
    /** Why the probe gave no answer (SSH failed, the script failed); the other fields are then empty. */
    error?: string;
    /** The membership of zoo.cfg (server lines from the dynamic config file when there is one). */
    membership?: Membership;
    /** Why the config's membership could not be read. */
    configProblems: string[];
    /** The content of the myid file ("" when it is missing). */
    myid?: string;
    /** The client port accepts connections on the host. */
    listening: boolean;
    /** srvr's Mode (leader, follower, standalone) when the server serves. */
    mode?: string;
    /** srvr's "Node count". */
    nodeCount?: number;
    /** The first line of srvr's answer when it has no Mode (why it does not serve). */
    srvrProblem?: string;
    /** The membership the server runs with, from `conf` (undefined when conf is refused or has none). */
    runningMembers?: MemberLine[];
    firewall: FirewallSeen;
}

/** Parses one `server.N=address:peer:election[:role][;client]` line (zoo.cfg or conf). */
export function parseServerLine(line: string): { member: MemberLine; role: "participant" | "observer" } | { error: string } {
    const m = /^\s*server\.(\d+)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (!m) return { error: `not a server line: ${line}` };
    const id = Number(m[1]);
    const value = m[2].split(";")[0];
    let address: string;
    let rest: string;
    if (value.startsWith("[")) {
        const end = value.indexOf("]");
        if (end < 0) return { error: `server.${id}: an unclosed [ in ${JSON.stringify(value)}` };
        address = value.slice(1, end);
        rest = value.slice(end + 1);
    } else {
        const i = value.indexOf(":");
        if (i < 0) return { error: `server.${id}: no ports in ${JSON.stringify(value)}` };
        address = value.slice(0, i);
        rest = value.slice(i);
    }
    const parts = rest.split(":").slice(1);
    const peerPort = Number(parts[0]);
    const electionPort = Number(parts[1]);
    if (!Number.isInteger(peerPort) || !Number.isInteger(electionPort) || parts.length < 2 || parts[0] === "" || parts[1] === "") {
        return { error: `server.${id}: expected address:peerPort:electionPort in ${JSON.stringify(value)}` };
    }
    const role = (parts[2] ?? "participant").trim().toLowerCase();
    if (role !== "participant" && role !== "observer") return { error: `server.${id}: unknown role ${JSON.stringify(parts[2])}` };
    return { member: { id, address, peerPort, electionPort }, role };
}

/** Parses the probe's output (the tagged lines of src/scripts/adopt.ts). */
export function parseProbe(id: ServerId, sshHost: string, out: string): Observation {
    const lines = out.split("\n");
    const tagged = (tag: string) => lines.filter((l) => l.startsWith(`${tag} `) || l === tag).map((l) => l.slice(tag.length + 1));
    const configProblems: string[] = [];
    for (const e of tagged("err")) configProblems.push(e);

    // Membership: server lines of the dynamic config file replace those of zoo.cfg (as ZooKeeper reads them).
    const cfg = tagged("cfg");
    const dyn = tagged("dyn");
    const serverLines = (dyn.length > 0 ? dyn : cfg).filter((l) => /^\s*server\./.test(l));
    const members: MemberLine[] = [];
    for (const l of serverLines) {
        const p = parseServerLine(l);
        if ("error" in p) configProblems.push(p.error);
        else if (members.some((x) => x.id === p.member.id)) configProblems.push(`server.${p.member.id} is listed twice`);
        // An observer keeps its flag: it matches only a phase whose membership plans it (the observer join).
        else members.push(p.role === "observer" ? { ...p.member, observer: true } : p.member);
    }
    const qlo = cfg.filter((l) => /^\s*quorumListenOnAllIPs\s*[=:]/.test(l)).pop();
    const quorumListenOnAllIPs = qlo !== undefined && /^\s*quorumListenOnAllIPs\s*[=:]\s*true\s*$/i.test(qlo);
    const readable = !configProblems.some((p) => p.startsWith("zoo.cfg ") || p.startsWith("dynamic config file "));
    const membership = readable && members.length > 0 ? { members: members.sort((a, b) => a.id - b.id), quorumListenOnAllIPs } : undefined;
    if (readable && members.length === 0) configProblems.push("the config lists no server.N line");

    const myidLine = tagged("myid")[0];
    const listening = tagged("port")[0] === "open";
    const srvr = tagged("srvr");
    const mode = srvr.map((l) => /^Mode:\s*(\S+)/.exec(l)?.[1]).find((x) => x !== undefined);
    const count = srvr.map((l) => /^Node count:\s*(\d+)/.exec(l)?.[1]).find((x) => x !== undefined);
    const conf = tagged("conf");
    const at = conf.findIndex((l) => /^membership:/.test(l));
    let runningMembers: MemberLine[] | undefined;
    if (at >= 0) {
        runningMembers = [];
        for (const l of conf.slice(at + 1)) {
            if (!/^\s*server\./.test(l)) continue;
            const p = parseServerLine(l);
            if (!("error" in p)) runningMembers.push(p.role === "observer" ? { ...p.member, observer: true } : p.member);
        }
        runningMembers.sort((a, b) => a.id - b.id);
        if (runningMembers.length === 0) runningMembers = undefined;
    }

    return {
        id,
        sshHost,
        ...(!lines.includes("end") ? { error: "the probe's output ends early (no end line)" } : {}),
        ...(membership ? { membership } : {}),
        configProblems,
        ...(myidLine !== undefined ? { myid: myidLine } : {}),
        listening,
        ...(mode ? { mode } : {}),
        ...(count !== undefined ? { nodeCount: Number(count) } : {}),
        ...(listening && !mode ? { srvrProblem: (srvr.find((l) => l.trim() !== "") ?? "no answer").slice(0, 200) } : {}),
        ...(runningMembers ? { runningMembers } : {}),
        firewall: firewallOf(lines.filter((l) => l.startsWith("fw ")).map((l) => l.slice(3))),
    };
}

function firewallOf(fw: string[]): FirewallSeen {
    const errors = fw.filter((l) => / error /.test(l));
    const parts = fw.filter((l) => / (chain|jump) /.test(l));
    if (parts.length === 0) {
        if (errors.length > 0) return { state: "unknown", reason: `cannot list the rules: ${errors.join("; ")}` };
        return { state: "absent" };
    }
    // Present when some family holds both chains and both jumps (the split's apply makes all four).
    for (const tool of ["iptables", "ip6tables"]) {
        if (fw.filter((l) => l.startsWith(`${tool} `) && / (chain|jump) /.test(l)).length === 4) return { state: "present" };
    }
    return { state: "partial" };
}

/** An error observation (the host was not reached, or the probe failed). */
export function failedObservation(id: ServerId, sshHost: string, error: string): Observation {
    return { id, sshHost, error, configProblems: [], listening: false, firewall: { state: "unknown", reason: "not read" } };
}
