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
// ensemble, every znode fits the target's request limit, no ACL comes back masked. Writes are
// multis: a batch is applied whole or not at all.
//
// The rooms: options.ts (what is asked), sessions.ts (sessions and the watchdog), read.ts
// (reading a subtree), diff.ts (what the target needs: the ChangeSet), rules.ts (what keeps it
// faithful), write.ts (the batch writer), verify.ts (--verify), state.ts (incremental runs),
// summary.ts (the report). This file runs them in order.
import type * as zookeeper from "node-zookeeper-client";
import { formatConnectString } from "../../format/connect-string";
import { ERR, lastZxidOf, rawGetAcl, rawSync } from "../raw";
import {
    type ChangeSet,
    type ChangeTest,
    type Roots,
    applyAcls,
    changeSetText,
    changeTest,
    compareTrees,
    deleteOrder,
    emptyChangeSet,
    refuseOversize,
    selectCopied,
    targetReadsNeeded,
} from "./diff";
import { CopyError, type CopyOptions, DEFAULT_JUTE_MAXBUFFER, type Endpoint, type Progress, REQUEST_HEADROOM, parseEndpoint } from "./options";
import { AclPrefetch, type ReadCtx, rawCode, readAcls, readError, readNodes, readSubtree, supportsMultiRead } from "./read";
import { consumeJournal, journalOfOtherTree } from "./journal";
import { type CopyRules, FAITHFUL } from "./rules";
import { Rpc, type Side, closeSide, openSide, sameEnsemble } from "./sessions";
import { type Since, resolveSince, writeState } from "./state";
import type { CopySummary } from "./summary";
import { BatchWriter, writeChanges } from "./write";
import { type Acl, type NodeStat, type ZNode, abs, digestId, isInside, nodeKind, parentRel } from "./znode";
import { verifyTrees } from "./verify";

export { type ChangeSet, type CounterRaise, type CreateOp, changeSetText } from "./diff";
export { CopyError, type CopyErrorKind, type CopyOptions, DEFAULT_JUTE_MAXBUFFER, type Endpoint, type AuthInfo, type Progress, REQUEST_HEADROOM, parseAuth, parseEndpoint } from "./options";
export { type CopyRules, FAITHFUL } from "./rules";
export { type CopyState, readState } from "./state";
export { type JournalState, type JournalStatus, readJournalState, startJournal, stopJournal } from "./journal";
export { type CopySummary, formatCopySummary } from "./summary";
export { type Difference, type VerifyResult } from "./verify";
export { type Acl, type NodeKind, type NodeStat, type ZNode, OPEN_ACL, aclText, createOpBytes, digestId, nodeKind } from "./znode";

/** A run's clock: seconds per stage, and the progress callback at most every 200 ms. */
class Clock {
    readonly t0 = performance.now();
    readonly seconds = { connect: 0, checks: 0, readSource: 0, readTarget: 0, readAcl: 0, write: 0, writeCounters: 0, writeAcl: 0, verify: undefined as number | undefined, total: 0, cpu: 0 };
    private readonly cpu0 = process.cpuUsage();
    private last = 0;
    constructor(private readonly progress: (p: Progress) => void) {}
    report(stage: Progress["stage"], done: number, total?: number, force = false): void {
        const now = performance.now();
        if (force || now - this.last > 200) {
            this.last = now;
            this.progress({ stage, done, total, elapsedMs: now - this.t0 });
        }
    }
    since(t: number): number {
        return (performance.now() - t) / 1000;
    }
    /** CPU seconds of this process since the start (user and system). */
    cpu(): number {
        const u = process.cpuUsage(this.cpu0);
        return (u.user + u.system) / 1e6;
    }
}

interface Checked {
    rootStat: NodeStat;
    srcMulti: boolean;
    dstMulti: boolean;
    /** The least last-zxid over the source sessions, before any tree read (see CopyState). */
    watermark: bigint;
}

