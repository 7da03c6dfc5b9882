// `rehearse --compare` (rehearsal/rehearse/compare.ts) from made-up runs, and the elections the
// mode monitor counts from srvr samples: the figures per join, the table, the last JSON line.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareSummary, renderCompare, variantFigures } from "../../../rehearsal/rehearse/compare";
import { ModeMonitor } from "../../../rehearsal/rehearse/monitor";
import { newResult, summarize, type PhaseReport, type RehearsalResult } from "../../../rehearsal/rehearse/report";

function phase(name: string, restarts: number, elections: number, sourceGap: number, migratingGap: number): PhaseReport {
    return {
        phase: name,
        attempt: 1,
        result: "succeeded",
        startedAt: "2026-01-01T00:00:00.000Z",
        wallMs: 10_000,
        clients: {
            migrating: { maxGapMs: migratingGap, groupGapMs: migratingGap, acknowledged: 10, failedOps: 0 },
            "source-users": { maxGapMs: sourceGap, groupGapMs: sourceGap, acknowledged: 10, failedOps: 0 },
        },
        connect: "c",
        steps: [],
        sourceRestarts: restarts,
        sourceElections: elections,
    };
}

function run(join: string, phases: PhaseReport[], lost = 0): RehearsalResult {
    return {
        ...newResult({ scenario: "mitosis", kafka: false, fleetName: `rh-1-${join}`, report: "/tmp/r.json" }, 1_000),
        join,
        phases,
        split: { firewallUpAt: 5, sourceMaxGapMs: 40, targetUnavailableMs: 1800, targetsServingMs: 2100 },
        verdict: { lost, acknowledged: 5000, lostSample: [], sourceUsersLost: 0, sourceUsersAcknowledged: 3000 },
    };
}

describe("rehearse --compare", () => {
    const voter = run("voter", [phase("separate", 0, 0, 50, 50), phase("joined", 3, 1, 900, 800), phase("clients", 0, 0, 60, 300), phase("split", 0, 1, 2000, 2500), phase("source-restarted", 3, 1, 1900, 40)]);
    const observer = run("observer", [phase("separate", 0, 0, 50, 50), phase("joined", 0, 0, 70, 900), phase("clients", 0, 0, 60, 300), phase("split", 0, 0, 80, 1700), phase("source-restarted", 0, 0, 40, 40)]);

    it("sums each join's source restarts and elections, and takes its longest gaps (the targets' from clients on)", () => {
        const v = variantFigures(voter, summarize(voter, 61_000));
        assert.equal(v.sourceRestarts, 6);
        assert.equal(v.sourceElections, 3);
        assert.equal(v.sourceMaxGapMs, 2000);
        assert.equal(v.targetsMaxGapMs, 2500, "joined's migrating gap is the source's: not the targets'");
        assert.equal(v.splitTargetUnavailableMs, 1800);
        assert.equal(v.wallMs, 60_000);
        assert.equal(v.lost, 0);
        const o = variantFigures(observer, summarize(observer, 31_000));
        assert.deepEqual([o.sourceRestarts, o.sourceElections, o.sourceMaxGapMs, o.targetsMaxGapMs], [0, 0, 80, 1700]);
    });

    it("the last JSON line: variants voter, observer, reconfig (null when skipped, with the reason); ok only when all that ran lost nothing", () => {
        const variants = { voter: variantFigures(voter, summarize(voter)), observer: variantFigures(observer, summarize(observer)), reconfig: null };
        const skipped = { reconfig: "not in this zkmigrate" };
        const out = compareSummary(variants, skipped);
        assert.equal(out.ok, true);
        assert.deepEqual(Object.keys(out.variants), ["voter", "observer", "reconfig"]);
        for (const k of ["lost", "acknowledged", "sourceRestarts", "sourceElections", "sourceMaxGapMs", "splitTargetUnavailableMs", "wallMs"]) {
            assert.ok(k in out.variants.voter! && k in out.variants.observer!, k);
        }
        assert.deepEqual(out.skipped, skipped);
        const lossy = run("observer", observer.phases, 2);
        assert.equal(compareSummary({ ...variants, observer: variantFigures(lossy, summarize(lossy)) }, skipped).ok, false);
        const table = renderCompare(variants, skipped);
        assert.match(table, /^joined\s+3 \/ 1 \/ 900 \/ 800\s+0 \/ 0 \/ 70 \/ 900$/m);
        assert.match(table, /^source elections\s+3\s+0$/m);
        assert.match(table, /^reconfig: not run \(not in this zkmigrate\)$/m);
        assert.match(table, /^phase\s+voter\s+observer \(default\)$/m);
        // A failure's reason in full, below the table (its column would cut it).
        const failed = run("observer", observer.phases);
        const f = { ...variantFigures(failed, summarize(failed)), ok: false, failure: "phase separate failed: invalid zkmigrate configuration (1 problem)" };
        const t2 = renderCompare({ ...variants, observer: f }, skipped);
        assert.match(t2, /^result\s+PASSED\s+FAILED \(below\)$/m);
        assert.match(t2, /^observer: FAILED: phase separate failed: invalid zkmigrate configuration \(1 problem\)$/m);
    });

    it("counts elections from srvr samples: a rise of the sources' epoch or a change of their leader, against the sample before the window", () => {
        const m = new ModeMonitor([]);
        const s = (at: number, leader: number, epoch: number) => m.samples.push({ at, modes: { 1: leader === 1 ? "leader" : "follower", 2: leader === 2 ? "leader" : "follower", 3: "follower" }, epochs: { 1: epoch, 2: epoch, 3: epoch } });
        s(0, 1, 5);
        s(100, 1, 5);
        m.samples.push({ at: 200, modes: { 1: "down", 2: "not serving", 3: "not serving" }, epochs: {} });
        s(300, 2, 6);
        s(400, 2, 6);
        s(500, 2, 7);
        assert.equal(m.elections([1, 2, 3], { start: 50, end: 450 }), 1);
        assert.equal(m.elections([1, 2, 3], { start: 50, end: 600 }), 2);
        assert.equal(m.elections([1, 2, 3], { start: 0, end: 150 }), 0);
    });
});
