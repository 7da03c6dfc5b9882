// The rehearsal's report: what the runner measured (RehearsalResult), the one-line JSON summary,
// the full JSON report file, and the table printed at the end. Pure: no fleet, no engine.
import type { KafkaFigures, KafkaLoad } from "../kafka-load";

export interface GroupFigures {
    maxGapMs: number;
    groupGapMs: number;
    acknowledged: number;
    failedOps: number;
}

export interface PhaseReport {
    phase: string;
    /** One of several updates of a phase (the kubernetes pods phase: `cutover 2` moves its second server). */
    step?: string;
    attempt: number;
    result: "succeeded" | "failed";
    /** When the phase's `pulumi up` started (ISO). */
    startedAt: string;
    wallMs: number;
    clients: Record<string, GroupFigures>;
    /** With --kafka: the producers in this phase. */
    kafka?: { acknowledged: number; failedSends: number; maxProduceGapMs: number };
    connect: string;
    /** startMs: from the start of the phase. */
    steps: { name: string; op: string; startMs: number; ms: number; failed?: boolean; leaderAtStart?: number[] }[];
    error?: string;
    /** Mitosis: restarts of source servers in this phase (updates of their restart steps). */
    sourceRestarts?: number;
    /** Mitosis: the sources' leader elections in this phase, counted from srvr (epoch and leader changes). */
    sourceElections?: number;
}

export interface RollingStep {
    phase: string;
    step: string;
    server: number;
    restartsLeader: boolean;
    maxGapMs: number;
}

export interface SplitFigures {
    firewallUpAt?: number;
    sourceMaxGapMs?: number;
    targetUnavailableMs?: number;
    targetsServingMs?: number;
}

export interface Verdict {
    lost: number;
    acknowledged: number;
    lostSample: string[];
    sourceUsersLost: number;
    sourceUsersAcknowledged: number;
}

/** Block & copy: the stand-in client's blocked window and its loss check (scenarios.ts). */
export interface BlockCopyFigures {
    /** From the start of the first block command to the end of the last switch command. */
    blockedMs: number;
    /** The stand-in client's own gap: its last write acknowledged on the source to its first on the target. */
    clientGapMs: number;
    /** The final copy's step (wall time of `zkmigrate copy --journal`, the CLI's start included). */
    finalCopyMs: number;
    /** The precopy's step (the journal's start and the full copy). */
    fullCopyMs: number;
    /** Whether the final copy visited the journal's paths (else the scan). */
    journal: boolean;
    /** The journal's last state (and why it broke, when it did). */
    journalState: string;
    acknowledged: number;
    acknowledgedOnTarget: number;
    lost: number;
    lostSample: number[];
}

/**
 * One cutover of the kubernetes procedure (a `pods` update): a host stops, its pod starts with the
 * same myid, the Service selects it. Times in ms.
 */
export interface CutoverFigures {
    server: number;
    /** The update of the pods phase (1 = the first server moved) and the attempt that completed it. */
    update: number;
    attempts: number;
    /** Whether the server led the ensemble when its host stopped. */
    wasLeader: boolean;
    /** The host's stop (the decommission step). */
    hostStopMs: number;
    /** Pulumi's wait for the StatefulSet in the update that completed it: apply to pod Ready (Ready = `srvr` answers = synced). */
    podReadyMs: number;
    /** From the StatefulSet's apply (after a fault: from the repair) to the first `srvr` with a Mode through the Service's ClusterIP. */
    podServingMs: number;
    servingFrom: "apply" | "repair";
    /** From the host's stop to the server serving again from its pod: how long the ensemble had 2 of 3. */
    serverAbsentMs: number;
    /** Longest write gap of any client session during the update(s) of this cutover. */
    maxGapMs: number;
    /** The 1-minute load average at the end of the update. */
    load1: number;
}