/** The checks before reading the tree: source path, overlap, state file; what the servers answer. */
async function checkBeforeReading(rpc: Rpc, source: Side, target: Side, since: Since | undefined, o: CopyOptions & { includeEphemeral: boolean; connectTimeoutMs: number }, warnings: string[]): Promise<Checked> {
    const src = source.endpoint;
    const dst = target.endpoint;
    // The probes open sessions of their own: under way while the other checks run.
    const probes = Promise.all([
        supportsMultiRead(rpc, source, o.sourceAuth ?? [], o.connectTimeoutMs, src.path),
        supportsMultiRead(rpc, target, o.targetAuth ?? [], o.connectTimeoutMs, "/"),
    ]);
    probes.catch(() => undefined); // awaited below, unless a check refuses first
    const rootStat = await rpc
        .track(rawGetAcl(source.clients[0], src.path))
        .then((r) => r.stat)
        .catch((e) => {
            if (rawCode(e) === ERR.noNode) throw new CopyError(`source path ${src.path} does not exist on ${formatConnectString(src.connect)}`, "check");
            throw readError(e, src.path, "source");
        });
    if (nodeKind(rootStat) === "ephemeral" && !o.includeEphemeral) throw new CopyError(`source path ${src.path} is an ephemeral node: nothing to copy (--include-ephemeral copies it as persistent)`, "check");
    if ((isInside(dst.path, src.path) || isInside(src.path, dst.path)) && (await sameEnsemble(rpc, source, target))) {
        throw new CopyError(`target ${dst.path} and source ${src.path} overlap on the same ensemble: the copy would read what it writes (choose a target path outside the source subtree)`, "usage");
    }
    if (since?.state && since.state.rootCzxid !== rootStat.czxid.toString(16)) {
        throw new CopyError(`--mtime-since ${since.file}: the state is of another tree (source root czxid ${since.state.rootCzxid}, now ${rootStat.czxid.toString(16)}): copy in full`, "usage");
    }
    const [srcMulti, dstMulti] = await probes;
    if (!srcMulti) warnings.push("the source answers no read-only multi (ZooKeeper before 3.6): read one request per node");
    // A sync on every source session first: a follower that lags would otherwise hide changes
    // acknowledged to clients before the copy started (their last writes, in block & copy).
    await Promise.all(source.clients.map((c) => rpc.track(rawSync(c, "/"))));
    await Promise.all(source.clients.map((c) => rpc.track(rawGetAcl(c, "/"))));
    const watermark = source.clients.map(lastZxidOf).reduce((x, y) => (y < x ? y : x));
    return { rootStat, srcMulti, dstMulti, watermark };
}

/** Missing ancestors of the target path (outside the copied subtree). */
async function missingAncestors(rpc: Rpc, client: zookeeper.Client, dstRoot: string): Promise<string[]> {
    const missing: string[] = [];
    if (dstRoot === "/") return missing;
    let p = "";
    for (const part of dstRoot.split("/").slice(1, -1)) {
        p += `/${part}`;
        const [exists] = await rpc.call<zookeeper.Stat | null>((cb) => client.exists(p, cb));
        if (!exists) missing.push(p);
    }
    return missing;
}

/**
 * What the target has: top-down where the nodes exist (full), or the changed nodes and the
 * parents whose children changed (incremental). null: known absent.
 */
async function readTarget(ctx: ReadCtx, dstRoot: string, copied: Map<string, ZNode>, test: ChangeTest, ancestorsMissing: boolean): Promise<Map<string, ZNode | null>> {
    const dstNodes = new Map<string, ZNode | null>();
    if (!test.incremental) {
        if (!ancestorsMissing) {
            const got = await readSubtree(ctx, dstRoot, [""], (rel) => copied.has(rel));
            for (const [rel, n] of got) dstNodes.set(rel, n);
        }
        if (!dstNodes.has("")) dstNodes.set("", null);
    } else {
        const got = await readNodes(ctx, dstRoot, targetReadsNeeded(copied, test));
        for (const [rel, n] of got) dstNodes.set(rel, n);
    }
    return dstNodes;
}

/**
 * Every node a journal names is compared (data, children, counter); ACLs are read for the nodes
 * created (setACL fires no watch, so an ACL compare of the others would find changes only by
 * chance, at the price of two reads per node).
 */
const VISIT_ALL: ChangeTest = { incremental: true, changed: () => true, aclChanged: () => false, childrenChanged: () => true };

/** The relative paths a journal's changes make the copy visit: each changed path and its parent. */
export function journalVisits(paths: string[], root: string): string[] {
    const visit = new Set<string>();
    for (const p of paths) {
        if (!isInside(p, root)) continue;
        const rel = root === "/" ? (p === "/" ? "" : p) : p.slice(root.length);
        if (root === "/" && (rel === "/zookeeper" || rel.startsWith("/zookeeper/"))) continue;
        visit.add(rel);
        if (rel !== "") visit.add(parentRel(rel));
    }
    return [...visit];
}

