// Reading a subtree: ZooKeeper 3.6+'s read-only multi (getData and getChildren, hundreds per
// request) for stats, data and children; getACL one node at a time (it has no multi form), many
// in flight. Servers before 3.6 are read one request per node.
import type * as zookeeper from "node-zookeeper-client";
import { formatConnectString, formatServer } from "../../format/connect-string";
import { ERR, RawError, rawGetAcl, rawGetChildren, rawGetData, rawMultiRead } from "../raw";
import { zkErrorName } from "../session";
import { type AuthInfo, CopyError } from "./options";
import { codeOf, connectOne, type Rpc, type Side } from "./sessions";
import { type Acl, type NodeStat, type ZNode, abs, childRel } from "./znode";

export interface ReadCtx {
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

export function rawCode(e: unknown): number | undefined {
    return e instanceof RawError ? e.code : undefined;
}

/** Runs `f` over `items` with `limit` in flight, round-robin over the clients. */
export async function forEachLimited<T>(ctx: ReadCtx, items: T[], limit: number, f: (c: zookeeper.Client, x: T) => Promise<void>): Promise<void> {
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
export async function readNodes(ctx: ReadCtx, root: string, rels: string[]): Promise<Map<string, ZNode | null>> {
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

/**
 * The whole subtree, level by level; `follow` says which children to descend into; `onLevel`
 * hears the paths found (a level, or with multis a group of children) before they are read
 * (the ACL prefetch starts on them).
 */
export async function readSubtree(
    ctx: ReadCtx,
    root: string,
    start: string[] = [""],
    follow: (rel: string) => boolean = () => true,
    onLevel?: (rels: string[]) => void,
): Promise<Map<string, ZNode>> {
    if (ctx.multi) return streamSubtree(ctx, root, start, follow, onLevel);
    const nodes = new Map<string, ZNode>();
    let level = start;
    while (level.length > 0) {
        onLevel?.(level);
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

/**
 * The subtree with read-only multis, without waiting for a level to end: the children of a
 * group of nodes are read as soon as the group's data is, and their data as soon as their names
 * are (a tree's levels are round trips otherwise, and a level's last multi held up the next).
 * Children multis go first: they open the next reads.
 */
function streamSubtree(ctx: ReadCtx, root: string, start: string[], follow: (rel: string) => boolean, onFound?: (rels: string[]) => void): Promise<Map<string, ZNode>> {
    const nodes = new Map<string, ZNode>();
    const dataQ: string[] = [...start];
    const childQ: ZNode[] = [];
    let dataAt = 0;
    let childAt = 0;
    let active = 0;
    let k = 0;
    const limit = ctx.inFlight * ctx.clients.length;
    let avg = 1024;
    let seen = 0;
    let bytes = 0;
    const isRootZk = (rel: string) => root === "/" && rel === "";
    onFound?.(start);
    return new Promise((resolve, reject) => {
        let failed = false;
        const fail = (e: unknown) => {
            if (failed) return;
            failed = true;
            reject(e);
        };
        const dataJob = (c: zookeeper.Client, group: string[]) =>
            ctx.rpc
                .track(rawMultiRead(c, group.map((rel) => ({ op: "getData" as const, path: abs(root, rel) }))))
                .catch((e) => {
                    throw readError(e, abs(root, group[0]), ctx.side);
                })
                .then((results) => {
                    results.forEach((r, i) => {
                        const rel = group[i];
                        if (!r.ok) {
                            if (r.err !== ERR.noNode) throw readError(new RawError(r.err, "getData"), abs(root, rel), ctx.side);
                            return;
                        }
                        const n: ZNode = { rel, stat: r.stat!, data: r.data!, children: [] };
                        nodes.set(rel, n);
                        seen++;
                        bytes += r.data!.length;
                        if (n.stat.numChildren > 0) childQ.push(n);
                    });
                    avg = bytes / Math.max(1, seen);
                    ctx.onNodes?.(group.length);
                });
        const childJob = (c: zookeeper.Client, group: ZNode[]) =>
            ctx.rpc
                .track(rawMultiRead(c, group.map((n) => ({ op: "getChildren" as const, path: abs(root, n.rel) }))))
                .catch((e) => {
                    throw readError(e, abs(root, group[0].rel), ctx.side);
                })
                .then((results) => {
                    const found: string[] = [];
                    results.forEach((r, i) => {
                        const n = group[i];
                        if (!r.ok) {
                            if (r.err !== ERR.noNode) throw readError(new RawError(r.err, "getChildren"), abs(root, n.rel), ctx.side);
                            nodes.delete(n.rel); // deleted between its two reads
                            return;
                        }
                        n.children = r.children!.sort();
                        if (isRootZk(n.rel)) n.children = n.children.filter((x) => x !== "zookeeper");
                        for (const name of n.children) {
                            const child = childRel(n.rel, name);
                            if (follow(child)) found.push(child);
                        }
                    });
                    for (const r of found) dataQ.push(r);
                    if (found.length > 0) onFound?.(found);
                });
        const next = (): (() => Promise<void>) | undefined => {
            const c = ctx.clients[k++ % ctx.clients.length];
            if (childAt < childQ.length) {
                const group: ZNode[] = [];
                let names = 0;
                while (childAt < childQ.length && group.length < 500) {
                    const n = childQ[childAt];
                    if (group.length > 0 && names + n.stat.numChildren > MULTI_CHILDREN) break;
                    group.push(n);
                    names += n.stat.numChildren;
                    childAt++;
                }
                return () => childJob(c, group);
            }
            if (dataAt < dataQ.length) {
                const take = Math.max(8, Math.min(500, Math.floor(MULTI_READ_BYTES / Math.max(64, avg))));
                const group = dataQ.slice(dataAt, dataAt + take);
                dataAt += group.length;
                return () => dataJob(c, group);
            }
            return undefined;
        };
        const pump = () => {
            while (!failed && active < limit) {
                const job = next();
                if (!job) break;
                active++;
                job().then(
                    () => {
                        active--;
                        pump();
                    },
                    (e) => {
                        active--;
                        fail(e);
                    },
                );
            }
            if (!failed && active === 0 && childAt >= childQ.length && dataAt >= dataQ.length) resolve(nodes);
        };
        pump();
    });
}

/** The ACL of each node, `onAcl` called in the order of `rels` (null: the node is gone). */
export async function readAcls(ctx: ReadCtx, root: string, rels: string[], onAcl: (rel: string, acl: Acl[] | null, stat?: NodeStat) => Promise<void> | void): Promise<void> {
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

export function readError(e: unknown, path: string, side: "source" | "target"): Error {
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
export async function supportsMultiRead(rpc: Rpc, side: Side, auth: AuthInfo[], timeoutMs: number, path: string): Promise<boolean> {
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


/**
 * ACLs read while the data is: paths are added as they become known (level by level), read
 * `limit` at a time over the clients, in the order added. A full copy needs every source ACL,
 * and getACL has no multi form: read alone they took longer than the data and children.
 */
export class AclPrefetch {
    readonly acls = new Map<string, Acl[] | null>();
    private readonly queue: string[] = [];
    private at = 0;
    private active = 0;
    private k = 0;
    private error?: Error;
    private waiters: (() => void)[] = [];

    constructor(
        private readonly ctx: ReadCtx,
        private readonly root: string,
        private readonly limit: number,
    ) {}

    add(rels: string[]): void {
        for (const r of rels) this.queue.push(r);
        this.pump();
    }

    private pump(): void {
        while (this.active < this.limit && this.at < this.queue.length && !this.error && !this.ctx.rpc.failed) {
            const rel = this.queue[this.at++];
            const c = this.ctx.clients[this.k++ % this.ctx.clients.length];
            const path = abs(this.root, rel);
            this.active++;
            this.ctx.rpc
                .track(rawGetAcl(c, path))
                .then(
                    ({ acl }) => {
                        this.acls.set(rel, acl);
                    },
                    (e) => {
                        if (rawCode(e) === ERR.noNode) this.acls.set(rel, null);
                        else this.error ??= readError(e, path, this.ctx.side);
                    },
                )
                .finally(() => {
                    this.active--;
                    this.ctx.onNodes?.(1);
                    this.pump();
                    if (this.active === 0) for (const w of this.waiters.splice(0)) w();
                });
        }
    }

    /** Every ACL added so far (throws the first read error). */
    async finish(): Promise<Map<string, Acl[] | null>> {
        while (this.active > 0 || (this.at < this.queue.length && !this.error && !this.ctx.rpc.failed)) {
            await new Promise<void>((r) => this.waiters.push(r));
        }
        if (this.error) throw this.error;
        if (this.ctx.rpc.failed) throw this.ctx.rpc.failed;
        return this.acls;
    }
}
