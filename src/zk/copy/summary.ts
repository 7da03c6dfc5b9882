// What a copy reports: its summary (the CLI prints it, --json as it is) and its text form.
import type { VerifyResult } from "./verify";

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
    /** The change journal the run used: its paths were visited instead of every node's stat. */
    journal?: { file: string; paths: number; visited: number; startZxid: string; endZxid?: string };
    unreachable: { source: string[]; target: string[] };
    verify?: VerifyResult;
    /**
     * Wall seconds per stage: checks (before reading; with --journal, the journal's stop),
     * readSource (stats, data and children; in a full copy the source
     * ACLs are read at the same time), readAcl (the ACLs not read yet, both sides), write (of
     * which writeCounters and writeAcl), and cpu: this process's CPU seconds over the run.
     */
    seconds: { connect: number; checks: number; readSource: number; readTarget: number; readAcl: number; write: number; writeCounters: number; writeAcl: number; verify?: number; total: number; cpu: number };
    /** Source nodes per second over the whole run (without the verify). */
    nodesPerSec: number;
    warnings: string[];
    planText?: string;
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
    lines.push(`  time: connect ${sec.connect.toFixed(2)} s, checks ${sec.checks.toFixed(2)} s, read source ${sec.readSource.toFixed(2)} s, read target ${sec.readTarget.toFixed(2)} s, read ACLs ${sec.readAcl.toFixed(2)} s, write ${sec.write.toFixed(2)} s (counters ${sec.writeCounters.toFixed(2)} s, setACL ${sec.writeAcl.toFixed(2)} s), total ${sec.total.toFixed(2)} s (${s.nodesPerSec} nodes/s, ${sec.cpu.toFixed(2)} s of CPU here)`);
    if (s.stateFile) lines.push(`  state for the next incremental run: ${s.stateFile}`);
    if (s.journal) lines.push(`  change journal ${s.journal.file}: ${s.journal.paths} changed paths (zxid 0x${s.journal.startZxid} to 0x${s.journal.endZxid ?? "?"}), ${s.journal.visited} nodes visited instead of every node's stat`);
    for (const w of s.warnings) lines.push(`  warning: ${w}`);
    if (s.planText) lines.push("", s.planText);
    if (s.verify) {
        lines.push(`  verify: ${s.verify.ok ? "identical" : `${s.verify.total} difference(s)`} over ${s.verify.compared} nodes${s.seconds.verify !== undefined ? ` (${s.seconds.verify.toFixed(2)} s)` : ""}`);
        for (const d of s.verify.differences.slice(0, 20)) lines.push(`    ${d.what} ${d.path}: ${d.detail}`);
        if (s.verify.total > 20) lines.push(`    ... and ${s.verify.total - 20} more`);
    }
    return lines.join("\n") + "\n";
}
