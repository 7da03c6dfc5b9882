// Typed parsers of the answers to `srvr`, `mntr` and `conf`, tolerant of the differences between
// ZooKeeper 3.5 and 3.9 (3.6 made the average latency a decimal and added many mntr keys; 3.7
// added conf keys; the leader's srvr carries proposal sizes). Unknown lines are kept, not refused.

/** What every word answers while the server has no quorum (or is still starting). */
export const NOT_SERVING_TEXT = "This ZooKeeper instance is not currently serving requests";

export function isNotServing(text: string): boolean {
    return text.includes(NOT_SERVING_TEXT);
}

export interface Zxid {
    /** As ZooKeeper prints it: `0x200000004`. */
    hex: string;
    /** The high 32 bits: the leader epoch that proposed it. */
    epoch: number;
    /** The low 32 bits: the counter within the epoch. */
    counter: number;
}

/** `0x200000004` (or a decimal) -> hex, epoch (zxid >> 32) and counter; undefined when not a number. */
export function parseZxid(text: string): Zxid | undefined {
    const t = text.trim();
    let value: bigint;
    try {
        if (/^0x[0-9a-f]+$/i.test(t)) value = BigInt(t);
        else if (/^\d+$/.test(t)) value = BigInt(t);
        else return undefined;
    } catch {
        return undefined;
    }
    return { hex: `0x${value.toString(16)}`, epoch: Number(value >> 32n), counter: Number(value & 0xffffffffn) };
}

export interface Latency {
    min: number;
    avg: number;
    max: number;
}

/** The release from a version text: `3.9.3-c26634f..., built on ...` -> `3.9.3`. */
export function shortVersion(text: string): string {
    return /^\s*(\d+\.\d+\.\d+)/.exec(text)?.[1] ?? text.split(",")[0].trim();
}

function num(text: string | undefined): number | undefined {
    if (text === undefined) return undefined;
    const t = text.trim();
    if (!/^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$/.test(t)) return undefined;
    return Number(t);
}

function triple(text: string | undefined): [number, number, number] | undefined {
    if (text === undefined) return undefined;
    const parts = text.trim().split("/").map(num);
    if (parts.length !== 3 || parts.some((p) => p === undefined)) return undefined;
    return parts as [number, number, number];
}

export interface SrvrAnswer {
    /** False when the server answered "not currently serving requests". */
    serving: boolean;
    /** `3.9.3`. */
    version?: string;
    /** The whole `Zookeeper version:` value. */
    versionText?: string;
    latency?: Latency;
    received?: number;
    sent?: number;
    connections?: number;
    outstanding?: number;
    zxid?: Zxid;
    /** `leader`, `follower`, `observer`, `standalone`, `read-only`. Present only once synced. */
    mode?: string;
    nodeCount?: number;
    /** Leader only (3.5+): last/min/max proposal size in bytes. */
    proposalSizes?: { last: number; min: number; max: number };
    /** Every `Key: value` line as written. */
    fields: Record<string, string>;
}

/** Parses the answer to `srvr` (or the stats part of `stat`). */
export function parseSrvr(text: string): SrvrAnswer {
    const fields: Record<string, string> = {};
    for (const line of text.split(/\r?\n/)) {
        const m = /^([A-Za-z][^:]*?):\s?(.*)$/.exec(line);
        if (m && !line.startsWith(" ") && !line.startsWith("\t")) fields[m[1].trim()] = m[2].trim();
    }
    const out: SrvrAnswer = { serving: !isNotServing(text), fields };
    const versionText = fields["Zookeeper version"];
    if (versionText !== undefined) {
        out.versionText = versionText;
        out.version = shortVersion(versionText);
    }
    const lat = triple(fields["Latency min/avg/max"]);
    if (lat) out.latency = { min: lat[0], avg: lat[1], max: lat[2] };
    const assign = (key: "received" | "sent" | "connections" | "outstanding" | "nodeCount", field: string) => {
        const v = num(fields[field]);
        if (v !== undefined) out[key] = v;
    };
    assign("received", "Received");
    assign("sent", "Sent");
    assign("connections", "Connections");
    assign("outstanding", "Outstanding");
    assign("nodeCount", "Node count");
    const zxid = fields["Zxid"] === undefined ? undefined : parseZxid(fields["Zxid"]);
    if (zxid) out.zxid = zxid;
    const mode = fields["Mode"];
    if (mode) out.mode = mode.split(/\s+/)[0];
    const prop = triple(fields["Proposal sizes last/min/max"]);
    if (prop) out.proposalSizes = { last: prop[0], min: prop[1], max: prop[2] };
    return out;
}

