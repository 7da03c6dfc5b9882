// `zkmigrate copy`: a faithful copy of a znode subtree from one ensemble to another.
//
// Faithful: ACLs as they are (digest ACLs verbatim), ephemeral nodes skipped (or, on request,
// copied as persistent), large znodes written in batches that stay under the target's
// jute.maxbuffer, and sequential-node counters kept (a target parent's cversion is brought at
// least to the source's, so the next sequential child cannot collide).
// Fast: many reads in flight over one session per source server, writes in multi batches
// bounded by bytes and by op count, several batches in flight on one session (a session's
// requests are applied in order, so parents still come before their children).
// Incremental: with a state file, only what changed since the last run's watermark is read in
// full and written (see `CopyState`).
//
// Everything that can be known before writing is checked before the first write: the
// ensembles answer, the source path exists, the target does not overlap the source on the same
// ensemble, every znode fits the target's request limit. Writes are multis: a batch is applied
// whole or not at all.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as zookeeper from "node-zookeeper-client";
import { type ConnectString, ConnectStringError, formatConnectString, formatServer, parseConnectString } from "./connect-string";
import { ERR, RawError, type RawStat, lastZxidOf, rawGetAcl, rawGetChildren, rawGetData, rawMultiRead } from "./raw";
import { abort, createSingleServerClient, whenEveryServerRefuses, zkErrorName } from "./session";

/** ZooKeeper's default jute.maxbuffer (0xfffff): the largest request a server accepts. */
export const DEFAULT_JUTE_MAXBUFFER = 0xfffff;
/** Room kept under jute.maxbuffer for the request header and the transaction the leader builds. */
export const REQUEST_HEADROOM = 8192;

export type CopyErrorKind = "usage" | "connect" | "check" | "write" | "verify";

/** A refusal or failure of the copy; the message names the path, the side or the argument. */
export class CopyError extends Error {
    constructor(
        message: string,
        readonly kind: CopyErrorKind,
    ) {
        super(message);
        this.name = "CopyError";
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints, options, state

export interface Endpoint {
    connect: ConnectString;
    /** The absolute znode path of the subtree ("/" for the whole tree). */
    path: string;
    /** As given, for messages. */
    text: string;
}

/** `host:port[,host:port...]/path`: the path is the subtree (absent or "/" for the whole tree). */
export function parseEndpoint(arg: string, side: "source" | "target"): Endpoint {
    let connect: ConnectString;
    try {
        connect = parseConnectString(arg);
    } catch (e) {
        if (e instanceof ConnectStringError) throw new CopyError(`${side}: ${e.message}`, "usage");
        throw e;
    }
    const path = connect.chroot ?? "/";
    return { connect: { servers: connect.servers }, path, text: `${formatConnectString({ servers: connect.servers })}${path === "/" ? "/" : path}` };
}

export interface AuthInfo {
    scheme: string;
    credentials: string;
}

/** `scheme:credentials` (e.g. `digest:user:password`). */
export function parseAuth(text: string, option: string): AuthInfo {
    const i = text.indexOf(":");
    if (i <= 0 || i === text.length - 1) throw new CopyError(`${option} ${JSON.stringify(text)}: expected scheme:credentials, e.g. digest:user:password`, "usage");
    return { scheme: text.slice(0, i), credentials: text.slice(i + 1) };
}

export interface CopyOptions {
    /** Copy ephemeral nodes (as persistent ones); they are skipped by default. */
    includeEphemeral?: boolean;
    /** "source": the source's ACLs as they are; "open": world:anyone with all permissions. */
    acl?: "source" | "open";
    /** Remove target nodes the source lacks. */
    delete?: boolean;
    /** Copy only what changed since: milliseconds since the epoch, or a state file (see CopyState). */
    mtimeSince?: number | string;
    /** Write the state for the next incremental run here (defaults to a `mtimeSince` file). */
    stateFile?: string;
    dryRun?: boolean;
    verify?: boolean;
    sourceAuth?: AuthInfo[];
    targetAuth?: AuthInfo[];
    /** The target's jute.maxbuffer (bytes); requests are kept under it. */
    juteMaxBuffer?: number;
    /** Multi batch bounds. */
    batchOps?: number;
    batchBytes?: number;
    /** Multi batches in flight on the target session. */
    batchesInFlight?: number;
    /** Reads in flight per source (and target) session. */
    readsInFlight?: number;
    /** Bound of connecting to an ensemble. */
    connectTimeoutMs?: number;
    /** Abort when ZooKeeper answers nothing for this long while requests are outstanding. */
    stallTimeoutMs?: number;
    /** Progress callback, about every 200 ms and once at the end of each stage. */
    progress?: (p: Progress) => void;
    /** Test-only switches that bring back the faults of older copy tools, to show the tests catch them. */
    legacy?: { ignoreByteBound?: boolean; keepCounters?: false; acl?: "open"; copyEphemeralAsPersistent?: boolean };
}

export interface Progress {
    stage: "read source" | "read target" | "write" | "verify";
    done: number;
    total?: number;
    elapsedMs: number;
}

/**
 * What an incremental run needs from the previous one. `zxid` is the source's last zxid at the
 * start of the previous run's reads (the least over the sessions it read through): every change
 * at or before it was seen then, every later one has a greater mzxid (data), czxid (new node)
 * or pzxid (children added or removed). ZooKeeper records neither a time nor a zxid for setACL,
 * so `aversions` keeps each node's ACL version where it is not 0.
 */
export interface CopyState {
    version: 1;
    source: string;
    /** czxid of the source path: another tree at the same path is refused. */
    rootCzxid: string;
    /** Hexadecimal zxid watermark (see above). */
    zxid: string;
    /** The newest mtime seen (ms since the epoch): usable as `--mtime-since <ms>`. */
    mtime: number;
    aversions: Record<string, number>;
    writtenAt: string;
}

export function readState(file: string): CopyState {
    let parsed: unknown;
    try {
        parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
        throw new CopyError(`--mtime-since ${file}: cannot read the state file: ${e instanceof Error ? e.message : String(e)}`, "usage");
    }
    const s = parsed as Partial<CopyState>;
    if (!s || s.version !== 1 || typeof s.zxid !== "string" || !/^[0-9a-f]+$/.test(s.zxid) || typeof s.mtime !== "number" || typeof s.rootCzxid !== "string" || typeof s.aversions !== "object") {
        throw new CopyError(`--mtime-since ${file}: not a zkmigrate copy state file (version 1 with zxid, mtime, rootCzxid, aversions)`, "usage");
    }
    return s as CopyState;
}

function writeState(file: string, state: CopyState): void {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(state) + "\n");
    renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------
// Znodes as read

export interface Acl {
    perms: number;
    scheme: string;
    id: string;
}

/** A znode's stat as ZooKeeper sends it (zxids and the ephemeral owner as bigints). */
export type NodeStat = RawStat;

export interface ZNode {
    /** Path relative to the copied subtree's root ("" for the root itself, else "/a/b"). */
    rel: string;
    stat: NodeStat;
    /** Undefined when not read (incremental run, unchanged node). */
    data?: Buffer;
    acl?: Acl[];
    children: string[];
}

export type NodeKind = "persistent" | "ephemeral" | "container" | "ttl";

const CONTAINER_OWNER = 0x8000000000000000n;
const TTL_MASK = 0xff00000000000000n;

/** How ZooKeeper (3.5.3+) encodes the kind of a znode in ephemeralOwner. */
export function nodeKind(stat: NodeStat): NodeKind {
    const o = stat.ephemeralOwner;
    if (o === 0n) return "persistent";
    if (o === CONTAINER_OWNER) return "container";
    if ((o & TTL_MASK) === TTL_MASK) return "ttl";
    return "ephemeral";
}




function fromAcl(list: Acl[]): zookeeper.ACL[] {
    return list.map((a) => new zookeeper.ACL(a.perms, new zookeeper.Id(a.scheme, a.id)));
}

export const OPEN_ACL: Acl[] = [{ perms: 31, scheme: "world", id: "anyone" }];

export function aclText(acl: Acl[] | undefined): string {
    if (!acl) return "?";
    return acl.map((a) => `${a.scheme}:${a.id}:${permsText(a.perms)}`).join(",");
}

function permsText(p: number): string {
    return ["c", "d", "r", "w", "a"].filter((_, i) => p & [4, 8, 1, 2, 16][i]).join("") || "-";
}

function sameAcl(a: Acl[] | undefined, b: Acl[] | undefined): boolean {
    return aclText(a) === aclText(b);
}

function abs(root: string, rel: string): string {
    if (root === "/") return rel === "" ? "/" : rel;
    return root + rel;
}

function childRel(rel: string, name: string): string {
    return `${rel}/${name}`;
}

function parentRel(rel: string): string {
    return rel.slice(0, rel.lastIndexOf("/"));
}

function depth(rel: string): number {
    let n = 0;
    for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) n++;
    return n;
}

// ---------------------------------------------------------------------------------------------
// Calls: promises without a timer each; one watchdog per run bounds every wait.

class Rpc {
    private readonly pending = new Set<(e: Error) => void>();
    private last = performance.now();
    private readonly timer: NodeJS.Timeout;
    failed?: Error;

