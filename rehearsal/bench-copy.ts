// npm run bench:copy [-- --nodes N] [--version 3.9] [--baseline-nodes N] [--keep]
//
// The copy benchmark, on a local fleet of two 3-server ensembles (source, target): a generated
// tree (mixed depth and fan-out, 0-4 KB data, some digest ACLs, some queues of sequential
// children) is copied in full (twice, into two target paths, with a change journal recording
// from before the first), then 1% of it changes and both copies are brought up to date, one by
// the scan of every node's stat (mtime incremental), the other by the journal's paths (block &
// copy's final copy), each checked with --verify; measured against, in the same run:
//   - the baseline: the pre-batching way, one synchronous request at a time (read data, read
//     ACL, create), on the first --baseline-nodes nodes of the tree (its rate is one round trip
//     per request, the same for any number of nodes);
//   - the ceiling: the server's bulk create, the finished tree written into an empty path in
//     the same multi batches, with no reads at all (the better of two runs; each ceiling tree is
//     deleted again, so that the copy writes into a target as full as the ceiling did).
// Prints a table, then one JSON line (the last line of the output).
import * as zookeeper from "node-zookeeper-client";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyTree, type CopySummary, startJournal, stopJournal } from "../src/zk/copy";
import { connectClient } from "../src/zk/session";
import { formatTable } from "../src/zk/table";
import { checkPrerequisites, connectString, createFleet, destroyFleet, hostsOf } from "./fleet";
import { applyChanges, deleteTree, planChanges, planTree, TREE_ADMIN, writeOps } from "./tree";
import { resolveVersion } from "./zookeeper";

export interface BenchOptions {
    nodes: number;
    baselineNodes: number;
    version?: string;
    fleet: string;
    keep: boolean;
    log: (line: string) => void;
}

export interface BenchResult {
    nodes: number;
    dataBytes: number;
    version: string;
    fullSeconds: number;
    fullNodesPerSec: number;
    incrementalSeconds: number;
    incrementalChanged: number;
    incrementalSpeedup: number;
    /** The final copy of block & copy: the journal's paths only (without its --verify). */
    journalSeconds: number;
    journalPaths: number;
    journalSpeedup: number;
    journalVerifyOk: boolean;
    /** Where the full copy's time goes (seconds). */
    fullStages: { readSource: number; readAcl: number; write: number; cpu: number };
    baselineNodes: number;
    baselineSeconds: number;
    baselineNodesPerSec: number;
    ceilingSeconds: number;
    ceilingNodesPerSec: number;
    fullVsBaseline: number;
    fullVsCeiling: number;
    verifyOk: boolean;
    verifyDifferences: number;
    targets: { fullVsBaseline20x: boolean; fullVsCeiling50pct: boolean; incremental10x: boolean; journal50x: boolean };
}

function call<T>(f: (cb: (err: unknown, v?: T, w?: unknown) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v as T))));
}

/** The pre-batching copy: one synchronous request at a time, breadth-first, first `limit` nodes. */
async function baselineCopy(src: zookeeper.Client, dst: zookeeper.Client, from: string, to: string, limit: number): Promise<{ nodes: number; seconds: number }> {
    const t0 = performance.now();
    const queue = [""];
    let nodes = 0;
    while (queue.length > 0 && nodes < limit) {
        const rel = queue.shift()!;
        const data = await call<Buffer>((cb) => src.getData(from + rel, cb));
        const acl = await call<zookeeper.ACL[]>((cb) => src.getACL(from + rel, cb));
        const children = await call<string[]>((cb) => src.getChildren(from + rel, cb));
        await call((cb) => dst.create(to + rel, data ?? undefined, acl, zookeeper.CreateMode.PERSISTENT, cb));
        nodes++;
        for (const c of children.sort()) queue.push(`${rel}/${c}`);
    }
    return { nodes, seconds: (performance.now() - t0) / 1000 };
}