export interface MntrAnswer {
    serving: boolean;
    version?: string;
    versionText?: string;
    /** `zk_server_state`: leader, follower, observer, standalone. */
    serverState?: string;
    latency?: Latency;
    packetsReceived?: number;
    packetsSent?: number;
    aliveConnections?: number;
    outstandingRequests?: number;
    znodeCount?: number;
    watchCount?: number;
    ephemeralsCount?: number;
    approximateDataSize?: number;
    /** Leader only. */
    followers?: number;
    /** Leader only: followers in sync (the voters the leader has). */
    syncedFollowers?: number;
    /** Leader only. */
    pendingSyncs?: number;
    /** 3.6+: e.g. `following - broadcast`. */
    peerState?: string;
    /** 3.6+: uptime in ms. */
    uptimeMs?: number;
    /** Every `zk_*` key as written (values are text). */
    values: Record<string, string>;
}

/** Parses the answer to `mntr`: `zk_key<TAB>value` lines (a value may contain spaces). */
export function parseMntr(text: string): MntrAnswer {
    const values: Record<string, string> = {};
    for (const line of text.split(/\r?\n/)) {
        if (line.trim() === "") continue;
        const tab = line.indexOf("\t");
        const m = tab !== -1 ? [line.slice(0, tab), line.slice(tab + 1)] : /^(\S+)\s+(.*)$/.exec(line)?.slice(1);
        if (!m || !/^zk_\S+$/.test(m[0].trim())) continue;
        values[m[0].trim()] = m[1].trim();
    }
    const out: MntrAnswer = { serving: !isNotServing(text), values };
    if (values.zk_version !== undefined) {
        out.versionText = values.zk_version;
        out.version = shortVersion(values.zk_version);
    }
    if (values.zk_server_state) out.serverState = values.zk_server_state;
    if (values.zk_peer_state) out.peerState = values.zk_peer_state;
    const min = num(values.zk_min_latency);
    const avg = num(values.zk_avg_latency);
    const max = num(values.zk_max_latency);
    if (min !== undefined && avg !== undefined && max !== undefined) out.latency = { min, avg, max };
    const numbers: [keyof MntrAnswer, string][] = [
        ["packetsReceived", "zk_packets_received"],
        ["packetsSent", "zk_packets_sent"],
        ["aliveConnections", "zk_num_alive_connections"],
        ["outstandingRequests", "zk_outstanding_requests"],
        ["znodeCount", "zk_znode_count"],
        ["watchCount", "zk_watch_count"],
        ["ephemeralsCount", "zk_ephemerals_count"],
        ["approximateDataSize", "zk_approximate_data_size"],
        ["followers", "zk_followers"],
        ["syncedFollowers", "zk_synced_followers"],
        ["pendingSyncs", "zk_pending_syncs"],
        ["uptimeMs", "zk_uptime"],
    ];
    for (const [key, name] of numbers) {
        const v = num(values[name]);
        if (v !== undefined) (out as unknown as Record<string, number>)[key] = v;
    }
    return out;
}