    constructor(readonly stallMs: number) {
        this.timer = setInterval(() => {
            if (this.pending.size > 0 && performance.now() - this.last > this.stallMs) {
                this.abort(new CopyError(`ZooKeeper answered none of ${this.pending.size} outstanding requests for ${this.stallMs} ms (connection lost or server overloaded): stopped`, "write"));
            }
        }, 250);
        this.timer.unref();
    }

    abort(e: Error): void {
        this.failed ??= e;
        for (const r of [...this.pending]) r(e);
        this.pending.clear();
    }

    call<A, B = undefined>(f: (cb: (err: unknown, a?: A, b?: B) => void) => void): Promise<[A, B]> {
        if (this.failed) return Promise.reject(this.failed);
        return new Promise((resolve, reject) => {
            const r = (e: Error) => reject(e);
            this.pending.add(r);
            try {
                f((err, a, b) => {
                    if (!this.pending.delete(r)) return;
                    this.last = performance.now();
                    if (err) reject(err);
                    else resolve([a as A, b as B]);
                });
            } catch (e) {
                this.pending.delete(r);
                reject(e);
            }
        });
    }

    /** Bounds a promise by the watchdog (a stall rejects it). */
    track<T>(p: Promise<T>): Promise<T> {
        if (this.failed) return Promise.reject(this.failed);
        return new Promise((resolve, reject) => {
            const r = (e: Error) => reject(e);
            this.pending.add(r);
            p.then(
                (v) => {
                    if (!this.pending.delete(r)) return;
                    this.last = performance.now();
                    resolve(v);
                },
                (e) => {
                    if (!this.pending.delete(r)) return;
                    this.last = performance.now();
                    reject(e);
                },
            );
        });
    }

    close(): void {
        clearInterval(this.timer);
    }
}

/** ZooKeeper's error name of a client exception (NO_NODE, NO_AUTH, ...), else undefined. */
function codeOf(e: unknown): string | undefined {
    return e && typeof e === "object" && typeof (e as { getName?: unknown }).getName === "function" ? (e as zookeeper.Exception).getName() : undefined;
}


// ---------------------------------------------------------------------------------------------
// Sessions

interface Side {
    name: "source" | "target";
    endpoint: Endpoint;
    clients: zookeeper.Client[];
    /** Servers that could not be reached (they are named in the summary). */
    unreachable: string[];
}

function connectOne(server: { host: string; port: number }, auth: AuthInfo[], timeoutMs: number): Promise<zookeeper.Client> {
    const client = createSingleServerClient(server, undefined, 30_000);
    for (const a of auth) client.addAuthInfo(a.scheme, Buffer.from(a.credentials));
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            stopWatching();
            abort(client); // close() alone leaves a reconnect timer behind
            reject(new Error(`no session within ${timeoutMs} ms`));
        }, timeoutMs);
        // A refused connection fails at once (the client alone would retry until the timeout).
        const stopWatching = whenEveryServerRefuses(client, (why) => {
            clearTimeout(timer);
            abort(client);
            reject(new Error(why));
        });
        client.once("authenticationFailed", () => {
            clearTimeout(timer);
            stopWatching();
            abort(client);
            reject(new Error(`authentication failed (${auth.map((a) => a.scheme).join(", ")})`));
        });
        client.once("connected", () => {
            clearTimeout(timer);
            stopWatching();
            resolve(client);
        });
        client.connect();
    });
}