export async function runBench(o: BenchOptions): Promise<BenchResult> {
    checkPrerequisites();
    await destroyFleet(o.fleet, { log: o.log });
    const version = resolveVersion(o.version ?? "3.9");
    const stateDir = mkdtempSync(join(tmpdir(), "zkmigrate-bench-"));
    try {
        o.log(`fleet ${o.fleet}: source 3 + target 3, ZooKeeper ${version}`);
        const fleet = await createFleet(
            {
                name: o.fleet,
                version,
                ensembles: [
                    { name: "source", servers: 3 },
                    { name: "target", servers: 3 },
                ],
                // Room for three copies of the tree on the target (the copy and two ceiling runs).
                zkJvmOptions: ["-Xmx2g"],
            },
            { log: (l) => o.log(`  ${l}`) },
        );
        const srcConnect = connectString(fleet, hostsOf(fleet, "source"));
        const dstConnect = connectString(fleet, hostsOf(fleet, "target"));
        const src = await connectClient(srcConnect, 20_000, 30_000);
        const dst = await connectClient(dstConnect, 20_000, 30_000);
        src.addAuthInfo("digest", Buffer.from(TREE_ADMIN));
        dst.addAuthInfo("digest", Buffer.from(TREE_ADMIN));
        try {
            const tree = planTree({ nodes: o.nodes });
            o.log(`tree: ${tree.nodes.length} znodes, ${(tree.dataBytes / 1e6).toFixed(1)} MB of data`);
            const gen = await writeOps(src, "/bench", tree.ops);
            o.log(`generated on the source in ${gen.toFixed(2)} s`);

            // The ceiling: the finished tree into an empty path, same batch bounds, no reads; the
            // better of two runs (the first also warms the target's JVMs up, as for the copy).
            // Each is deleted again: the copy then writes into a target as full as the ceiling's.
            const ceilingRuns: number[] = [];
            for (const path of ["/ceiling-1", "/ceiling-2"]) {
                ceilingRuns.push(await writeOps(dst, path, tree.finals, { batchOps: 1000, batchBytes: 512 * 1024, inFlight: 4 }));
                o.log(`ceiling: ${tree.nodes.length} creates into ${path} in ${ceilingRuns[ceilingRuns.length - 1].toFixed(2)} s`);
                o.log(`  (deleted again in ${(await deleteTree(dst, path, tree)).toFixed(2)} s)`);
            }
            const ceilingSeconds = Math.min(...ceilingRuns);

            const auth = [{ scheme: "digest", credentials: TREE_ADMIN }];
            const state = join(stateDir, "copy-state.json");
            const stateJ = join(stateDir, "copy-state-journal.json");
            const journalFile = join(stateDir, "journal.json");
            // The journal records from before the precopies (as block & copy's precopy phase starts it).
            const j = await startJournal({ source: `${srcConnect}/bench`, file: journalFile, auth });
            o.log(`journal: ${j.status} on ${j.server} since zxid 0x${j.startZxid}`);
            try {
                const full: CopySummary = await copyTree(`${srcConnect}/bench`, `${dstConnect}/copy`, { sourceAuth: auth, targetAuth: auth, mtimeSince: state });
                o.log(`full copy: ${full.sourceNodes} nodes in ${full.seconds.total.toFixed(2)} s (${stages(full)})`);
                const pre: CopySummary = await copyTree(`${srcConnect}/bench`, `${dstConnect}/copy-j`, { sourceAuth: auth, targetAuth: auth, mtimeSince: stateJ });
                o.log(`full copy again (the journal's precopy): ${pre.seconds.total.toFixed(2)} s (${stages(pre)})`);

                const changes = planChanges(tree, 0.01);
                await applyChanges(src, "/bench", changes);
                o.log(`changed ${changes.count} znodes on the source (${changes.setData.length} set, ${changes.ops.filter((x) => x.kind === "create").length} created, ${changes.ops.filter((x) => x.kind === "delete").length} deleted)`);
                const inc = await copyTree(`${srcConnect}/bench`, `${dstConnect}/copy`, { sourceAuth: auth, targetAuth: auth, mtimeSince: state, delete: true, verify: true });
                o.log(`incremental copy (mtime scan): ${inc.changedNodes} changed nodes found and copied in ${inc.seconds.total.toFixed(2)} s (${stages(inc)}); verify ${inc.verify?.ok ? "identical" : `${inc.verify?.total} differences`} (${inc.seconds.verify?.toFixed(2)} s)`);
                const jc = await copyTree(`${srcConnect}/bench`, `${dstConnect}/copy-j`, { sourceAuth: auth, targetAuth: auth, mtimeSince: stateJ, journal: journalFile, delete: true, verify: true });
                if (!jc.journal) throw new Error(`the journal's final copy did not use the journal: ${jc.warnings.join("; ")}`);
                o.log(`incremental copy (journal): ${jc.journal.paths} changed paths, ${jc.journal.visited} nodes visited and copied in ${jc.seconds.total.toFixed(2)} s (${stages(jc)}); verify ${jc.verify?.ok ? "identical" : `${jc.verify?.total} differences`} (${jc.seconds.verify?.toFixed(2)} s)`);

                const base = await baselineCopy(src, dst, "/bench", "/baseline", Math.min(o.baselineNodes, tree.nodes.length));
                o.log(`baseline: ${base.nodes} nodes one at a time in ${base.seconds.toFixed(2)} s`);
                return resultOf(tree.nodes.length, tree.dataBytes, version, full, inc, jc, changes.count, base, ceilingSeconds);
            } finally {
                await stopJournal(journalFile).catch(() => undefined);
            }
        } finally {
            src.close();
            dst.close();
        }
    } finally {
        rmSync(stateDir, { recursive: true, force: true });
        if (!o.keep) await destroyFleet(o.fleet, { log: o.log });
    }
}

