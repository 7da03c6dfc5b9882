// Writing a ChangeSet: multi batches bounded by bytes and by op count, several in flight on the
// one target session (a session's requests are applied in order, so parents still come before
// their children); counters raised by scratch children; setACLs last (not a multi operation).
import * as zookeeper from "node-zookeeper-client";
import { zkErrorName } from "../session";
import type { ChangeSet } from "./diff";
import { CopyError } from "./options";
import { type ReadCtx, forEachLimited } from "./read";
import { codeOf, type Rpc } from "./sessions";
import { type Acl, OPEN_ACL, abs, createOpBytes, deleteOpBytes, depth, fromAcl, setDataOpBytes } from "./znode";

export type Op =
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
export class BatchWriter {
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


export interface WriteTarget {
    rpc: Rpc;
    client: zookeeper.Client;
    /** For the setACLs (many in flight). */
    ctx: ReadCtx;
    root: string;
    writer: BatchWriter;
    /** Operations done (progress). */
    onDone: (n: number) => void;
}

/** The scratch child whose create and delete raise a parent's cversion by one. */
function scratchPath(base: string): string {
    return `${base === "/" ? "" : base}/zkmigrate-cversion-${process.pid}`;
}

/**
 * Ancestors, creates (parents first), updates, deletes (deepest first), counters, then ACLs.
 * Returns the seconds the counters and the setACLs took (where the write's time goes).
 */
export async function writeChanges(cs: ChangeSet, w: WriteTarget): Promise<{ counters: number; acl: number }> {
    const { rpc, client, root, writer, onDone } = w;
    for (const p of cs.ancestors) {
        await rpc.call((cb) => client.create(p, Buffer.alloc(0), fromAcl(OPEN_ACL), zookeeper.CreateMode.PERSISTENT, cb)).catch((e) => {
            if (codeOf(e) !== "NODE_EXISTS") throw new CopyError(`creating the target's ancestor ${p}: ${codeOf(e) ?? zkErrorName(e)}`, "write");
        });
        onDone(1);
    }
    for (const c of cs.creates) {
        const path = abs(root, c.rel);
        await writer.push({ kind: "create", path, data: c.data, acl: c.acl, bytes: createOpBytes(path, c.data, c.acl) });
    }
    for (const x of cs.setData) {
        const path = abs(root, x.rel);
        await writer.push({ kind: "set", path, data: x.data, bytes: setDataOpBytes(path, x.data) });
    }
    for (const d of cs.deletes) {
        const path = abs(root, d);
        await writer.push({ kind: "delete", path, bytes: deleteOpBytes(path) });
    }
    const tCounters = performance.now();
    // Counters: create and delete a scratch child (both in one batch) until the parent's
    // cversion is there: each create adds one.
    for (const b of cs.bumps) {
        const path = scratchPath(abs(root, b.rel));
        const cb = createOpBytes(path, Buffer.alloc(0), OPEN_ACL);
        for (let gap = b.to - b.from; gap > 0; gap--) {
            await writer.push({ kind: "create", path, data: Buffer.alloc(0), acl: OPEN_ACL, bytes: cb }, { kind: "delete", path, bytes: deleteOpBytes(path) });
        }
    }
    await writer.finish();
    // How much a pair adds depends on the server (a delete in a multi may or may not count):
    // read the counters back and top them up, a bounded number of times.
    for (let round = 0; round < 5 && cs.bumps.length > 0; round++) {
        const short: { rel: string; path: string; gap: number }[] = [];
        const stats = await Promise.all(cs.bumps.map((b) => rpc.call<zookeeper.Stat | null>((cb) => client.exists(abs(root, b.rel), cb))));
        cs.bumps.forEach((b, i) => {
            const st = stats[i][0];
            if (st && st.cversion < b.to) short.push({ rel: b.rel, path: scratchPath(abs(root, b.rel)), gap: b.to - st.cversion });
        });
        if (short.length === 0) break;
        if (round === 4) throw new CopyError(`the cversion of ${abs(root, short[0].rel)} stays below the source's after 5 rounds`, "write");
        for (const x of short) {
            const cb = createOpBytes(x.path, Buffer.alloc(0), OPEN_ACL);
            for (let i = 0; i < x.gap; i++) await writer.push({ kind: "create", path: x.path, data: Buffer.alloc(0), acl: OPEN_ACL, bytes: cb }, { kind: "delete", path: x.path, bytes: deleteOpBytes(x.path) });
        }
        await writer.finish();
    }
    const tAcl = performance.now();
    // setACL is not a multi operation: many in flight; deferred ones (parents) last.
    const aclOrder = [...cs.setAcl].sort((x, y) => Number(x.deferred) - Number(y.deferred) || depth(y.rel) - depth(x.rel));
    await forEachLimited(w.ctx, aclOrder, 256, async (c, x) => {
        const path = abs(root, x.rel);
        await rpc.call((cb) => c.setACL(path, fromAcl(x.acl), -1, cb)).catch((e) => {
            throw new CopyError(`setting the ACL of ${path}: ${codeOf(e) ?? zkErrorName(e)}${codeOf(e) === "NO_AUTH" ? " (the node's ACL on the target does not grant ADMIN to this session; pass --dst-auth)" : ""}`, "write");
        });
        onDone(1);
    });
    return { counters: (tAcl - tCounters) / 1000, acl: (performance.now() - tAcl) / 1000 };
}
