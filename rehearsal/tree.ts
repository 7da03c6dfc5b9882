// Generated znode trees for the copy benchmark and tests: mixed depth and fan-out, 0-4 KB of
// data, some digest ACLs, some queues of sequential children (with deletions, so that a
// parent's cversion is above its child count). Deterministic for a seed. Written in multi
// batches bounded by bytes and ops, several in flight on one session (the bulk-create path).
import * as zookeeper from "node-zookeeper-client";
import { createOpBytes, digestId, type Acl } from "../src/zk/copy";

/** The digest principal generated trees grant ALL to (and that copies authenticate as). */
export const TREE_ADMIN = "zkmigrate-admin:bench-secret";

export interface TreeSpec {
    nodes: number;
    seed?: number;
    /** Largest data size in bytes (uniform from 0). */
    maxData?: number;
    /** Share of nodes with a digest ACL (admin ALL, world READ). */
    aclShare?: number;
    /** Share of internal nodes that are queues of sequential children. */
    queueShare?: number;
}

type TreeOp =
    | { kind: "create"; rel: string; data: Buffer; acl: Acl[]; sequential: boolean }
    | { kind: "delete"; rel: string };

export interface Tree {
    ops: TreeOp[];
    /** The finished tree as plain creates, parents first (sequential children by their names). */
    finals: TreeOp[];
    /** Relative paths of the persistent nodes, parents before children. */
    nodes: string[];
    /** Internal nodes with an open ACL (places for new children). */
    openParents: string[];
    /** Leaves with an open ACL that are not queue items (safe to change or delete). */
    openLeaves: string[];
    dataBytes: number;
}

/** mulberry32: a small deterministic PRNG. */
export function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const POOL = (() => {
    const r = prng(7);
    const b = Buffer.alloc(1 << 20);
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
    return b;
})();

function randomData(r: () => number, max: number): Buffer {
    const n = Math.floor(r() * (max + 1));
    const at = Math.floor(r() * (POOL.length - n));
    return POOL.subarray(at, at + n);
}

export const OPEN: Acl[] = [{ perms: 31, scheme: "world", id: "anyone" }];
export function adminAcl(): Acl[] {
    return [
        { perms: 31, scheme: "digest", id: digestId(TREE_ADMIN) },
        { perms: 1, scheme: "world", id: "anyone" },
    ];
}

/** The operations that build a tree of about `spec.nodes` persistent znodes (the root included). */
export function planTree(spec: TreeSpec): Tree {
    const r = prng(spec.seed ?? 1);
    const maxData = spec.maxData ?? 4096;
    const aclShare = spec.aclShare ?? 0.05;
    const queueShare = spec.queueShare ?? 0.02;
    const admin = adminAcl();
    const tree: Tree = { ops: [], finals: [], nodes: [], openParents: [], openLeaves: [], dataBytes: 0 };
    const add = (rel: string, acl: Acl[]) => {
        const data = randomData(r, maxData);
        tree.ops.push({ kind: "create", rel, data, acl, sequential: false });
        tree.finals.push({ kind: "create", rel, data, acl, sequential: false });
        tree.nodes.push(rel);
        tree.dataBytes += data.length;
        return data;
    };
    add("", OPEN);
    const queue: { rel: string; depth: number }[] = [{ rel: "", depth: 0 }];
    let count = 1;
    while (count < spec.nodes && queue.length > 0) {
        const { rel, depth } = queue.shift()!;
        const isQueue = depth > 0 && r() < queueShare;
        const x = r();
        let fanout = x < 0.55 ? 2 + Math.floor(r() * 7) : x < 0.9 ? 10 + Math.floor(r() * 31) : 100 + Math.floor(r() * 301);
        if (depth === 0) fanout = Math.max(fanout, 20);
        fanout = Math.min(fanout, spec.nodes - count);
        if (isQueue) {
            // Sequential children: create 2k, delete every other one (cversion 3k, k children).
            const k = Math.max(1, Math.floor(fanout / 2));
            for (let i = 0; i < 2 * k; i++) {
                const data = randomData(r, maxData);
                tree.ops.push({ kind: "create", rel: `${rel}/item-`, data, acl: OPEN, sequential: true });
                if (i % 2 === 1) {
                    tree.nodes.push(`${rel}/item-${String(i).padStart(10, "0")}`);
                    tree.finals.push({ kind: "create", rel: `${rel}/item-${String(i).padStart(10, "0")}`, data, acl: OPEN, sequential: false });
                    tree.dataBytes += data.length;
                }
            }
            for (let i = 0; i < 2 * k; i += 2) tree.ops.push({ kind: "delete", rel: `${rel}/item-${String(i).padStart(10, "0")}` });
            count += k;
            continue;
        }
        for (let i = 0; i < fanout; i++) {
            const child = `${rel}/n${i}`;
            const restricted = r() < aclShare;
            add(child, restricted ? admin : OPEN);
            count++;
            const internal = depth < 7 && r() < 0.12;
            if (internal) queue.push({ rel: child, depth: depth + 1 });
            if (!restricted && internal) tree.openParents.push(child);
            if (!restricted && !internal) tree.openLeaves.push(child);
        }
    }
    return tree;
}