/** What a run measured; filled as it goes, so a failed run reports what it reached. */
export interface RehearsalResult {
    scenario: string;
    /** How the mitosis targets joined (`--join`); unset: the config's default. */
    join?: string;
    kafka: boolean;
    fleet: string;
    report: string;
    started: number;
    phases: PhaseReport[];
    rolling: RollingStep[];
    split: SplitFigures;
    /**
     * The voter join's declared split-brain window, measured: from the end of the first source's
     * restart onto S+T' to the end of the last source restart before the leader's (n = 3: source 1
     * to source 2), when the sources could hold two disjoint majorities.
     */
    joinSplitBrainWindowMs?: number;
    /** Variables the hosts' sshd refused to a command: any fails the rehearsal (the program must send none). */
    refusedEnv: string[];
    verdict?: Verdict;
    kafkaVerdict?: KafkaFigures;
    /** The Kafka controller just before `clients` (read from /controller), which must restart last. */
    kafkaController?: number;
    /** The Kafka load, for its crashes, stalls and failures. */
    kafkaLoad?: Pick<KafkaLoad, "crashes" | "stalls" | "producers" | "consumerErrors">;
    blockCopy?: BlockCopyFigures;
    /** The machine's load average (1, 5, 15 min) at the end of the run: the figures' context. */
    loadAverage?: number[];
    /** The kubernetes procedure: its local cluster, and one entry per cutover. */
    kubernetes?: { cluster: string; clusterStartMs?: number; cutovers: CutoverFigures[]; faults: string[] };
    failure?: string;
}

export function newResult(o: { scenario: string; kafka: boolean; fleetName: string; report: string }, started: number): RehearsalResult {
    return { scenario: o.scenario, kafka: o.kafka, fleet: o.fleetName, report: o.report, started, phases: [], rolling: [], split: {}, refusedEnv: [] };
}

