// The rehearsal's report (rehearsal/rehearse/report.ts) from a made-up result: the JSON summary's
// keys and figures (the tests of `npm run rehearse` and its readers rely on them), `ok` only with
// 0 lost, and the table's lines.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fullReport, newResult, renderReport, summarize, type PhaseReport, type RehearsalResult } from "../../../rehearsal/rehearse/report";

function phase(name: string, o: Partial<PhaseReport> & { gaps?: [number, number]; failedOps?: [number, number] } = {}): PhaseReport {
    const [g1, g2] = o.gaps ?? [100, 50];
    const [f1, f2] = o.failedOps ?? [0, 0];
    return {
        phase: name,
        attempt: o.attempt ?? 1,
        result: o.result ?? "succeeded",
        startedAt: "2026-01-01T00:00:00.000Z",
        wallMs: o.wallMs ?? 12_345,
        clients: {
            migrating: { maxGapMs: g1, groupGapMs: g1, acknowledged: 10, failedOps: f1 },
            "source-users": { maxGapMs: g2, groupGapMs: g2, acknowledged: 10, failedOps: f2 },
        },
        ...(o.kafka ? { kafka: o.kafka } : {}),
        connect: "c",
        steps: o.steps ?? [],
    };
}

function result(o: Partial<RehearsalResult> = {}): RehearsalResult {
    return {
        ...newResult({ scenario: "mitosis", kafka: false, fleetName: "rh-1", report: "/tmp/r.json" }, 1_000),
        phases: [phase("separate"), phase("joined", { gaps: [300, 900], failedOps: [1, 2] })],
        rolling: [
            { phase: "joined", step: "kafka-restart-4", server: 4, restartsLeader: false, maxGapMs: 400 },
            { phase: "joined", step: "kafka-restart-1", server: 1, restartsLeader: true, maxGapMs: 1500 },
        ],
        split: { firewallUpAt: 5, sourceMaxGapMs: 120, targetUnavailableMs: 800, targetsServingMs: 900 },
        verdict: { lost: 0, acknowledged: 5000, lostSample: [], sourceUsersLost: 0, sourceUsersAcknowledged: 3000 },
        ...o,
    };
}