function summaryOf(src: Endpoint, dst: Endpoint, cs: ChangeSet, x: { since?: Since; test: ChangeTest; dryRun: boolean; sourceNodes: number; copied: Map<string, ZNode>; targetRead: number; source: Side; seconds: CopySummary["seconds"]; warnings: string[] }): CopySummary {
    return {
        source: src.text,
        target: dst.text,
        mode: x.test.incremental ? "incremental" : "full",
        since: x.test.incremental ? { mtime: x.since!.mtime, zxid: x.since!.zxid?.toString(16) } : undefined,
        dryRun: x.dryRun,
        sourceNodes: x.sourceNodes,
        changedNodes: [...x.copied.values()].filter(x.test.changed).length,
        targetNodesRead: x.targetRead,
        plan: {
            ancestors: cs.ancestors.length,
            creates: cs.creates.length,
            setData: cs.setData.length,
            setAcl: cs.setAcl.length,
            deletes: cs.deletes.length,
            cversionBumps: cs.bumps.length,
            skippedEphemeral: cs.skippedEphemeral.length,
            persistentOverEphemeral: cs.persistentOverEphemeral.length,
            asPersistent: cs.asPersistent.length,
            extra: cs.extra.length,
            unchanged: cs.unchanged,
        },
        written: { batches: 0, ops: 0, bytes: 0 },
        unreachable: { source: x.source.unreachable, target: [] },
        seconds: x.seconds,
        nodesPerSec: 0,
        warnings: x.warnings,
    };
}

/**
 * Copies `source` (endpoint text `host:port,.../path`) to `target`. Throws CopyError with a
 * message fit for an operator; returns the summary otherwise (a failed --verify is in it).
 *
 * The order: sessions; checks (source path, overlap, state file); the watermark; stats, data
 * and children of the whole source subtree (read-only multis); what the target has; every check
 * that needs the data (sizes); then ACLs (source, and target where the node exists) and the
 * checks that need them; then the writes: creates, updates, deletes, counters; setACLs last.
 *
 * `rules`: what keeps the copy faithful (tests put the faults of older tools in its place).
 */