function call<T>(f: (cb: (err: unknown, v?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v as T))));
}

/**
 * Writes `ops` under `root` (absent) in multi batches (at most `batchOps` ops and `batchBytes`
 * bytes each), `inFlight` batches at a time on `client`. Returns the seconds it took.
 */
export async function writeOps(
    client: zookeeper.Client,
    root: string,
    ops: TreeOp[],
    o: { batchOps?: number; batchBytes?: number; inFlight?: number } = {},
): Promise<number> {
    const maxOps = o.batchOps ?? 1000;
    const maxBytes = o.batchBytes ?? 512 * 1024;
    const list: TreeOp[][] = [];
    let cur: TreeOp[] = [];
    let bytes = 0;
    for (const op of ops) {
        const b = op.kind === "create" ? createOpBytes(root + op.rel, op.data, op.acl) : 32 + Buffer.byteLength(root + op.rel);
        if (cur.length > 0 && (cur.length >= maxOps || bytes + b > maxBytes)) {
            list.push(cur);
            cur = [];
            bytes = 0;
        }
        cur.push(op);
        bytes += b;
    }
    if (cur.length > 0) list.push(cur);
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
        while (next < list.length) {
            const batch = list[next++];
            const t = client.transaction();
            for (const op of batch) {
                if (op.kind === "delete") t.remove(root + op.rel, -1);
                else {
                    const acl = op.acl.map((a) => new zookeeper.ACL(a.perms, new zookeeper.Id(a.scheme, a.id)));
                    t.create(root + op.rel, op.data, acl, op.sequential ? zookeeper.CreateMode.PERSISTENT_SEQUENTIAL : zookeeper.CreateMode.PERSISTENT);
                }
            }
            await call((cb) => t.commit(cb as never));
        }
    };
    await Promise.all(Array.from({ length: o.inFlight ?? 4 }, worker));
    return (performance.now() - t0) / 1000;
}

/** Removes a tree written by writeOps(finals) under `root`, children before parents, in multi batches. */
export async function deleteTree(client: zookeeper.Client, root: string, tree: Tree): Promise<number> {
    const ops: TreeOp[] = tree.nodes
        .slice()
        .reverse()
        .map((rel) => ({ kind: "delete" as const, rel }));
    // Several batches in flight on one session: they are applied in the order sent.
    return writeOps(client, root, ops);
}

/** Changes about `share` of the tree: mostly new data, some new nodes, some deletions. */
export function planChanges(tree: Tree, share: number, seed = 2): { ops: TreeOp[]; setData: { rel: string; data: Buffer }[]; count: number } {
    const r = prng(seed);
    const n = Math.max(1, Math.round(tree.nodes.length * share));
    const setData: { rel: string; data: Buffer }[] = [];
    const ops: TreeOp[] = [];
    const leaves = [...tree.openLeaves];
    const used = new Set<string>();
    const pick = (list: string[]) => {
        for (let tries = 0; tries < 100; tries++) {
            const x = list[Math.floor(r() * list.length)];
            if (x !== undefined && !used.has(x)) {
                used.add(x);
                return x;
            }
        }
        return undefined;
    };
    for (let i = 0; i < n; i++) {
        const x = r();
        if (x < 0.8 || tree.openParents.length === 0) {
            const rel = pick(leaves);
            if (rel) setData.push({ rel, data: randomData(r, 4096) });
        } else if (x < 0.9) {
            const parent = tree.openParents[Math.floor(r() * tree.openParents.length)];
            ops.push({ kind: "create", rel: `${parent}/new${i}`, data: randomData(r, 4096), acl: OPEN, sequential: false });
        } else {
            const rel = pick(leaves);
            if (rel) ops.push({ kind: "delete", rel });
        }
    }
    return { ops, setData, count: setData.length + ops.length };
}

/** Applies planChanges' result under `root`. */
export async function applyChanges(client: zookeeper.Client, root: string, changes: ReturnType<typeof planChanges>): Promise<void> {
    // Multis of at most 512 KB (a request over jute.maxbuffer makes the server drop the connection).
    for (let i = 0; i < changes.setData.length; ) {
        const t = client.transaction();
        let bytes = 0;
        for (; i < changes.setData.length && bytes + changes.setData[i].data.length < 512 * 1024; i++) {
            t.setData(root + changes.setData[i].rel, changes.setData[i].data, -1);
            bytes += changes.setData[i].data.length + 64;
        }
        await call((cb) => t.commit(cb as never));
    }
    await writeOps(client, root, changes.ops, { inFlight: 1 });
}