export interface ConfServer {
    id: number;
    /** The text after `server.N=`, as written. */
    spec: string;
    host?: string;
    quorumPort?: number;
    electionPort?: number;
    /** `participant` (the default) or `observer`. */
    role: string;
    /** The client address after `;`, e.g. `0.0.0.0:2181`. */
    clientAddress?: string;
}

export interface ConfAnswer {
    serving: boolean;
    clientPort?: number;
    secureClientPort?: number;
    dataDir?: string;
    dataLogDir?: string;
    tickTime?: number;
    maxClientCnxns?: number;
    minSessionTimeout?: number;
    maxSessionTimeout?: number;
    /** The server's myid (0 for a standalone server). */
    serverId?: number;
    initLimit?: number;
    syncLimit?: number;
    electionAlg?: number;
    electionPort?: number;
    quorumPort?: number;
    peerType?: number;
    /** The `server.N=` lines (after `membership:` in 3.5+). */
    membership: ConfServer[];
    /** The dynamic config `version=` (hex, without 0x), when printed. */
    configVersion?: string;
    /** Every other `key=value` line as written. */
    values: Record<string, string>;
}

/** `127.0.0.1:2888:3888:participant;0.0.0.0:2181`, `[::1]:2888:3888;2181`, `host:2888:3888:observer`. */
export function parseServerSpec(id: number, spec: string): ConfServer {
    const [peer, client] = spec.split(";", 2);
    const out: ConfServer = { id, spec, role: "participant" };
    let rest = peer.trim();
    if (rest.startsWith("[")) {
        const close = rest.indexOf("]");
        if (close !== -1) {
            out.host = rest.slice(1, close);
            rest = rest.slice(close + 1).replace(/^:/, "");
        }
    } else {
        const first = rest.indexOf(":");
        out.host = first === -1 ? rest : rest.slice(0, first);
        rest = first === -1 ? "" : rest.slice(first + 1);
    }
    const parts = rest === "" ? [] : rest.split(":");
    const q = num(parts[0]);
    const e = num(parts[1]);
    if (q !== undefined) out.quorumPort = q;
    if (e !== undefined) out.electionPort = e;
    if (parts[2]) out.role = parts[2].trim();
    if (client !== undefined && client.trim() !== "") out.clientAddress = client.trim();
    return out;
}

/** Parses the answer to `conf`. */
export function parseConf(text: string): ConfAnswer {
    const values: Record<string, string> = {};
    const membership: ConfServer[] = [];
    let configVersion: string | undefined;
    let inMembership = false;
    for (const raw of text.split(/\r?\n/)) {
        const line = raw.trim();
        if (line === "") continue;
        if (/^membership:/.test(line)) {
            inMembership = true;
            continue;
        }
        const eq = line.indexOf("=");
        if (eq === -1) continue;
        const key = line.slice(0, eq).trim();
        const value = line.slice(eq + 1).trim();
        const server = /^server\.(\d+)$/.exec(key);
        if (server) {
            membership.push(parseServerSpec(Number(server[1]), value));
        } else if (key === "version" && (inMembership || membership.length > 0)) {
            configVersion = value;
        } else {
            values[key] = value;
        }
    }
    const out: ConfAnswer = { serving: !isNotServing(text), membership, values };
    if (configVersion !== undefined) out.configVersion = configVersion;
    const numbers: (keyof ConfAnswer)[] = [
        "clientPort",
        "secureClientPort",
        "tickTime",
        "maxClientCnxns",
        "minSessionTimeout",
        "maxSessionTimeout",
        "serverId",
        "initLimit",
        "syncLimit",
        "electionAlg",
        "electionPort",
        "quorumPort",
        "peerType",
    ];
    for (const key of numbers) {
        const v = num(values[key]);
        if (v !== undefined) (out as unknown as Record<string, number>)[key] = v;
    }
    if (values.dataDir !== undefined) out.dataDir = values.dataDir;
    if (values.dataLogDir !== undefined) out.dataLogDir = values.dataLogDir;
    return out;
}