export async function copyTree(sourceText: string, targetText: string, o: CopyOptions = {}, rules: CopyRules = FAITHFUL): Promise<CopySummary> {
    const clock = new Clock(o.progress ?? (() => {}));
    const seconds = clock.seconds;
    const src = parseEndpoint(sourceText, "source");
    const dst = parseEndpoint(targetText, "target");
    const maxBuffer = o.juteMaxBuffer ?? DEFAULT_JUTE_MAXBUFFER;
    if (!Number.isInteger(maxBuffer) || maxBuffer < 65536) throw new CopyError(`--jute-maxbuffer ${maxBuffer}: at least 65536 bytes`, "usage");
    const batchBytes = rules.batchBytes(o.batchBytes ?? Math.floor(maxBuffer / 2), maxBuffer - REQUEST_HEADROOM);
    const batchOps = o.batchOps ?? 1000;
    if (!Number.isInteger(batchOps) || batchOps < 1) throw new CopyError(`--batch-ops ${batchOps}: a whole number of at least 1`, "usage");
    const aclMode = o.acl ?? "source";
    const includeEphemeral = o.includeEphemeral === true;
    const since = resolveSince(o);
    const test = changeTest(since);
    if (o.delete && test.incremental && since!.zxid === undefined) {
        throw new CopyError("--delete with --mtime-since <ms> cannot find deleted nodes: give a state file (it records the zxid that finds them) or copy in full", "usage");
    }
    const stateFile = o.stateFile ?? since?.file;
    const digests = new Set((o.targetAuth ?? []).filter((a) => a.scheme === "digest").map((a) => digestId(a.credentials)));
    const warnings: string[] = [];
    const rpc = new Rpc(o.stallTimeoutMs ?? 30_000);
    let source: Side | undefined;
    let target: Side | undefined;
    let writer: BatchWriter | undefined;
    let journal: CopySummary["journal"];
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
        seconds.connect = clock.since(clock.t0);
        const dstClient = target.clients[0];

        // 2. Checks before reading the tree; the change journal (when one is given) is stopped
        // meanwhile, and used when nothing can be missing from it.
        const tChecks = performance.now();
        const stopping = o.journal !== undefined ? consumeJournal(o.journal, src, since?.state ? since.zxid : undefined) : undefined;
        stopping?.catch(() => undefined); // awaited below, unless a check refuses first
        const { rootStat, srcMulti, dstMulti, watermark } = await checkBeforeReading(rpc, source, target, since, { ...o, includeEphemeral, connectTimeoutMs }, warnings);
        let visits: string[] | undefined;
        if (o.journal !== undefined) {
            let j = await stopping!;
            const other = j.ok ? journalOfOtherTree(j.state, src, rootStat.czxid) : undefined;
            if (other) j = { ok: false, state: j.state, reason: other };
            if (j.ok) {
                visits = journalVisits(j.paths, src.path);
                journal = { file: o.journal, paths: j.paths.length, visited: visits.length, startZxid: j.state.startZxid!, endZxid: j.state.endZxid };
                warnings.push("the change journal has no record of setACL (ZooKeeper fires no watch for it): an ACL changed without a data change since the precopy is not copied; --verify compares every ACL");
            } else {
                warnings.push(`change journal not used: ${j.reason}; every node's stat was scanned instead`);
            }
        }
        const nodeTest = visits ? VISIT_ALL : test;
        seconds.checks = clock.since(tChecks);

        // 3. The source subtree: stats, data, children (with a journal: the nodes it names).
        const tRead = performance.now();
        let read = 0;
        const srcCtx: ReadCtx = { side: "source", rpc, clients: source.clients, multi: srcMulti, inFlight: 4, onNodes: (n) => clock.report("read source", (read += n)) };
        let srcNodes: Map<string, ZNode>;
        let prefetch: AclPrefetch | undefined;
        let aclRead = 0;
        const aclReadCtx = (ctx: ReadCtx): ReadCtx => ({ ...ctx, onNodes: (n) => clock.report(ctx.side === "source" ? "read source" : "read target", (aclRead += n)) });
        // A journal's nodes are known up front: both sides read at once (ACLs only for the
        // creates, later: prefetching every visited node's was slower).
        let dstRead: Promise<Map<string, ZNode | null>> | undefined;
        let targetRead = 0;
        const dstCtx: ReadCtx = { side: "target", rpc, clients: [dstClient], multi: dstMulti, inFlight: 4, onNodes: (n) => clock.report("read target", (targetRead += n)) };
        if (visits) {
            dstRead = readNodes(dstCtx, dst.path, visits);
            dstRead.catch(() => undefined); // awaited below
            srcNodes = new Map();
            for (const [rel, n] of await readNodes(srcCtx, src.path, visits)) if (n) srcNodes.set(rel, n);
        } else {
            // A full copy needs every source ACL: read them while the data is read.
            prefetch = test.incremental ? undefined : new AclPrefetch(aclReadCtx(srcCtx), src.path, 256 * source.clients.length);
            srcNodes = await readSubtree(srcCtx, src.path, [""], () => true, prefetch ? (rels) => prefetch!.add(rels) : undefined);
            if (!srcNodes.has("")) throw new CopyError(`source path ${src.path} was deleted while it was read`, "check");
        }
        clock.report("read source", read, undefined, true);
        seconds.readSource = clock.since(tRead);

        const cs = emptyChangeSet();
        const copied = selectCopied(srcNodes, includeEphemeral, cs);
        const roots: Roots = { src: src.path, dst: dst.path };
        refuseOversize(copied, nodeTest, roots, maxBuffer, rules);

        // 4. What the target has.
        const tTarget = performance.now();
        cs.ancestors = await missingAncestors(rpc, dstClient, dst.path);
        let dstNodes: Map<string, ZNode | null>;
        if (dstRead) dstNodes = await dstRead;
        else dstNodes = await readTarget(dstCtx, dst.path, copied, test, cs.ancestors.length > 0);
        clock.report("read target", targetRead, undefined, true);
        seconds.readTarget = clock.since(tTarget);

        // 5. The change set (ACLs come in step 6).
        // A journal's copy keeps the source children it did not visit (unchanged since the precopy).
        const visited = visits ? new Set(visits) : undefined;
        const keptChild = visited ? (rel: string) => copied.has(rel) || !visited.has(rel) : undefined;
        const { toCreate, aclNeeded, extraRoots } = compareTrees(copied, srcNodes, dstNodes, nodeTest, { aclMode, dstRoot: dst.path, keptChild }, cs, warnings);
        if (o.delete && extraRoots.length > 0) cs.deletes = deleteOrder((await readSubtree(dstCtx, dst.path, extraRoots)).keys());
        else cs.extra = extraRoots;
        for (const r of cs.persistentOverEphemeral) {
            warnings.push(`target ${abs(dst.path, r)} is a persistent node where the source's is ephemeral (an older copy?): ${o.delete ? "deleted" : "kept; --delete removes it (Kafka refuses to start on a stale broker registration)"}`);
        }
        cs.bumps = rules.counters(cs, copied, dstNodes, toCreate);

        // 6. ACLs (source, and target where the node exists), all before the first write: an ACL
        // can make the copy impossible (digest hashes hidden from this session).
        const tAcl = performance.now();
        const creating = new Set(cs.creates.map((c) => c.rel));
        const targetAcls = new Map<string, Acl[] | null>();
        const sourceAcls = new Map<string, Acl[] | null>();
        const prefetched = prefetch ? await prefetch.finish() : new Map<string, Acl[] | null>();
        for (const rel of aclNeeded) if (prefetched.has(rel)) sourceAcls.set(rel, prefetched.get(rel)!);
        await Promise.all([
            readAcls(aclReadCtx(dstCtx), dst.path, aclNeeded.filter((r) => !creating.has(r)), (rel, acl) => {
                targetAcls.set(rel, acl);
            }),
            readAcls(aclReadCtx(srcCtx), src.path, aclNeeded.filter((r) => !prefetched.has(r)), (rel, acl) => {
                sourceAcls.set(rel, acl);
            }),
        ]);
        seconds.readAcl = clock.since(tAcl);
        applyAcls(cs, { aclNeeded, sourceAcls, targetAcls, aclMode, digests, roots, maxBuffer }, rules, warnings);

        // 7. Write.
        const tWrite = performance.now();
        let written = 0;
        const totalOps = () => cs.ancestors.length + cs.creates.length + cs.setData.length + cs.deletes.length + cs.bumps.length + cs.setAcl.length;
        const onDone = (k: number) => clock.report("write", (written += k), totalOps());
        writer = o.dryRun ? undefined : new BatchWriter(rpc, dstClient, batchOps, batchBytes, o.batchesInFlight ?? 4, onDone);
        const summary = summaryOf(src, dst, cs, { since, test: nodeTest, dryRun: !!o.dryRun, sourceNodes: srcNodes.size, copied, targetRead, source, seconds, warnings });
        summary.journal = journal;
        for (const x of cs.asPersistent) warnings.push(`${abs(src.path, x.rel)} is a ${x.kind} node: copied as a persistent node`);
        if (cs.extra.length > 0) warnings.push(`${cs.extra.length} target node(s) the source lacks were kept (--delete removes them), e.g. ${abs(dst.path, cs.extra[0])}`);

        if (!writer) {
            summary.planText = changeSetText(cs, src.path, dst.path);
        } else {
            const w = await writeChanges(cs, { rpc, client: dstClient, ctx: dstCtx, root: dst.path, writer, onDone });
            seconds.writeCounters = w.counters;
            seconds.writeAcl = w.acl;
            summary.written = { batches: writer.result.batches, ops: writer.result.ops + cs.ancestors.length + cs.setAcl.length, bytes: writer.result.bytes };
            clock.report("write", written, totalOps(), true);
            seconds.write = clock.since(tWrite);

            // 8. The state for the next incremental run.
            // (Not after a journal's copy: it read only some nodes; the precopy's state stays.)
            if (stateFile && !visits) {
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
        seconds.total = clock.since(clock.t0);
        seconds.cpu = clock.cpu();
        summary.nodesPerSec = Math.round(srcNodes.size / seconds.total);

        if (o.verify) {
            const tv = performance.now();
            summary.verify = await verifyTrees(rpc, source, target, srcMulti, dstMulti, { includeEphemeral, acl: aclMode, progress: (done) => clock.report("verify", done) });
            seconds.verify = clock.since(tv);
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