async function openSide(name: "source" | "target", endpoint: Endpoint, auth: AuthInfo[], timeoutMs: number, all: boolean): Promise<Side> {
    const servers = endpoint.connect.servers;
    const results = await Promise.allSettled(servers.map((s) => connectOne(s, auth, timeoutMs)));
    const clients: zookeeper.Client[] = [];
    const unreachable: string[] = [];
    const reasons: string[] = [];
    results.forEach((r, i) => {
        if (r.status === "fulfilled") clients.push(r.value);
        else {
            unreachable.push(formatServer(servers[i]));
            reasons.push(`${formatServer(servers[i])}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
        }
    });
    if (clients.length === 0) {
        throw new CopyError(`cannot reach the ${name} ensemble ${formatConnectString(endpoint.connect)}: ${reasons.join("; ")}`, "connect");
    }
    if (!all) {
        // One session is enough for the target: close the rest.
        for (const c of clients.slice(1)) c.close();
        clients.length = 1;
    }
    return { name, endpoint, clients, unreachable };
}

function closeSide(s: Side | undefined): void {
    for (const c of s?.clients ?? []) c.close();
}


// ---------------------------------------------------------------------------------------------
// Reading: ZooKeeper 3.6+'s read-only multi (getData and getChildren, hundreds per request) for
// stats, data and children; getACL one node at a time (it has no multi form), many in flight.

interface ReadCtx {
    /** For messages. */
    side: "source" | "target";
    rpc: Rpc;
    clients: zookeeper.Client[];
    /** Whether the servers answer read-only multis (3.6+); else one request per node. */
    multi: boolean;
    /** Requests in flight per client. */
    inFlight: number;
    onNodes?: (n: number) => void;
}

/** Response bytes a read-only multi aims at (its op count adapts to the data sizes seen). */
const MULTI_READ_BYTES = 1 << 20;
/** Children names a getChildren multi aims at. */
const MULTI_CHILDREN = 20_000;

function rawCode(e: unknown): number | undefined {
    return e instanceof RawError ? e.code : undefined;
}

/** Runs `f` over `items` with `limit` in flight, round-robin over the clients. */
async function forEachLimited<T>(ctx: ReadCtx, items: T[], limit: number, f: (c: zookeeper.Client, x: T) => Promise<void>): Promise<void> {
    let next = 0;
    let k = 0;
    const worker = async () => {
        while (next < items.length && !ctx.rpc.failed) {
            const x = items[next++];
            await f(ctx.clients[k++ % ctx.clients.length], x);
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    if (ctx.rpc.failed) throw ctx.rpc.failed;
}

/**
 * Stat and data of each node (and its children when it has any); null for a node that does
 * not exist. At the whole tree's root the system subtree /zookeeper is left out.
 */
async function readNodes(ctx: ReadCtx, root: string, rels: string[]): Promise<Map<string, ZNode | null>> {
    const out = new Map<string, ZNode | null>();
    const limit = ctx.inFlight * ctx.clients.length;
    const isRootZk = (rel: string) => root === "/" && rel === "";
    if (!ctx.multi) {
        await forEachLimited(ctx, rels, limit * 32, async (c, rel) => {
            const path = abs(root, rel);
            try {
                const { data, stat } = await ctx.rpc.track(rawGetData(c, path));
                const n: ZNode = { rel, stat, data, children: [] };
                if (stat.numChildren > 0) {
                    const r = await ctx.rpc.track(rawGetChildren(c, path));
                    n.children = r.children.sort();
                    if (isRootZk(rel)) n.children = n.children.filter((x) => x !== "zookeeper");
                }
                out.set(rel, n);
            } catch (e) {
                if (rawCode(e) === ERR.noNode) out.set(rel, null);
                else throw readError(e, path, ctx.side);
            }
            ctx.onNodes?.(1);
        });
        return out;
    }
    // Data: batches sized by the average data size seen so far.
    let avg = 1024;
    let seen = 0;
    let bytes = 0;
    const groups: string[][] = [];
    const take = () => Math.max(8, Math.min(500, Math.floor(MULTI_READ_BYTES / Math.max(64, avg))));
    for (let i = 0; i < rels.length; ) {
        const k = take();
        groups.push(rels.slice(i, i + k));
        i += k;
    }
    const parents: ZNode[] = [];
    await forEachLimited(ctx, groups, limit, async (c, group) => {
        const results = await ctx.rpc.track(rawMultiRead(c, group.map((rel) => ({ op: "getData" as const, path: abs(root, rel) })))).catch((e) => {
            throw readError(e, abs(root, group[0]), ctx.side);
        });
        results.forEach((r, i) => {
            const rel = group[i];
            if (!r.ok) {
                if (r.err === ERR.noNode) out.set(rel, null);
                else throw readError(new RawError(r.err, "getData"), abs(root, rel), ctx.side);
                return;
            }
            const n: ZNode = { rel, stat: r.stat!, data: r.data!, children: [] };
            out.set(rel, n);
            seen++;
            bytes += r.data!.length;
            if (n.stat.numChildren > 0) parents.push(n);
        });
        avg = bytes / Math.max(1, seen);
        ctx.onNodes?.(group.length);
    });
    // Children of the nodes that have any.
    const childGroups: ZNode[][] = [];
    let cur: ZNode[] = [];
    let names = 0;
    for (const n of parents) {
        if (cur.length > 0 && (cur.length >= 500 || names + n.stat.numChildren > MULTI_CHILDREN)) {
            childGroups.push(cur);
            cur = [];
            names = 0;
        }
        cur.push(n);
        names += n.stat.numChildren;
    }
    if (cur.length > 0) childGroups.push(cur);
    await forEachLimited(ctx, childGroups, limit, async (c, group) => {
        const results = await ctx.rpc.track(rawMultiRead(c, group.map((n) => ({ op: "getChildren" as const, path: abs(root, n.rel) })))).catch((e) => {
            throw readError(e, abs(root, group[0].rel), ctx.side);
        });
        results.forEach((r, i) => {
            const n = group[i];
            if (!r.ok) {
                if (r.err === ERR.noNode) out.set(n.rel, null);
                else throw readError(new RawError(r.err, "getChildren"), abs(root, n.rel), ctx.side);
                return;
            }
            n.children = r.children!.sort();
            if (isRootZk(n.rel)) n.children = n.children.filter((x) => x !== "zookeeper");
        });
    });
    return out;
}

/** The whole subtree, level by level; `follow` says which children to descend into. */
async function readSubtree(ctx: ReadCtx, root: string, start: string[] = [""], follow: (rel: string) => boolean = () => true): Promise<Map<string, ZNode>> {
    const nodes = new Map<string, ZNode>();
    let level = start;
    while (level.length > 0) {
        const got = await readNodes(ctx, root, level);
        const next: string[] = [];
        for (const rel of level) {
            const n = got.get(rel);
            if (!n) continue;
            nodes.set(rel, n);
            for (const c of n.children) {
                const r = childRel(rel, c);
                if (follow(r)) next.push(r);
            }
        }
        level = next;
    }
    return nodes;
}

/** The ACL of each node, `onAcl` called in the order of `rels` (null: the node is gone). */
async function readAcls(ctx: ReadCtx, root: string, rels: string[], onAcl: (rel: string, acl: Acl[] | null, stat?: NodeStat) => Promise<void> | void): Promise<void> {
    const results: ({ acl: Acl[] | null; stat?: NodeStat } | undefined)[] = new Array(rels.length);
    let emitted = 0;
    let emitting: Promise<void> = Promise.resolve();
    const drain = async () => {
        while (emitted < rels.length && results[emitted] !== undefined) {
            const r = results[emitted]!;
            results[emitted] = undefined;
            await onAcl(rels[emitted], r.acl, r.stat);
            emitted++;
        }
    };
    const indexes = rels.map((_, i) => i);
    await forEachLimited(ctx, indexes, 256 * ctx.clients.length, async (c, i) => {
        const path = abs(root, rels[i]);
        try {
            const { acl, stat } = await ctx.rpc.track(rawGetAcl(c, path));
            results[i] = { acl, stat };
        } catch (e) {
            if (rawCode(e) !== ERR.noNode) throw readError(e, path, ctx.side);
            results[i] = { acl: null };
        }
        ctx.onNodes?.(1);
        // Reads go on while the consumer works (it may wait for the writer).
        if (i === emitted) emitting = emitting.then(drain);
    });
    await emitting.then(drain);
}

function readError(e: unknown, path: string, side: "source" | "target"): Error {
    if (e instanceof CopyError) return e;
    const code = e instanceof RawError ? e.getName() : codeOf(e);
    const option = side === "source" ? "--src-auth" : "--dst-auth";
    if (code === "NO_AUTH") return new CopyError(`reading ${side} ${path}: NO_AUTH (its ACL does not grant READ to this session; pass --auth or ${option} with a principal it names)`, "check");
    return new CopyError(`reading ${side} ${path}: ${code ?? zkErrorName(e)}`, "check");
}

/**
 * Whether the server answers read-only multis (ZooKeeper 3.6+). Asked on a session of its own:
 * older servers answer UNIMPLEMENTED and then drop the connection.
 */
async function supportsMultiRead(rpc: Rpc, side: Side, auth: AuthInfo[], timeoutMs: number, path: string): Promise<boolean> {
    const server = side.endpoint.connect.servers.find((x) => !side.unreachable.includes(formatServer(x)))!;
    const probe = await connectOne(server, auth, timeoutMs).catch((e: unknown) => {
        throw new CopyError(`cannot reach the ${side.name} ensemble ${formatConnectString(side.endpoint.connect)}: ${e instanceof Error ? e.message : String(e)}`, "connect");
    });
    try {
        await rpc.track(rawMultiRead(probe, [{ op: "getData", path }]));
        return true;
    } catch (e) {
        const code = rawCode(e) ?? (codeOf(e) === "CONNECTION_LOSS" ? ERR.connectionLoss : undefined);
        if (code === ERR.unimplemented || code === ERR.connectionLoss || code === -5 /* MARSHALLING_ERROR */) return false;
        throw readError(e, path, side.name);
    } finally {
        probe.close();
    }
}

// ---------------------------------------------------------------------------------------------
// The plan

export interface CreateOp {
    rel: string;
    data: Buffer;
    acl: Acl[];
}

export interface Plan {
    /** Missing ancestors of the target path, created with an open ACL (outside the copied subtree). */
    ancestors: string[];
    creates: CreateOp[];
    setData: { rel: string; data: Buffer }[];
    setAcl: { rel: string; acl: Acl[]; deferred: boolean }[];
    deletes: string[];
    bumps: { rel: string; from: number; to: number }[];
    skippedEphemeral: string[];
    /** Source ephemerals that exist on the target as persistent nodes (e.g. from an older copy). */
    persistentOverEphemeral: string[];
    /** Container and TTL nodes, copied as persistent nodes. */
    asPersistent: { rel: string; kind: NodeKind }[];
    /** Target nodes the source lacks, kept because --delete was not given. */
    extra: string[];
    unchanged: number;
}

export interface CopySummary {
    source: string;
    target: string;
    mode: "full" | "incremental";
    since?: { mtime?: number; zxid?: string };
    dryRun: boolean;
    sourceNodes: number;
    /** Source nodes changed since the state (incremental), or all copied nodes (full). */
    changedNodes: number;
    targetNodesRead: number;
    plan: {
        ancestors: number;
        creates: number;
        setData: number;
        setAcl: number;
        deletes: number;
        cversionBumps: number;
        skippedEphemeral: number;
        persistentOverEphemeral: number;
        asPersistent: number;
        extra: number;
        unchanged: number;
    };
    written: { batches: number; ops: number; bytes: number };
    stateFile?: string;
    unreachable: { source: string[]; target: string[] };
    verify?: VerifyResult;
    seconds: { connect: number; readSource: number; readTarget: number; write: number; verify?: number; total: number };
    /** Source nodes per second over the whole run (without the verify). */
    nodesPerSec: number;
    warnings: string[];
    planText?: string;
}

export interface Difference {
    path: string;
    what: "missing" | "extra" | "data" | "acl" | "ephemeral" | "cversion";
    detail: string;
}

export interface VerifyResult {
    ok: boolean;
    compared: number;
    differences: Difference[];
    /** All differences counted, even when only the first ones are listed. */
    total: number;
}

// Sizes of multi ops as the server reads them (MultiHeader: type, done, err = 9 bytes).
const MULTI_HEADER = 9;
function strBytes(s: string): number {
    return 4 + Buffer.byteLength(s);
}
function aclBytes(acl: Acl[]): number {
    return 4 + acl.reduce((n, a) => n + 4 + strBytes(a.scheme) + strBytes(a.id), 0);
}
export function createOpBytes(path: string, data: Buffer, acl: Acl[]): number {
    return MULTI_HEADER + strBytes(path) + 4 + data.length + aclBytes(acl) + 4;
}
function setDataOpBytes(path: string, data: Buffer): number {
    return MULTI_HEADER + strBytes(path) + 4 + data.length + 4;
}
function deleteOpBytes(path: string): number {
    return MULTI_HEADER + strBytes(path) + 4;
}

/** Does `acl` give `perm` to a session with these digest identities (world:anyone always)? */
function grants(acl: Acl[], perm: number, digests: Set<string>): boolean {
    return acl.some((a) => (a.perms & perm) !== 0 && ((a.scheme === "world" && a.id === "anyone") || (a.scheme === "digest" && digests.has(a.id))));
}

/** The digest id ZooKeeper derives from `user:password`: user:base64(sha1(user:password)). */
export function digestId(credentials: string): string {
    const user = credentials.slice(0, credentials.indexOf(":"));
    return `${user}:${createHash("sha1").update(credentials).digest("base64")}`;
}

const CREATE = 4;

// ---------------------------------------------------------------------------------------------
// Writing

type Op =
    | { kind: "create"; path: string; data: Buffer; acl: Acl[]; bytes: number }
    | { kind: "set"; path: string; data: Buffer; bytes: number }
    | { kind: "delete"; path: string; bytes: number };

function opText(op: Op): string {
    return `${op.kind === "set" ? "setData" : op.kind} ${op.path}`;
}

/**
 * Multi batches on one session, in the order the ops are pushed: a session's requests are
 * applied in order, so a parent created in one batch exists for its children in the next, even
 * with several batches in flight. The first failed batch stops the sending; a multi is atomic,
 * so no batch is ever half applied.
 */
class BatchWriter {
    private cur: Op[] = [];
    private bytes = 0;
    private inFlight = new Set<Promise<void>>();
    private sent = 0;
    private failure?: string;
    readonly result = { batches: 0, ops: 0, bytes: 0 };

    constructor(
        private readonly rpc: Rpc,
        private readonly client: zookeeper.Client,
        private readonly maxOps: number,
        private readonly maxBytes: number,
        private readonly maxInFlight: number,
        private readonly onDone: (n: number) => void,
    ) {}

    /** Adds ops that must land in the same batch (a scratch create and its delete). */
    async push(...ops: Op[]): Promise<void> {
        const bytes = ops.reduce((n, o) => n + o.bytes, 0);
        if (this.cur.length > 0 && (this.cur.length + ops.length > this.maxOps || this.bytes + bytes > this.maxBytes)) await this.send();
        this.cur.push(...ops);
        this.bytes += bytes;
    }

    private async send(): Promise<void> {
        this.check();
        const batch = this.cur;
        const bytes = this.bytes;
        this.cur = [];
        this.bytes = 0;
        if (batch.length === 0) return;
        while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
        this.check();
        const index = ++this.sent;
        const t = this.client.transaction();
        for (const op of batch) {
            if (op.kind === "create") t.create(op.path, op.data, fromAcl(op.acl), zookeeper.CreateMode.PERSISTENT);
            else if (op.kind === "set") t.setData(op.path, op.data, -1);
            else t.remove(op.path, -1);
        }
        const p: Promise<void> = this.rpc
            .call((cb) => t.commit(cb as never))
            .then(
                () => {
                    this.result.batches++;
                    this.result.ops += batch.length;
                    this.result.bytes += bytes;
                    this.onDone(batch.length);
                },
                (e) => {
                    this.failure ??= batchFailure(e, batch, index);
                },
            )
            .finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
    }

    private check(): void {
        if (this.failure) throw this.error();
    }

    private error(): CopyError {
        return new CopyError(
            `${this.failure}. A batch is a multi: the failed one changed nothing. ${this.result.batches} batches (${this.result.ops} operations) were applied before it; nothing after it was sent.`,
            "write",
        );
    }

    async finish(): Promise<void> {
        await this.send();
        while (this.inFlight.size > 0) await Promise.race(this.inFlight);
        if (this.failure) throw this.error();
    }

    async abandon(): Promise<void> {
        this.cur = [];
        while (this.inFlight.size > 0) await Promise.race(this.inFlight).catch(() => undefined);
    }
}

function batchFailure(e: unknown, batch: Op[], index: number): string {
    if (e instanceof CopyError) return e.message;
    const code = codeOf(e);
    const detail =
        code === "NO_AUTH"
            ? " (the target's ACL does not grant this session the permission; pass --dst-auth with a principal it names)"
            : code === "CONNECTION_LOSS"
              ? " (the server dropped the connection: a request over its jute.maxbuffer does that; see its log for \"Len error\" or \"Packet len ... is out of range\")"
              : "";
    return `batch ${index} (${batch.length} operations from ${opText(batch[0])} to ${opText(batch[batch.length - 1])}) failed: ${code ?? zkErrorName(e)}${detail}`;
}

// ---------------------------------------------------------------------------------------------
// The copy

function isInside(path: string, root: string): boolean {
    return root === "/" || path === root || path.startsWith(root + "/");
}

async function zookeeperConfig(rpc: Rpc, c: zookeeper.Client): Promise<string | undefined> {
    try {
        const [data] = await rpc.call<Buffer | null, zookeeper.Stat>((cb) => c.getData("/zookeeper/config", cb));
        const text = (data ?? Buffer.alloc(0)).toString("utf8").replace(/^version=.*$/m, "").trim();
        return text === "" ? undefined : text;
    } catch {
        return undefined;
    }
}

/** Same ensemble when a server address is shared or both report the same /zookeeper/config. */
async function sameEnsemble(rpc: Rpc, src: Side, dst: Side): Promise<boolean> {
    const a = new Set(src.endpoint.connect.servers.map(formatServer));
    if (dst.endpoint.connect.servers.some((s) => a.has(formatServer(s)))) return true;
    const [ca, cb] = await Promise.all([zookeeperConfig(rpc, src.clients[0]), zookeeperConfig(rpc, dst.clients[0])]);
    return ca !== undefined && ca === cb;
}

interface Since {
    mtime?: number;
    zxid?: bigint;
    state?: CopyState;
    /** The file the state comes from (or goes to, when it does not exist yet). */
    file?: string;
}

function resolveSince(o: CopyOptions): Since | undefined {
    const v = o.mtimeSince;
    if (v === undefined) return undefined;
    if (typeof v === "number") {
        if (!Number.isFinite(v) || v < 0) throw new CopyError(`--mtime-since ${v}: expected milliseconds since the epoch or a state file`, "usage");
        return { mtime: v };
    }
    if (/^\d+$/.test(v)) return { mtime: Number(v) };
    if (!existsSync(v)) return { file: v }; // first run: a full copy that writes the state
    const state = readState(v);
    return { mtime: state.mtime, zxid: BigInt(`0x${state.zxid}`), state, file: v };
}

/**
 * Copies `source` (endpoint text `host:port,.../path`) to `target`. Throws CopyError with a
 * message fit for an operator; returns the summary otherwise (a failed --verify is in it).
 *
 * The order: sessions; checks (source path, overlap, state file); the watermark; stats, data
 * and children of the whole source subtree (read-only multis); what the target has; every check
 * that needs the data (sizes); then ACLs read one by one, in breadth-first order, feeding the
 * creates to the batch writer as they come; updates, deletes, counters; setACLs last.
 */
export async function copyTree(sourceText: string, targetText: string, o: CopyOptions = {}): Promise<CopySummary> {
    const t0 = performance.now();
    const src = parseEndpoint(sourceText, "source");
    const dst = parseEndpoint(targetText, "target");
    const maxBuffer = o.juteMaxBuffer ?? DEFAULT_JUTE_MAXBUFFER;
    if (!Number.isInteger(maxBuffer) || maxBuffer < 65536) throw new CopyError(`--jute-maxbuffer ${maxBuffer}: at least 65536 bytes`, "usage");
    const maxOpBytes = maxBuffer - REQUEST_HEADROOM;
    const batchBytes = o.legacy?.ignoreByteBound ? Number.MAX_SAFE_INTEGER : Math.min(o.batchBytes ?? Math.floor(maxBuffer / 2), maxOpBytes);
    const batchOps = o.batchOps ?? 1000;
    if (!Number.isInteger(batchOps) || batchOps < 1) throw new CopyError(`--batch-ops ${batchOps}: a whole number of at least 1`, "usage");
    const aclMode = o.legacy?.acl ?? o.acl ?? "source";
    const includeEphemeral = o.includeEphemeral || o.legacy?.copyEphemeralAsPersistent === true;
    const since = resolveSince(o);
    const incremental = since !== undefined && (since.mtime !== undefined || since.zxid !== undefined);
    if (o.delete && incremental && since!.zxid === undefined) {
        throw new CopyError("--delete with --mtime-since <ms> cannot find deleted nodes: give a state file (it records the zxid that finds them) or copy in full", "usage");
    }
    const stateFile = o.stateFile ?? since?.file;
    const digests = new Set((o.targetAuth ?? []).filter((a) => a.scheme === "digest").map((a) => digestId(a.credentials)));
    const warnings: string[] = [];
    const rpc = new Rpc(o.stallTimeoutMs ?? 30_000);
    const progress = o.progress ?? (() => {});
    let source: Side | undefined;
    let target: Side | undefined;
    let writer: BatchWriter | undefined;
    const seconds = { connect: 0, readSource: 0, readTarget: 0, write: 0, verify: undefined as number | undefined, total: 0 };
    let lastReport = 0;
    const report = (stage: Progress["stage"], done: number, total?: number, force = false) => {
        const now = performance.now();
        if (force || now - lastReport > 200) {
            lastReport = now;
            progress({ stage, done, total, elapsedMs: now - t0 });
        }
    };
    try {
        // 1. Sessions: every source server (reads spread over them), one target session.
        const connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
        const sides = await Promise.allSettled([
            openSide("source", src, o.sourceAuth ?? [], connectTimeoutMs, true),
            openSide("target", dst, o.targetAuth ?? [], connectTimeoutMs, false),
        ]);
        if (sides[0].status === "fulfilled") source = sides[0].value;
        if (sides[1].status === "fulfilled") target = sides[1].value;
        for (const r of sides) if (r.status === "rejected") throw r.reason; // finally closes the other
        if (!source || !target) throw new Error("unreachable");
        if (source.unreachable.length > 0) warnings.push(`source servers not reached (read through the others): ${source.unreachable.join(", ")}`);
        seconds.connect = (performance.now() - t0) / 1000;
        const dstClient = target.clients[0];

        // 2. Checks before reading the tree: source path, overlap, state file.
        const rootStat = await rpc
            .track(rawGetAcl(source.clients[0], src.path))
            .then((r) => r.stat)
            .catch((e) => {
                if (rawCode(e) === ERR.noNode) throw new CopyError(`source path ${src.path} does not exist on ${formatConnectString(src.connect)}`, "check");
                throw readError(e, src.path, "source");
            });
        if (nodeKind(rootStat) === "ephemeral" && !includeEphemeral) throw new CopyError(`source path ${src.path} is an ephemeral node: nothing to copy (--include-ephemeral copies it as persistent)`, "check");
        if ((isInside(dst.path, src.path) || isInside(src.path, dst.path)) && (await sameEnsemble(rpc, source, target))) {
            throw new CopyError(`target ${dst.path} and source ${src.path} overlap on the same ensemble: the copy would read what it writes (choose a target path outside the source subtree)`, "usage");
        }
        if (since?.state && since.state.rootCzxid !== rootStat.czxid.toString(16)) {
            throw new CopyError(`--mtime-since ${since.file}: the state is of another tree (source root czxid ${since.state.rootCzxid}, now ${rootStat.czxid.toString(16)}): copy in full`, "usage");
        }
        const [srcMulti, dstMulti] = await Promise.all([
            supportsMultiRead(rpc, source, o.sourceAuth ?? [], connectTimeoutMs, src.path),
            supportsMultiRead(rpc, target, o.targetAuth ?? [], connectTimeoutMs, "/"),
        ]);
        if (!srcMulti) warnings.push("the source answers no read-only multi (ZooKeeper before 3.6): read one request per node");
        // The watermark: the least last-zxid over the source sessions, before any tree read.
        await Promise.all(source.clients.map((c) => rpc.track(rawGetAcl(c, "/"))));
        const watermark = source.clients.map(lastZxidOf).reduce((x, y) => (y < x ? y : x));

        // 3. The source subtree: stats, data, children.
        const tRead = performance.now();
        let read = 0;
        const srcCtx: ReadCtx = { side: "source", rpc, clients: source.clients, multi: srcMulti, inFlight: 4, onNodes: (n) => report("read source", (read += n)) };
        const srcNodes = await readSubtree(srcCtx, src.path);
        if (!srcNodes.has("")) throw new CopyError(`source path ${src.path} was deleted while it was read`, "check");
        report("read source", read, undefined, true);
        seconds.readSource = (performance.now() - tRead) / 1000;

        const changed = (n: ZNode): boolean => {
            if (!incremental) return true;
            const st = n.stat;
            if (since!.zxid !== undefined) return st.mzxid > since!.zxid || st.czxid > since!.zxid;
            return st.mtime >= since!.mtime! || st.ctime >= since!.mtime!;
        };
        const aclChanged = (n: ZNode): boolean => incremental && since!.state !== undefined && n.stat.aversion !== (since!.state.aversions[n.rel] ?? 0);

        // What is copied: ephemerals skipped; containers and TTL nodes become persistent.
        const plan: Plan = { ancestors: [], creates: [], setData: [], setAcl: [], deletes: [], bumps: [], skippedEphemeral: [], persistentOverEphemeral: [], asPersistent: [], extra: [], unchanged: 0 };
        const copied = new Map<string, ZNode>();
        for (const n of srcNodes.values()) {
            const kind = nodeKind(n.stat);
            if (kind === "ephemeral" && !includeEphemeral) {
                plan.skippedEphemeral.push(n.rel);
                continue;
            }
            if (kind === "container" || kind === "ttl") plan.asPersistent.push({ rel: n.rel, kind });
            copied.set(n.rel, n);
        }
        // Every value must fit the target's request limit (the ACL is not read yet: allow 4 KB).
        const tooLarge: string[] = [];
        for (const n of copied.values()) {
            if (changed(n) && MULTI_HEADER + strBytes(abs(dst.path, n.rel)) + 4 + n.data!.length + 4096 > maxOpBytes) tooLarge.push(`${abs(src.path, n.rel)} (${n.data!.length} bytes)`);
        }
        if (tooLarge.length > 0 && !o.legacy?.ignoreByteBound) {
            throw new CopyError(
                `${tooLarge.length} znode(s) are larger than the target accepts (jute.maxbuffer ${maxBuffer} bytes, less ${REQUEST_HEADROOM} for the request and 4096 for the ACL): ${tooLarge.slice(0, 10).join(", ")}${tooLarge.length > 10 ? ", ..." : ""}. Raise -Djute.maxbuffer on every target server (and pass the same --jute-maxbuffer here); nothing was written`,
                "check",
            );
        }

        // 4. What the target has: top-down where the nodes exist (full), or the changed nodes
        // and the parents whose children changed (incremental).
        const tTarget = performance.now();
        const dstRoot = dst.path;
        let targetRead = 0;
        const dstCtx: ReadCtx = { side: "target", rpc, clients: [dstClient], multi: dstMulti, inFlight: 4, onNodes: (n) => report("read target", (targetRead += n)) };
        const dstNodes = new Map<string, ZNode | null>(); // null: known absent
        if (dstRoot !== "/") {
            let p = "";
            for (const part of dstRoot.split("/").slice(1, -1)) {
                p += `/${part}`;
                const [exists] = await rpc.call<zookeeper.Stat | null>((cb) => dstClient.exists(p, cb));
                if (!exists) plan.ancestors.push(p);
            }
        }
        if (!incremental) {
            if (plan.ancestors.length === 0) {
                const got = await readSubtree(dstCtx, dstRoot, [""], (rel) => copied.has(rel));
                for (const [rel, n] of got) dstNodes.set(rel, n);
            }
            if (!dstNodes.has("")) dstNodes.set("", null);
        } else {
            const need = new Set<string>();
            for (const n of copied.values()) {
                if (changed(n) || aclChanged(n)) {
                    need.add(n.rel);
                    if (n.rel !== "") need.add(parentRel(n.rel));
                }
                if (since!.zxid !== undefined && n.stat.pzxid > since!.zxid) need.add(n.rel);
            }
            const got = await readNodes(dstCtx, dstRoot, [...need]);
            for (const [rel, n] of got) dstNodes.set(rel, n);
        }
        report("read target", targetRead, undefined, true);
        seconds.readTarget = (performance.now() - tTarget) / 1000;

        // 5. The plan (ACLs come in step 6).
        const toCreate = new Set<string>();
        const childSets = new Map<string, Set<string>>();
        const targetHasChild = (parent: string, name: string): boolean | undefined => {
            const k = dstNodes.get(parent);
            if (!k) return undefined;
            let set = childSets.get(parent);
            if (!set) childSets.set(parent, (set = new Set(k.children)));
            return set.has(name);
        };
        const ordered = [...copied.values()].sort((x, y) => depth(x.rel) - depth(y.rel) || (x.rel < y.rel ? -1 : x.rel > y.rel ? 1 : 0));
        /** Nodes whose ACL is read (source) and, where they exist, compared with the target's. */
        const aclNeeded: string[] = [];
        for (const n of ordered) {
            const known = dstNodes.get(n.rel);
            const parent = n.rel === "" ? undefined : parentRel(n.rel);
            const absent = known === null || (known === undefined && parent !== undefined && (toCreate.has(parent) || targetHasChild(parent, n.rel.slice(parent.length + 1)) === false));
            if (absent) {
                toCreate.add(n.rel);
                plan.creates.push({ rel: n.rel, data: n.data!, acl: [] });
                aclNeeded.push(n.rel);
                continue;
            }
            if (!known) {
                plan.unchanged++; // incremental: unchanged since the last run, not read on the target
                continue;
            }
            if (nodeKind(known.stat) === "ephemeral") warnings.push(`target ${abs(dstRoot, n.rel)} is an ephemeral node of a session on the target: updated in place`);
            if (changed(n) && !n.data!.equals(known.data ?? Buffer.alloc(0))) plan.setData.push({ rel: n.rel, data: n.data! });
            if (!incremental || aclChanged(n) || aclMode === "open") aclNeeded.push(n.rel);
        }
        // Target nodes the source lacks (children of nodes read on both sides).
        const extraRoots: string[] = [];
        for (const [rel, known] of dstNodes) {
            if (!known) continue;
            const sn = srcNodes.get(rel);
            if (!sn) continue;
            const keep = new Set(sn.children.filter((c) => copied.has(childRel(rel, c))));
            for (const c of known.children) {
                if (keep.has(c)) continue;
                const r = childRel(rel, c);
                const s2 = srcNodes.get(r);
                if (s2 && nodeKind(s2.stat) === "ephemeral") plan.persistentOverEphemeral.push(r);
                extraRoots.push(r);
            }
        }
        if (o.delete && extraRoots.length > 0) {
            const subtree = await readSubtree(dstCtx, dstRoot, extraRoots);
            plan.deletes = [...subtree.keys()].sort((x, y) => depth(y) - depth(x) || (x < y ? -1 : 1));
        } else {
            plan.extra = extraRoots;
        }
        for (const r of plan.persistentOverEphemeral) {
            warnings.push(`target ${abs(dstRoot, r)} is a persistent node where the source's is ephemeral (an older copy?): ${o.delete ? "deleted" : "kept; --delete removes it (Kafka refuses to start on a stale broker registration)"}`);
        }
        // Sequential counters: a parent's next sequential child is numbered by its cversion.
        if (o.legacy?.keepCounters !== false) {
            // A create adds one to its parent's cversion; a delete only moves pzxid (3.5+).
            const created = new Map<string, number>();
            for (const c of plan.creates) if (c.rel !== "") created.set(parentRel(c.rel), (created.get(parentRel(c.rel)) ?? 0) + 1);
            for (const n of copied.values()) {
                const known = dstNodes.get(n.rel);
                let after: number;
                if (toCreate.has(n.rel)) after = 0;
                else if (known) after = known.stat.cversion;
                else continue; // not read: unchanged since the last run, which brought it up
                after += created.get(n.rel) ?? 0;
                if (after < n.stat.cversion) plan.bumps.push({ rel: n.rel, from: after, to: n.stat.cversion });
            }
        }
        const withChildren = new Set<string>();
        for (const c of plan.creates) if (c.rel !== "") withChildren.add(parentRel(c.rel));
        for (const b of plan.bumps) withChildren.add(b.rel);
        const me: Acl = digests.size > 0 ? { perms: 31, scheme: "digest", id: [...digests][0] } : OPEN_ACL[0];

        // 6. ACLs (source, and target where the node exists), all before the first write: an ACL
        // can make the copy impossible (digest hashes hidden from this session).
        const tAcl = performance.now();
        const createByRel = new Map(plan.creates.map((c) => [c.rel, c]));
        const existingAcl = aclNeeded.filter((r) => !createByRel.has(r));
        const targetAcls = new Map<string, Acl[] | null>();
        const sourceAcls = new Map<string, Acl[] | null>();
        let aclRead = 0;
        const aclCtx = (ctx: ReadCtx): ReadCtx => ({ ...ctx, onNodes: (n) => report(ctx.side === "source" ? "read source" : "read target", (aclRead += n)) });
        await Promise.all([
            readAcls(aclCtx(dstCtx), dstRoot, existingAcl, (rel, acl) => {
                targetAcls.set(rel, acl);
            }),
            readAcls(aclCtx(srcCtx), src.path, aclNeeded, (rel, acl) => {
                sourceAcls.set(rel, acl);
            }),
        ]);
        seconds.readSource += (performance.now() - tAcl) / 1000;
        if (aclMode === "source") {
            const masked = [...sourceAcls].filter(([, acl]) => acl?.some((x) => x.scheme === "digest" && /:x$/.test(x.id)));
            if (masked.length > 0) {
                const [rel, acl] = masked[0];
                throw new CopyError(
                    `${masked.length} ACL(s) came back with their digest hashes hidden, e.g. ${abs(src.path, rel)} (${aclText(acl!)}): ZooKeeper shows them only to a session with ADMIN on the node. Copied like that they would lock everyone out. Authenticate the source session as a principal with ADMIN there, or as ZooKeeper's super user (--src-auth digest:super:<password>), or pass --acl open; nothing was written`,
                    "check",
                );
            }
        }
        for (const rel of aclNeeded) {
            let acl = sourceAcls.get(rel) ?? null;
            if (acl === null) {
                warnings.push(`${abs(src.path, rel)} was deleted on the source during the copy (copied as it was read, with an open ACL)`);
                acl = OPEN_ACL;
            }
            const want = aclMode === "open" ? OPEN_ACL : acl;
            const c = createByRel.get(rel);
            if (c) {
                c.acl = want;
                // An ACL that locks this session out of creating the children: create the node with
                // this session's identity added, set the real ACL after its children.
                if (withChildren.has(rel) && !grants(want, CREATE, digests)) {
                    plan.setAcl.push({ rel, acl: want, deferred: true });
                    c.acl = [...want, me];
                }
                const bytes = createOpBytes(abs(dstRoot, rel), c.data, c.acl);
                if (bytes > maxOpBytes && !o.legacy?.ignoreByteBound) {
                    throw new CopyError(`${abs(src.path, rel)}: its create (${bytes} bytes with its ACL) is larger than the target accepts (jute.maxbuffer ${maxBuffer} less ${REQUEST_HEADROOM}); nothing was written`, "check");
                }
            } else if (!sameAcl(want, targetAcls.get(rel) ?? undefined)) {
                plan.setAcl.push({ rel, acl: want, deferred: withChildren.has(rel) && !grants(want, CREATE, digests) });
            } else if (!plan.setData.some((x) => x.rel === rel)) {
                plan.unchanged++;
            }
        }

        // 7. Write: ancestors, creates (parents first), updates, deletes (deepest first),
        // counters, then ACLs.
        const tWrite = performance.now();
        let written = 0;
        const totalOps = () => plan.ancestors.length + plan.creates.length + plan.setData.length + plan.deletes.length + plan.bumps.length + plan.setAcl.length;
        const onDone = (k: number) => report("write", (written += k), totalOps());
        writer = o.dryRun ? undefined : new BatchWriter(rpc, dstClient, batchOps, batchBytes, o.batchesInFlight ?? 4, onDone);

        const summary: CopySummary = {
            source: src.text,
            target: dst.text,
            mode: incremental ? "incremental" : "full",
            since: incremental ? { mtime: since!.mtime, zxid: since!.zxid?.toString(16) } : undefined,
            dryRun: !!o.dryRun,
            sourceNodes: srcNodes.size,
            changedNodes: [...copied.values()].filter(changed).length,
            targetNodesRead: targetRead,
            plan: {
                ancestors: plan.ancestors.length,
                creates: plan.creates.length,
                setData: plan.setData.length,
                setAcl: plan.setAcl.length,
                deletes: plan.deletes.length,
                cversionBumps: plan.bumps.length,
                skippedEphemeral: plan.skippedEphemeral.length,
                persistentOverEphemeral: plan.persistentOverEphemeral.length,
                asPersistent: plan.asPersistent.length,
                extra: plan.extra.length,
                unchanged: plan.unchanged,
            },
            written: { batches: 0, ops: 0, bytes: 0 },
            unreachable: { source: source.unreachable, target: [] },
            seconds,
            nodesPerSec: 0,
            warnings,
        };
        for (const x of plan.asPersistent) warnings.push(`${abs(src.path, x.rel)} is a ${x.kind} node: copied as a persistent node`);
        if (plan.extra.length > 0) warnings.push(`${plan.extra.length} target node(s) the source lacks were kept (--delete removes them), e.g. ${abs(dstRoot, plan.extra[0])}`);

        if (!writer) {
            summary.planText = planText(plan, src.path, dstRoot);
        } else {
            for (const p of plan.ancestors) {
                await rpc.call((cb) => dstClient.create(p, Buffer.alloc(0), fromAcl(OPEN_ACL), zookeeper.CreateMode.PERSISTENT, cb)).catch((e) => {
                    if (codeOf(e) !== "NODE_EXISTS") throw new CopyError(`creating the target's ancestor ${p}: ${codeOf(e) ?? zkErrorName(e)}`, "write");
                });
                onDone(1);
            }
            for (const c of plan.creates) {
                const path = abs(dstRoot, c.rel);
                await writer.push({ kind: "create", path, data: c.data, acl: c.acl, bytes: createOpBytes(path, c.data, c.acl) });
            }
            for (const x of plan.setData) {
                const path = abs(dstRoot, x.rel);
                await writer.push({ kind: "set", path, data: x.data, bytes: setDataOpBytes(path, x.data) });
            }
            for (const d of plan.deletes) {
                const path = abs(dstRoot, d);
                await writer.push({ kind: "delete", path, bytes: deleteOpBytes(path) });
            }
            // Counters: create and delete a scratch child (both in one batch) until the parent's
            // cversion is there: each create adds one.
            for (const b of plan.bumps) {
                const base = abs(dstRoot, b.rel);
                const path = `${base === "/" ? "" : base}/zkmigrate-cversion-${process.pid}`;
                const cb = createOpBytes(path, Buffer.alloc(0), OPEN_ACL);
                for (let gap = b.to - b.from; gap > 0; gap--) {
                    await writer.push({ kind: "create", path, data: Buffer.alloc(0), acl: OPEN_ACL, bytes: cb }, { kind: "delete", path, bytes: deleteOpBytes(path) });
                }
            }
            await writer.finish();
            // How much a pair adds depends on the server (a delete in a multi may or may not count):
            // read the counters back and top them up, a bounded number of times.
            for (let round = 0; round < 5 && plan.bumps.length > 0; round++) {
                const short: { rel: string; path: string; gap: number }[] = [];
                for (const b of plan.bumps) {
                    const base = abs(dstRoot, b.rel);
                    const [st] = await rpc.call<zookeeper.Stat | null>((cb) => dstClient.exists(base, cb));
                    if (st && st.cversion < b.to) short.push({ rel: b.rel, path: `${base === "/" ? "" : base}/zkmigrate-cversion-${process.pid}`, gap: b.to - st.cversion });
                }
                if (short.length === 0) break;
                if (round === 4) throw new CopyError(`the cversion of ${abs(dstRoot, short[0].rel)} stays below the source's after 5 rounds`, "write");
                for (const x of short) {
                    const cb = createOpBytes(x.path, Buffer.alloc(0), OPEN_ACL);
                    for (let i = 0; i < x.gap; i++) await writer.push({ kind: "create", path: x.path, data: Buffer.alloc(0), acl: OPEN_ACL, bytes: cb }, { kind: "delete", path: x.path, bytes: deleteOpBytes(x.path) });
                }
                await writer.finish();
            }
            // setACL is not a multi operation: many in flight; deferred ones (parents) last.
            const aclOrder = [...plan.setAcl].sort((x, y) => Number(x.deferred) - Number(y.deferred) || depth(y.rel) - depth(x.rel));
            await forEachLimited(dstCtx, aclOrder, 256, async (c, x) => {
                const path = abs(dstRoot, x.rel);
                await rpc.call((cb) => c.setACL(path, fromAcl(x.acl), -1, cb)).catch((e) => {
                    throw new CopyError(`setting the ACL of ${path}: ${codeOf(e) ?? zkErrorName(e)}${codeOf(e) === "NO_AUTH" ? " (the node's ACL on the target does not grant ADMIN to this session; pass --dst-auth)" : ""}`, "write");
                });
                onDone(1);
            });
            summary.written = { batches: writer.result.batches, ops: writer.result.ops + plan.ancestors.length + plan.setAcl.length, bytes: writer.result.bytes };
            report("write", written, totalOps(), true);
            seconds.write = (performance.now() - tWrite) / 1000;

            // 8. The state for the next incremental run.
            if (stateFile) {
                const aversions: Record<string, number> = {};
                let newest = since?.state?.mtime ?? 0;
                for (const n of srcNodes.values()) {
                    if (n.stat.aversion !== 0) aversions[n.rel] = n.stat.aversion;
                    if (n.stat.mtime > newest) newest = n.stat.mtime;
                }
                writeState(stateFile, { version: 1, source: src.text, rootCzxid: rootStat.czxid.toString(16), zxid: watermark.toString(16), mtime: newest, aversions, writtenAt: new Date().toISOString() });
                summary.stateFile = stateFile;
            }
        }
        summary.plan.setAcl = plan.setAcl.length;
        summary.plan.unchanged = plan.unchanged;
        seconds.total = (performance.now() - t0) / 1000;
        summary.nodesPerSec = Math.round(srcNodes.size / seconds.total);

        if (o.verify) {
            const tv = performance.now();
            summary.verify = await verifyTrees(rpc, source, target, srcMulti, dstMulti, { includeEphemeral, acl: aclMode, progress: (done) => report("verify", done) });
            seconds.verify = (performance.now() - tv) / 1000;
        }
        return summary;
    } catch (e) {
        await writer?.abandon();
        if (e instanceof CopyError) throw e;
        if (rpc.failed) throw rpc.failed;
        throw e;
    } finally {
        rpc.close();
        closeSide(source);
        closeSide(target);
    }
}

function planText(plan: Plan, srcRoot: string, dstRoot: string, limit = 20): string {
    const lines: string[] = [];
    const section = <T>(title: string, items: T[], f: (x: T) => string) => {
        if (items.length === 0) return;
        lines.push(`${title} (${items.length}):`);
        for (const x of items.slice(0, limit)) lines.push(`  ${f(x)}`);
        if (items.length > limit) lines.push(`  ... and ${items.length - limit} more`);
    };
    section("create ancestor (open ACL)", plan.ancestors, (p) => p);
    section("create", plan.creates, (c) => `${abs(dstRoot, c.rel)}  ${c.data.length} bytes  ${aclText(c.acl)}`);
    section("set data", plan.setData, (s) => `${abs(dstRoot, s.rel)}  ${s.data.length} bytes`);
    section("set ACL", plan.setAcl, (a) => `${abs(dstRoot, a.rel)}  ${aclText(a.acl)}${a.deferred ? "  (after its children)" : ""}`);
    section("delete", plan.deletes, (d) => abs(dstRoot, d));
    section("raise cversion (sequential counter)", plan.bumps, (b) => `${abs(dstRoot, b.rel)}  ${b.from} -> ${b.to}`);
    section("skip ephemeral", plan.skippedEphemeral, (r) => abs(srcRoot, r));
    if (lines.length === 0) lines.push("nothing to do: the target has the source's subtree");
    return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Verify

async function verifyTrees(
    rpc: Rpc,
    source: Side,
    target: Side,
    srcMulti: boolean,
    dstMulti: boolean,
    o: { includeEphemeral: boolean; acl: "source" | "open"; progress: (done: number) => void },
): Promise<VerifyResult> {
    let done = 0;
    const onNodes = (n: number) => o.progress((done += n));
    const srcCtx: ReadCtx = { side: "source", rpc, clients: source.clients, multi: srcMulti, inFlight: 4, onNodes };
    const dstCtx: ReadCtx = { side: "target", rpc, clients: target.clients, multi: dstMulti, inFlight: 4, onNodes };
    const [a, b] = await Promise.all([readSubtree(srcCtx, source.endpoint.path), readSubtree(dstCtx, target.endpoint.path)]);
    const acls = async (ctx: ReadCtx, root: string, rels: string[]) => {
        const m = new Map<string, Acl[] | null>();
        await readAcls(ctx, root, rels, (rel, acl) => {
            m.set(rel, acl);
        });
        return m;
    };
    const common = [...a.keys()].filter((r) => b.has(r));
    const [aAcl, bAcl] = await Promise.all([acls(srcCtx, source.endpoint.path, common), acls(dstCtx, target.endpoint.path, common)]);
    const differences: Difference[] = [];
    const dstPath = (rel: string) => abs(target.endpoint.path, rel);
    let compared = 0;
    for (const [rel, s] of a) {
        const kind = nodeKind(s.stat);
        const t = b.get(rel);
        if (kind === "ephemeral" && !o.includeEphemeral) {
            if (t) differences.push({ path: dstPath(rel), what: "ephemeral", detail: "ephemeral on the source, present on the target" });
            continue;
        }
        compared++;
        if (!t) {
            differences.push({ path: dstPath(rel), what: "missing", detail: "not on the target" });
            continue;
        }
        if (!s.data!.equals(t.data!)) differences.push({ path: dstPath(rel), what: "data", detail: `${s.data!.length} bytes on the source, ${t.data!.length} on the target` });
        const want = o.acl === "open" ? OPEN_ACL : (aAcl.get(rel) ?? undefined);
        if (!sameAcl(want, bAcl.get(rel) ?? undefined)) differences.push({ path: dstPath(rel), what: "acl", detail: `${aclText(want)} expected, ${aclText(bAcl.get(rel) ?? undefined)} on the target` });
        if (nodeKind(t.stat) === "ephemeral") differences.push({ path: dstPath(rel), what: "ephemeral", detail: "ephemeral on the target (a session of the target owns it)" });
        if (t.stat.cversion < s.stat.cversion) differences.push({ path: dstPath(rel), what: "cversion", detail: `cversion ${t.stat.cversion} on the target, ${s.stat.cversion} on the source: a new sequential child could collide` });
    }
    for (const rel of b.keys()) {
        if (!a.has(rel)) differences.push({ path: dstPath(rel), what: "extra", detail: "on the target only" });
    }
    return { ok: differences.length === 0, compared, differences: differences.slice(0, 100), total: differences.length };
}

export function formatCopySummary(s: CopySummary): string {
    const lines: string[] = [];
    lines.push(`${s.dryRun ? "plan" : "copied"} ${s.source} -> ${s.target} (${s.mode}${s.since ? `, since ${s.since.zxid ? `zxid 0x${s.since.zxid}` : `mtime ${s.since.mtime}`}` : ""})`);
    lines.push(`  source nodes ${s.sourceNodes}${s.mode === "incremental" ? ` (${s.changedNodes} changed since)` : ""}, target nodes read ${s.targetNodesRead}`);
    const p = s.plan;
    lines.push(`  create ${p.creates} (+${p.ancestors} ancestors), set data ${p.setData}, set ACL ${p.setAcl}, delete ${p.deletes}, raise cversion ${p.cversionBumps}, unchanged ${p.unchanged}`);
    lines.push(`  skipped ephemeral ${p.skippedEphemeral}${p.extra ? `, target-only kept ${p.extra}` : ""}`);
    if (!s.dryRun) lines.push(`  written: ${s.written.ops} operations in ${s.written.batches} multi batches, ${s.written.bytes} bytes`);
    const sec = s.seconds;
    lines.push(`  time: connect ${sec.connect.toFixed(2)} s, read source ${sec.readSource.toFixed(2)} s, read target ${sec.readTarget.toFixed(2)} s, write ${sec.write.toFixed(2)} s, total ${sec.total.toFixed(2)} s (${s.nodesPerSec} nodes/s)`);
    if (s.stateFile) lines.push(`  state for the next incremental run: ${s.stateFile}`);
    for (const w of s.warnings) lines.push(`  warning: ${w}`);
    if (s.planText) lines.push("", s.planText);
    if (s.verify) {
        lines.push(`  verify: ${s.verify.ok ? "identical" : `${s.verify.total} difference(s)`} over ${s.verify.compared} nodes${s.seconds.verify !== undefined ? ` (${s.seconds.verify.toFixed(2)} s)` : ""}`);
        for (const d of s.verify.differences.slice(0, 20)) lines.push(`    ${d.what} ${d.path}: ${d.detail}`);
        if (s.verify.total > 20) lines.push(`    ... and ${s.verify.total - 20} more`);
    }
    return lines.join("\n") + "\n";
}