function resultOf(
    treeNodes: number,
    dataBytes: number,
    version: string,
    full: CopySummary,
    inc: CopySummary,
    jc: CopySummary,
    changed: number,
    base: { nodes: number; seconds: number },
    ceilingSeconds: number,
): BenchResult {
    const nodes = full.sourceNodes;
    const fullNodesPerSec = nodes / full.seconds.total;
    const baselineNodesPerSec = base.nodes / base.seconds;
    const ceilingNodesPerSec = treeNodes / ceilingSeconds;
    const result: BenchResult = {
        nodes,
        dataBytes,
        version,
        fullSeconds: round(full.seconds.total),
        fullNodesPerSec: Math.round(fullNodesPerSec),
        incrementalSeconds: round(inc.seconds.total),
        incrementalChanged: changed,
        incrementalSpeedup: round(full.seconds.total / inc.seconds.total),
        journalSeconds: round(jc.seconds.total),
        journalPaths: jc.journal?.paths ?? 0,
        journalSpeedup: round(full.seconds.total / jc.seconds.total),
        journalVerifyOk: jc.verify?.ok === true,
        fullStages: { readSource: round(full.seconds.readSource), readAcl: round(full.seconds.readAcl), write: round(full.seconds.write), cpu: round(full.seconds.cpu) },
        baselineNodes: base.nodes,
        baselineSeconds: round(base.seconds),
        baselineNodesPerSec: Math.round(baselineNodesPerSec),
        ceilingSeconds: round(ceilingSeconds),
        ceilingNodesPerSec: Math.round(ceilingNodesPerSec),
        fullVsBaseline: round(fullNodesPerSec / baselineNodesPerSec),
        fullVsCeiling: round(fullNodesPerSec / ceilingNodesPerSec),
        verifyOk: inc.verify?.ok === true && jc.verify?.ok === true,
        verifyDifferences: (inc.verify?.total ?? -1) + (jc.verify?.total ?? -1),
        targets: { fullVsBaseline20x: false, fullVsCeiling50pct: false, incremental10x: false, journal50x: false },
    };
    result.targets = {
        fullVsBaseline20x: result.fullVsBaseline >= 20,
        fullVsCeiling50pct: result.fullVsCeiling >= 0.5,
        incremental10x: result.incrementalSpeedup >= 10,
        journal50x: result.journalSpeedup >= 50,
    };
    return result;
}

function stages(s: CopySummary): string {
    const x = s.seconds;
    return `connect ${x.connect.toFixed(2)}, checks ${x.checks.toFixed(2)}, read source ${x.readSource.toFixed(2)}, read target ${x.readTarget.toFixed(2)}, ACLs ${x.readAcl.toFixed(2)}, write ${x.write.toFixed(2)} (counters ${x.writeCounters.toFixed(2)}, setACL ${x.writeAcl.toFixed(2)}), client CPU ${x.cpu.toFixed(2)}`;
}