/** The one-line JSON summary (the last line printed); `ok` only with 0 lost and every phase applied. */
export function summarize(r: RehearsalResult, now: number = Date.now()) {
    const { phases, rolling, split, verdict, kafkaVerdict, failure } = r;
    const nonLeader = rolling.filter((x) => !x.restartsLeader);
    const summary = {
        scenario: r.scenario,
        ok: false,
        lost: verdict ? verdict.lost + verdict.sourceUsersLost + (r.blockCopy?.lost ?? 0) : null,
        acknowledged: verdict ? verdict.acknowledged + verdict.sourceUsersAcknowledged + (r.blockCopy?.acknowledged ?? 0) : null,
        splitSourceMaxGapMs: split.sourceMaxGapMs ?? null,
        splitTargetUnavailableMs: split.targetUnavailableMs ?? null,
        splitTargetsServingMs: split.targetsServingMs ?? null,
        joinSplitBrainWindowMs: r.joinSplitBrainWindowMs ?? null,
        maxRollingGapMs: nonLeader.length > 0 ? Math.max(...nonLeader.map((x) => x.maxGapMs)) : null,
        maxLeaderRestartGapMs: rolling.some((x) => x.restartsLeader) ? Math.max(...rolling.filter((x) => x.restartsLeader).map((x) => x.maxGapMs)) : null,
        failedOps: phases.reduce((n, p) => n + p.clients.migrating.failedOps + p.clients["source-users"].failedOps, 0),
        ...(r.kafka
            ? {
                  kafka: kafkaVerdict
                      ? {
                            acknowledged: kafkaVerdict.acknowledged,
                            consumed: kafkaVerdict.consumed,
                            lost: kafkaVerdict.lost,
                            duplicated: kafkaVerdict.duplicated,
                            redelivered: kafkaVerdict.redelivered,
                            failedSends: kafkaVerdict.failedSends,
                            workerCrashes: kafkaVerdict.workerCrashes,
                            consumerStalls: kafkaVerdict.consumerStalls,
                            maxProduceGapMs: Math.max(0, ...phases.map((p) => p.kafka?.maxProduceGapMs ?? 0)),
                            controller: r.kafkaController ?? null,
                            // The brokers restarted in `clients`, in the order they started.
                            restartOrder: (phases.find((p) => p.phase === "clients")?.steps ?? [])
                                .filter((x) => x.op === "update" && /-broker-\d+$/.test(x.name))
                                .sort((a, b) => a.startMs - b.startMs)
                                .map((x) => Number(/-broker-(\d+)$/.exec(x.name)![1])),
                        }
                      : null,
              }
            : {}),
        ...(r.blockCopy
            ? {
                  blockCopy: {
                      blockedMs: r.blockCopy.blockedMs,
                      clientGapMs: r.blockCopy.clientGapMs,
                      finalCopyMs: r.blockCopy.finalCopyMs,
                      fullCopyMs: r.blockCopy.fullCopyMs,
                      journal: r.blockCopy.journal,
                      acknowledged: r.blockCopy.acknowledged,
                      lost: r.blockCopy.lost,
                  },
              }
            : {}),
        ...(r.kubernetes
            ? {
                  kubernetes: {
                      clusterStartMs: r.kubernetes.clusterStartMs ?? null,
                      cutovers: r.kubernetes.cutovers.map((c) => ({
                          server: c.server,
                          attempts: c.attempts,
                          wasLeader: c.wasLeader,
                          podReadyMs: c.podReadyMs,
                          podServingMs: c.podServingMs,
                          serverAbsentMs: c.serverAbsentMs,
                          maxGapMs: c.maxGapMs,
                      })),
                      maxCutoverGapMs: r.kubernetes.cutovers.length > 0 ? Math.max(...r.kubernetes.cutovers.map((c) => c.maxGapMs)) : null,
                  },
              }
            : {}),
        wallMs: now - r.started,
        // The joins' comparison (issue 13): per run, what the sources went through.
        ...(phases.some((p) => p.sourceRestarts !== undefined)
            ? {
                  join: r.join ?? null,
                  sourceRestarts: phases.reduce((n, p) => n + (p.sourceRestarts ?? 0), 0),
                  sourceElections: phases.reduce((n, p) => n + (p.sourceElections ?? 0), 0),
                  sourceMaxGapMs: Math.max(0, ...phases.map((p) => p.clients["source-users"].maxGapMs)),
                  targetsMaxGapMs: Math.max(0, ...phases.filter((p) => p.phase !== "separate" && p.phase !== "joined").map((p) => p.clients.migrating.maxGapMs)),
              }
            : {}),
        ...(r.loadAverage ? { loadAverage: r.loadAverage } : {}),
        phases: Object.fromEntries(
            phases.map((p) => [
                phaseKey(p),
                {
                    result: p.result,
                    wallMs: p.wallMs,
                    maxGapMs: Math.max(p.clients.migrating.maxGapMs, p.clients["source-users"].maxGapMs),
                    failedOps: p.clients.migrating.failedOps + p.clients["source-users"].failedOps,
                    ...(p.sourceRestarts !== undefined ? { sourceRestarts: p.sourceRestarts, sourceElections: p.sourceElections ?? 0, sourceMaxGapMs: p.clients["source-users"].maxGapMs, migratingMaxGapMs: p.clients.migrating.maxGapMs } : {}),
                    ...(p.kafka ? { kafkaMaxProduceGapMs: p.kafka.maxProduceGapMs } : {}),
                },
            ]),
        ),
        refusedEnv: r.refusedEnv,
        ...(failure ? { failure: failure.split("\n")[0] } : {}),
    };
    summary.ok = !failure && r.refusedEnv.length === 0 && summary.lost === 0 && phases.length > 0 && (!r.kafka || (kafkaVerdict !== undefined && kafkaVerdict.lost === 0));
    return summary;
}

export type Summary = ReturnType<typeof summarize>;

/** A phase run's key in the summary: `pods:2` (an update of several), `#2` for a second attempt. */
export function phaseKey(p: Pick<PhaseReport, "phase" | "step" | "attempt">): string {
    return `${p.phase}${p.step ? `:${p.step}` : ""}${p.attempt > 1 ? `#${p.attempt}` : ""}`;
}