describe("rehearse report", () => {
    it("summarizes: totals, split, rolling gaps by leader or not, per phase", () => {
        const s = summarize(result(), 61_000);
        assert.deepEqual(s, {
            scenario: "mitosis",
            ok: true,
            lost: 0,
            acknowledged: 8000,
            splitSourceMaxGapMs: 120,
            splitTargetUnavailableMs: 800,
            splitTargetsServingMs: 900,
            joinSplitBrainWindowMs: null,
            maxRollingGapMs: 400,
            maxLeaderRestartGapMs: 1500,
            failedOps: 3,
            wallMs: 60_000,
            phases: {
                separate: { result: "succeeded", wallMs: 12_345, maxGapMs: 100, failedOps: 0 },
                joined: { result: "succeeded", wallMs: 12_345, maxGapMs: 900, failedOps: 3 },
            },
            refusedEnv: [],
        });
    });

    it("is not ok with a loss, a failure, no phase, a missing loss check, or a variable a host refused", () => {
        const refused = summarize(result({ refusedEnv: ["PULUMI_COMMAND_STDOUT"] }));
        assert.equal(refused.ok, false);
        assert.deepEqual(refused.refusedEnv, ["PULUMI_COMMAND_STDOUT"]);
        assert.equal(summarize(result({ verdict: { lost: 0, acknowledged: 1, lostSample: [], sourceUsersLost: 1, sourceUsersAcknowledged: 1 } })).ok, false);
        const failed = summarize(result({ failure: "phase split failed: x\nmore" }));
        assert.equal(failed.ok, false);
        assert.equal(failed.failure, "phase split failed: x");
        assert.equal(summarize(result({ phases: [] })).ok, false);
        const none = summarize(result({ verdict: undefined }));
        assert.equal(none.ok, false);
        assert.equal(none.lost, null);
    });

    it("names a second attempt `<phase>#2`", () => {
        const s = summarize(result({ scenario: "fault", phases: [phase("joined", { result: "failed" }), phase("joined", { attempt: 2 })] }));
        assert.deepEqual(Object.keys(s.phases), ["joined", "joined#2"]);
        assert.match(renderReport(result({ phases: [phase("joined", { attempt: 2 })] }), s), /^joined \(#2\) {9}succeeded/m);
    });

    it("with --kafka: the Kafka figures, the controller and the brokers' restart order in clients", () => {
        const steps = [
            { name: "kafka-broker-3", op: "update", startMs: 9000, ms: 20_000 },
            { name: "kafka-broker-1", op: "update", startMs: 100, ms: 4000 },
            { name: "kafka-broker-2", op: "update", startMs: 5000, ms: 4000 },
        ];
        const r = result({
            kafka: true,
            phases: [phase("separate", { kafka: { acknowledged: 10, failedSends: 0, maxProduceGapMs: 40 } }), phase("clients", { steps, kafka: { acknowledged: 20, failedSends: 1, maxProduceGapMs: 700 } })],
            kafkaController: 3,
            kafkaVerdict: { acknowledged: 30, consumed: 30, lost: 0, duplicated: 0, redelivered: 2, failedSends: 1, notConsumedLive: 0, inLog: 30, workerCrashes: 0, consumerStalls: 0, lostSample: [], lostDetail: [] },
        });
        const s = summarize(r);
        assert.equal(s.ok, true);
        assert.deepEqual(s.kafka, { acknowledged: 30, consumed: 30, lost: 0, duplicated: 0, redelivered: 2, failedSends: 1, workerCrashes: 0, consumerStalls: 0, maxProduceGapMs: 700, controller: 3, restartOrder: [1, 2, 3] });
        assert.equal(s.phases.clients.kafkaMaxProduceGapMs, 700);
        assert.equal(summarize({ ...r, kafkaVerdict: undefined }).ok, false, "no Kafka loss check: not ok");
        const text = renderReport(r, s);
        assert.match(text, /^zkmigrate rehearsal \(mitosis, with Kafka\): PASSED$/m);
        assert.match(text, /^ {2}clients +kafka-broker-3 +20\.0 s$/m);
        assert.match(text, /^Kafka loss check: 30 acknowledged, 30 consumed, 0 lost, 0 duplicated in the log/m);
    });

    it("renders the table and the loss check; the report file carries the summary and the details", () => {
        const r = result();
        const s = summarize(r);
        const lines = renderReport(r, s).split("\n");
        assert.equal(lines[1], "zkmigrate rehearsal (mitosis): PASSED");
        assert.equal(lines[3], `${"phase".padEnd(20)}${"result".padEnd(11)}${"wall s".padStart(8)}${"migrating gap ms".padStart(18)}${"source-users gap ms".padStart(21)}${"failed ops".padStart(12)}`);
        assert.equal(lines[5], `${"joined".padEnd(20)}${"succeeded".padEnd(11)}${"12.3".padStart(8)}${"300".padStart(18)}${"900".padStart(21)}${"3".padStart(12)}`);
        assert.ok(lines.includes("  joined            kafka-restart-1        leader       1500 ms"), lines.join("\n"));
        assert.ok(lines.includes("split: sources' longest write gap 120 ms; targets unavailable 800 ms after the firewall went up (all serving by srvr after 900 ms)"));
        assert.ok(lines.includes("loss check: 5000 acknowledged writes of the migrating clients, 0 lost; 3000 of the source's other users, 0 lost"));
        assert.equal(lines[lines.length - 1], "report: /tmp/r.json");
        const full = fullReport(r, s);
        assert.deepEqual(Object.keys(full), ["summary", "phases", "rolling", "split", "verdict", "kafka", "kafkaCrashes", "kafkaConsumerStalls", "kafkaSendFailures", "kafkaClientErrors", "fleet", "at"]);
        assert.equal(full.fleet, "rh-1");
        assert.equal(full.at, new Date(1_000).toISOString());
    });

    it("block-copy: the blocked window, the copies and the stand-in client's loss check; a loss there is not ok", () => {
        const blockCopy = { blockedMs: 4200, clientGapMs: 4600, finalCopyMs: 1800, fullCopyMs: 3900, journal: true, journalState: "stopped", acknowledged: 700, acknowledgedOnTarget: 120, lost: 0, lostSample: [] };
        const r = result({ scenario: "block-copy", blockCopy });
        const s = summarize(r);
        assert.equal(s.ok, true);
        assert.equal(s.lost, 0);
        assert.equal(s.acknowledged, 5000 + 3000 + 700);
        assert.deepEqual(s.blockCopy, { blockedMs: 4200, clientGapMs: 4600, finalCopyMs: 1800, fullCopyMs: 3900, journal: true, acknowledged: 700, lost: 0 });
        const text = renderReport(r, s);
        assert.match(text, /^block & copy: blocked -> switched 4\.2 s \(the stand-in client's own gap 4\.6 s\); final copy 1\.8 s \(by the change journal\), full copy 3\.9 s$/m);
        assert.match(text, /^block & copy loss check: 700 sequence numbers acknowledged to the stand-in client, 120 of them on the target after the switch, 0 lost$/m);
        assert.deepEqual(fullReport(r, s).blockCopy, blockCopy);
        const lossy = summarize(result({ scenario: "block-copy", blockCopy: { ...blockCopy, lost: 2, lostSample: [5, 6] } }));
        assert.equal(lossy.ok, false);
        assert.equal(lossy.lost, 2);
    });

    it("kubernetes: one update per cutover keyed pods:<n>, the cutovers' figures, the load average; no split line", () => {
        const cut = (server: number, update: number, o: Partial<import("../../../rehearsal/rehearse/report").CutoverFigures> = {}) => ({
            server,
            update,
            attempts: 1,
            wasLeader: false,
            hostStopMs: 1200,
            podReadyMs: 9100,
            podServingMs: 8800,
            servingFrom: "apply" as const,
            serverAbsentMs: 11_000,
            maxGapMs: 700,
            load1: 3.5,
            ...o,
        });
        const r = result({
            scenario: "pod-fault",
            phases: [phase("peers"), { ...phase("pods", { result: "failed" }), step: "1" }, { ...phase("pods", { attempt: 2 }), step: "1" }, { ...phase("pods"), step: "2" }],
            split: {},
            rolling: [],
            loadAverage: [4.5, 3.25, 2],
            kubernetes: { cluster: "rp-1", clusterStartMs: 21_000, cutovers: [cut(2, 1, { attempts: 2, servingFrom: "repair" }), cut(3, 2, { maxGapMs: 1900 }), cut(1, 3, { wasLeader: true })], faults: ["pulumi up stopped at the StatefulSet"] },
        });
        const s = summarize(r, 61_000);
        assert.deepEqual(Object.keys(s.phases), ["peers", "pods:1", "pods:1#2", "pods:2"]);
        assert.deepEqual(s.loadAverage, [4.5, 3.25, 2]);
        assert.equal(s.kubernetes?.maxCutoverGapMs, 1900);
        assert.equal(s.kubernetes?.clusterStartMs, 21_000);
        assert.deepEqual(s.kubernetes?.cutovers[0], { server: 2, attempts: 2, wasLeader: false, podReadyMs: 9100, podServingMs: 8800, serverAbsentMs: 11_000, maxGapMs: 700 });
        const text = renderReport(r, s);
        assert.match(text, /^pods 1 \(#2\)\s+succeeded/m);
        assert.match(text, /^  1 \(L\)\s+1\s+1\.2\s+9\.1\s+8\.8\s+11\.0\s+700\s+3\.5$/m);
        assert.match(text, /^  2\s+2\s+1\.2\s+9\.1\s+8\.8\*\s+11\.0\s+700\s+3\.5$/m);
        assert.match(text, /^  fault: pulumi up stopped at the StatefulSet$/m);
        assert.match(text, /^load average at the end: 4\.5, 3\.25, 2 \(1, 5, 15 min\)$/m);
        assert.doesNotMatch(text, /^split:/m);
        assert.deepEqual(fullReport(r, s).kubernetes, r.kubernetes);
    });
});