function round(x: number): number {
    return Math.round(x * 100) / 100;
}

export function formatBench(r: BenchResult): string {
    const rows = [
        ["full copy", String(r.nodes), r.fullSeconds.toFixed(2), String(r.fullNodesPerSec), ""],
        ["incremental, mtime scan (1% changed)", String(r.incrementalChanged), r.incrementalSeconds.toFixed(2), "", `${r.incrementalSpeedup}x faster than full (target 10x)`],
        ["incremental, change journal (same 1%)", String(r.journalPaths), r.journalSeconds.toFixed(2), "", `${r.journalSpeedup}x faster than full (target 50x)`],
        ["baseline: one sync create at a time", String(r.baselineNodes), r.baselineSeconds.toFixed(2), String(r.baselineNodesPerSec), `full is ${r.fullVsBaseline}x (target 20x)`],
        ["ceiling: bulk multi create, no reads", String(r.nodes), r.ceilingSeconds.toFixed(2), String(r.ceilingNodesPerSec), `full is ${Math.round(r.fullVsCeiling * 100)}% of it (target 50%)`],
    ];
    return [
        `zkmigrate copy benchmark: ${r.nodes} znodes, ${(r.dataBytes / 1e6).toFixed(1)} MB, ZooKeeper ${r.version}, 3 + 3 servers`,
        formatTable(["run", "nodes", "seconds", "nodes/s", "compared"], rows, ["left", "right", "right", "right", "left"]),
        `where the full copy's time goes: read source (stats, data, children, and the ACLs at the same time) ${r.fullStages.readSource} s, ACLs left to wait for ${r.fullStages.readAcl} s, write ${r.fullStages.write} s; client CPU ${r.fullStages.cpu} s (the rest is waiting for the servers)`,
        `verify after both incremental copies: ${r.verifyOk ? "identical" : `${r.verifyDifferences} differences`}`,
        `targets: full >= 20x baseline ${r.targets.fullVsBaseline20x ? "met" : "MISSED"}, full >= 50% of ceiling ${r.targets.fullVsCeiling50pct ? "met" : "MISSED"}, incremental >= 10x faster ${r.targets.incremental10x ? "met" : "MISSED"}, journal >= 50x faster ${r.targets.journal50x ? "met" : "MISSED"}`,
    ].join("\n");
}

function argValue(argv: string[], name: string): string | undefined {
    const i = argv.indexOf(`--${name}`);
    if (i === -1) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`);
    return v;
}

function intArg(argv: string[], name: string, dflt: number, min: number): number {
    const v = argValue(argv, name);
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`--${name} takes a whole number of at least ${min}, not ${JSON.stringify(v)}`);
    return Number(v);
}

if (require.main === module) {
    const argv = process.argv.slice(2);
    const known = new Set(["--nodes", "--baseline-nodes", "--version", "--keep", "--fleet"]);
    const bad = argv.filter((a, i) => a.startsWith("--") && !known.has(a) && !(i > 0 && ["--nodes", "--baseline-nodes", "--version", "--fleet"].includes(argv[i - 1])));
    try {
        if (bad.length > 0) throw new Error(`unknown option ${bad[0]} (options: --nodes N, --baseline-nodes N, --version X.Y, --fleet NAME, --keep)`);
        const o: BenchOptions = {
            nodes: intArg(argv, "nodes", 100_000, 100),
            baselineNodes: intArg(argv, "baseline-nodes", 3000, 10),
            version: argValue(argv, "version"),
            fleet: argValue(argv, "fleet") ?? "bench-copy",
            keep: argv.includes("--keep"),
            log: (l) => console.log(l),
        };
        runBench(o).then(
            (r) => {
                console.log("");
                console.log(formatBench(r));
                console.log(JSON.stringify(r));
                process.exit(r.verifyOk ? 0 : 1);
            },
            (e) => {
                console.error(`bench:copy: ${e instanceof Error ? e.message : String(e)}`);
                process.exit(1);
            },
        );
    } catch (e) {
        console.error(`bench:copy: ${(e as Error).message}`);
        process.exit(2);
    }
}