/** The report file: the summary and everything behind it. */
export function fullReport(r: RehearsalResult, summary: Summary) {
    const k = r.kafkaLoad;
    return {
        summary,
        phases: r.phases,
        rolling: r.rolling,
        split: r.split,
        verdict: r.verdict ?? null,
        ...(r.blockCopy ? { blockCopy: r.blockCopy } : {}),
        ...(r.kubernetes ? { kubernetes: r.kubernetes } : {}),
        kafka: r.kafkaVerdict ?? null,
        kafkaCrashes: k?.crashes ?? [],
        kafkaConsumerStalls: k?.stalls ?? [],
        kafkaSendFailures: k?.producers.flatMap((p) => p.failures.map((f) => ({ producer: p.name, ...f }))).slice(0, 50) ?? [],
        kafkaClientErrors: k?.consumerErrors.slice(0, 50) ?? [],
        fleet: r.fleet,
        at: new Date(r.started).toISOString(),
    };
}

/** The table printed at the end (before the JSON summary line). */
export function renderReport(r: RehearsalResult, summary: Summary): string {
    const { phases, rolling, split, verdict, kafkaVerdict, failure } = r;
    const lines = [
        "",
        `zkmigrate rehearsal (${r.scenario}${r.kafka ? ", with Kafka" : ""}): ${summary.ok ? "PASSED" : "FAILED"}${failure ? ` — ${failure.split("\n")[0]}` : ""}`,
        "",
        `${"phase".padEnd(20)}${"result".padEnd(11)}${"wall s".padStart(8)}${"migrating gap ms".padStart(18)}${"source-users gap ms".padStart(21)}${"failed ops".padStart(12)}${r.kafka ? `${"kafka acks".padStart(12)}${"produce gap ms".padStart(16)}` : ""}`,
        ...phases.map((p) =>
            [
                `${p.phase}${p.step ? ` ${p.step}` : ""}${p.attempt > 1 ? ` (#${p.attempt})` : ""}`.padEnd(20),
                p.result.padEnd(11),
                (p.wallMs / 1000).toFixed(1).padStart(8),
                String(p.clients.migrating.maxGapMs).padStart(18),
                String(p.clients["source-users"].maxGapMs).padStart(21),
                String(p.clients.migrating.failedOps + p.clients["source-users"].failedOps).padStart(12),
                ...(p.kafka ? [String(p.kafka.acknowledged).padStart(12), String(p.kafka.maxProduceGapMs).padStart(16)] : []),
            ].join(""),
        ),
        "",
        "rolling restart steps (longest write gap of any session while the step ran):",
        ...rolling.map((x) => `  ${x.phase.padEnd(17)} ${x.step.padEnd(22)} ${x.restartsLeader ? "leader    " : "not leader"} ${String(x.maxGapMs).padStart(6)} ms`),
        "",
        ...(r.kubernetes ? [] : [`split: sources' longest write gap ${split.sourceMaxGapMs ?? "-"} ms; targets unavailable ${split.targetUnavailableMs ?? "-"} ms after the firewall went up (all serving by srvr after ${split.targetsServingMs ?? "-"} ms)`]),
        verdict
            ? `loss check: ${verdict.acknowledged} acknowledged writes of the migrating clients, ${verdict.lost} lost; ${verdict.sourceUsersAcknowledged} of the source's other users, ${verdict.sourceUsersLost} lost${verdict.lostSample.length ? ` (e.g. ${verdict.lostSample.join(", ")})` : ""}`
            : "loss check: not reached",
        `environment refused by the hosts' sshd: ${r.refusedEnv.length ? r.refusedEnv.join(", ") : "none"}`,
        ...(r.loadAverage ? [`load average at the end: ${r.loadAverage.join(", ")} (1, 5, 15 min)`] : []),
        ...(r.blockCopy
            ? [
                  `block & copy: blocked -> switched ${(r.blockCopy.blockedMs / 1000).toFixed(1)} s (the stand-in client's own gap ${(r.blockCopy.clientGapMs / 1000).toFixed(1)} s); final copy ${(r.blockCopy.finalCopyMs / 1000).toFixed(1)} s (${r.blockCopy.journal ? "by the change journal" : `by the scan; journal ${r.blockCopy.journalState}`}), full copy ${(r.blockCopy.fullCopyMs / 1000).toFixed(1)} s`,
                  `block & copy loss check: ${r.blockCopy.acknowledged} sequence numbers acknowledged to the stand-in client, ${r.blockCopy.acknowledgedOnTarget} of them on the target after the switch, ${r.blockCopy.lost} lost${r.blockCopy.lostSample.length ? ` (e.g. ${r.blockCopy.lostSample.join(", ")})` : ""}`,
              ]
            : []),
        ...(r.kubernetes
            ? [
                  "",
                  `cutovers (local Kubernetes ${r.kubernetes.cluster}, Ready in ${r.kubernetes.clusterStartMs !== undefined ? `${(r.kubernetes.clusterStartMs / 1000).toFixed(1)} s` : "-"}; a host stops, its pod starts with the same myid):`,
                  `  ${"server".padEnd(8)}${"attempts".padStart(9)}${"host stop s".padStart(13)}${"pod Ready s".padStart(13)}${"serving s".padStart(12)}${"absent s".padStart(10)}${"write gap ms".padStart(14)}${"load".padStart(7)}`,
                  ...r.kubernetes.cutovers.map(
                      (c) =>
                          `  ${`${c.server}${c.wasLeader ? " (L)" : ""}`.padEnd(8)}${String(c.attempts).padStart(9)}${(c.hostStopMs / 1000).toFixed(1).padStart(13)}${(c.podReadyMs / 1000).toFixed(1).padStart(13)}${`${(c.podServingMs / 1000).toFixed(1)}${c.servingFrom === "repair" ? "*" : ""}`.padStart(12)}${(c.serverAbsentMs / 1000).toFixed(1).padStart(10)}${String(c.maxGapMs).padStart(14)}${c.load1.toFixed(1).padStart(7)}`,
                  ),
                  "  (pod Ready: Pulumi's wait for the StatefulSet; serving: from its apply to the first srvr with a Mode through the Service, * from the repair; absent: from the host's stop)",
                  ...r.kubernetes.faults.map((x) => `  fault: ${x}`),
              ]
            : []),
        ...(r.kafka
            ? [
                  "",
                  "Kafka brokers (rolling restart in clients, the controller last):",
                  ...phases.flatMap((p) =>
                      p.steps.filter((x) => /-broker-\d+$/.test(x.name) && x.op === "update").map((x) => `  ${p.phase.padEnd(17)} ${x.name.padEnd(28)} ${(x.ms / 1000).toFixed(1).padStart(6)} s${x.failed ? " FAILED" : ""}`),
                  ),
                  kafkaVerdict
                      ? `Kafka loss check: ${kafkaVerdict.acknowledged} acknowledged, ${kafkaVerdict.consumed} consumed, ${kafkaVerdict.lost} lost, ${kafkaVerdict.duplicated} duplicated in the log (${kafkaVerdict.redelivered} redelivered to consumers, ${kafkaVerdict.failedSends} sends not acknowledged, ${kafkaVerdict.workerCrashes} client processes crashed and ${kafkaVerdict.consumerStalls} stalled consumers replaced)${kafkaVerdict.lostDetail.length ? `; lost: ${kafkaVerdict.lostDetail.map((d) => `${d.id} acknowledged ${d.ackedAt} at ${d.offset ?? "?"}, now there: ${d.nowAtOffset}`).join("; ")}` : ""}`
                      : "Kafka loss check: not reached",
              ]
            : []),
        `report: ${r.report}`,
    ];
    return lines.join("\n");
}
