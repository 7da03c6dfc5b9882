// The rehearsal's runner: the engine, a fleet (and for the kubernetes procedure a local cluster
// beside it), a stack of a copy of the project on a local file backend, the load, one `pulumi up`
// per phase as the scenario says, the loss check; the stack, the cluster, the fleet and the temp
// dir are always destroyed, in that order (also on failure and on SIGINT). It fills a
// RehearsalResult as it goes (report.ts turns it into the report).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { LocalWorkspace, PulumiCommand, type EngineEvent, type Stack } from "@pulumi/pulumi/automation";
import { REPO, copyProject, engineEnv, findEngine } from "../engine";
import { createHash, randomBytes } from "node:crypto";
import { createFleet, destroyFleet, hostsOf, stackHostConfig, stackSshConfig, type FleetEnsembleSpec, type LocalFleet } from "../fleet";
import { destroyCluster, startCluster, type Cluster } from "../kubernetes/cluster";
import type { Window } from "../gaps";
import { StressGroup } from "../stress";
import { withTimeout } from "../with-timeout";
import { Display } from "./display";
import { KafkaPart, kafkaClients, kafkaFleet } from "./kafka";
import { prepareCluster, resolveConnect } from "./kubernetes";
import { ModeMonitor } from "./monitor";
import type { Options } from "./options";
import { newResult, type GroupFigures, type PhaseReport, type RehearsalResult } from "./report";
import { JOIN_AS_DEFAULT, mitosisSchema } from "../../src/procedures/mitosis";
import { PROCEDURES, SCENARIOS, withJoin, type Procedure, type Rehearsal, type Scenario } from "./scenarios";
import { recordSteps, type StepTiming } from "./steps";

/** The ensemble's name in the stack config. */
const ENSEMBLE = "kafka";
/** Kafka's chroot on the source: the migrating clients' connect string ends with it. */
const CHROOT = "/kafka";
const STACK = "rehearsal";
const UP_TIMEOUT_MS = 10 * 60_000;

/** The installed engine; built by tools/pulumi/install.sh first when there is none. */
function ensureEngine(): string {
    const found = findEngine();
    if (found) return found;
    console.error("rehearse: no Pulumi engine installed; building it (tools/pulumi/install.sh)");
    const r = spawnSync("bash", [path.join(REPO, "tools/pulumi/install.sh")], { stdio: "inherit", timeout: 3600_000 });
    if (r.status !== 0) throw new Error("tools/pulumi/install.sh failed: the Pulumi engine is needed for the rehearsal");
    const built = findEngine();
    if (!built) throw new Error("tools/pulumi/install.sh ran but no pulumi and pulumi-language-nodejs were found");
    return built;
}

/** Runs the rehearsal the options describe; never throws (a failure is in `failure`). */
export async function runRehearsal(o: Options): Promise<RehearsalResult> {
    const started = Date.now();
    const scenario: Scenario = SCENARIOS[o.scenario];
    // --join, else the join the scenario was built on, else the config's default (unset).
    const join = o.join ?? scenario.join;
    const ran = join ?? (scenario.procedure === "mitosis" ? JOIN_AS_DEFAULT : undefined);
    const result: RehearsalResult = { ...newResult(o, started), ...(ran ? { join: ran } : {}) };
    const procedure: Procedure = PROCEDURES[scenario.procedure];
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "zkmigrate-rehearse-"));
    let fleet: LocalFleet | undefined;
    let cluster: Cluster | undefined;
    let clusterStarted = false;
    let stack: Stack | undefined;
    const groups: StressGroup[] = [];
    let kafka: KafkaPart | undefined;
    let monitor: ModeMonitor | undefined;
    let display: Display | undefined;
    let phaseLabel = "setup";
    /** The loss check, once the clients run (also after a failed phase). */
    let lossCheck: (() => Promise<void>) | undefined;
    const say = (s: string) => (display ? display.line(s) : console.error(s));
    let interrupted = false;
    const onSignal = () => {
        interrupted = true;
        say("rehearse: interrupted; cleaning up");
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    const cleanup = async () => {
        display?.stop();
        await kafka?.load.stop(0).catch(() => undefined);
        await Promise.all(groups.map((g) => g.stop().catch(() => undefined)));
        await monitor?.stop().catch(() => undefined);
        if (stack) {
            try {
                await withTimeout(stack.destroy({}), 5 * 60_000, "pulumi destroy");
            } catch (e) {
                console.error(`rehearse: pulumi destroy failed (${(e as Error).message.split("\n")[0]}); removing the stack anyway`);
            }
            await stack.workspace.removeStack(STACK, { force: true }).catch(() => undefined);
        }
        // The cluster before the fleet: it is attached to the fleet's bridge and hosts.
        if (clusterStarted) await destroyCluster(o.fleetName).catch((e) => console.error(`rehearse: destroying cluster ${o.fleetName}: ${(e as Error).message}`));
        if (fleet) await destroyFleet(fleet.name, {}).catch((e) => console.error(`rehearse: destroying fleet ${fleet?.name}: ${(e as Error).message}`));
        fs.rmSync(tmp, { recursive: true, force: true });
    };

    try {
        // 1. The engine and the fleet.
        const bin = ensureEngine();
        const envVars = engineEnv(bin, path.join(tmp, "state"), `rehearsal-${process.pid}`);
        fs.mkdirSync(path.join(tmp, "state"));
        // The Automation API checks the CLI version before any workspace exists: this process's env too.
        for (const [k, v] of Object.entries(envVars)) process.env[k] = v;
        const pulumiCommand = await PulumiCommand.get({ root: path.dirname(bin) });
        console.error(`rehearse: scenario ${o.scenario}; Pulumi ${pulumiCommand.version?.toString() ?? "?"} from ${bin}`);

        const layout = procedure.ensembles.map((e) => `${e.name} ${e.firstId ?? 1}-${(e.firstId ?? 1) + e.servers - 1}`).join(", ");
        console.error(`rehearse: creating fleet ${o.fleetName} (${layout}; both serving${o.kafka ? `; Kafka brokers 1-3 on the source's ${CHROOT}` : ""})`);
        fleet = await createFleet(
            {
                name: o.fleetName,
                // --join reconfig: the servers run with dynamic reconfig and a super digest (reconfigFleet).
                ensembles: join === "reconfig" ? reconfigFleet(procedure.ensembles) : procedure.ensembles,
                ...(o.version ? { version: o.version } : {}),
                ...(o.kafka ? { kafka: kafkaFleet(CHROOT) } : {}),
            },
            { log: (l) => console.error(`fleet: ${l}`) },
        );
        const f = fleet;
        if (procedure.cluster) {
            // Its own processes by pid, mounts, cgroups, routes and the hosts' DNS: all removed by
            // destroyCluster in cleanup (also after a failed start).
            clusterStarted = true;
            const c0 = Date.now();
            console.error(`rehearse: starting a local Kubernetes ${o.fleetName} beside the fleet`);
            cluster = await startCluster(o.fleetName, { fleet: f, ...(o.version ? { zookeeperVersion: o.version } : {}), log: (l) => console.error(`cluster: ${l}`) });
            await prepareCluster(cluster);
            result.kubernetes = { cluster: cluster.name, clusterStartMs: Date.now() - c0, cutovers: [], faults: [] };
        }
        const k8s = cluster;
        // The published connect string as the rehearsal's clients dial it (Service names resolved through the cluster's DNS).
        const dialable = (connect: string) => (k8s ? resolveConnect(k8s, connect) : Promise.resolve(connect));
        const sources = hostsOf(f, "source");
        const targets = hostsOf(f, "target");
        const sourceConnect = sources.map((h) => `${h.address}:2181`).join(",");

        // 2. The stack: a copy of the project, config describing the fleet.
        const project = path.join(tmp, "project");
        copyProject(project);
        // A procedure whose entry names its own clients (block-copy: hosts and commands) keeps them.
        const own = procedure.ensemble(f, cluster);
        const entry = { name: ENSEMBLE, ...own, clients: own.clients ?? { chroot: CHROOT, ...(o.kafka ? kafkaClients(f) : {}) } };
        const ensemble = withJoin(scenario.ensemble ? scenario.ensemble(entry, f) : entry, join, (key) => key in mitosisSchema.shape);
        const stackConfig = {
            config: {
                "zkmigrate:sshUser": "root",
                // The hosts' pinned host keys: every remote command verifies the sshd it reaches.
                "zkmigrate:sshKnownHosts": stackSshConfig(f).sshKnownHosts,
                "zkmigrate:defaults": {
                    ...stackHostConfig(f),
                    // --join reconfig: the reconfig steps run the fleet's zkCli on the source hosts.
                    ...(join === "reconfig" ? { zookeeper: { ...(stackHostConfig(f).zookeeper as object), cli: `${f.mountPoint}/bin/zk-cli` } } : {}),
                    spacingSeconds: o.spacingSeconds,
                },
                "zkmigrate:ensembles": [ensemble],
                ...(cluster ? { "zkmigrate:kubeconfig": cluster.kubeconfig } : {}),
            },
        };
        fs.writeFileSync(path.join(project, `Pulumi.${STACK}.yaml`), JSON.stringify(stackConfig, null, 2));
        stack = await LocalWorkspace.createStack({ stackName: STACK, workDir: project }, { pulumiCommand, envVars });
        await stack.setConfig("zkmigrate:sshPrivateKey", { value: fs.readFileSync(f.sshKey, "utf8"), secret: true });
        if (join === "reconfig") await stack.setConfig("zkmigrate:reconfigAuth", { value: RECONFIG_AUTH, secret: true });

        // 3. Load: Kafka's chroot on the source, two client groups, the mode monitor.
        const setup = await StressGroup.start({ name: "setup", connect: sourceConnect, base: `${CHROOT}/.setup`, sessions: 1, pauseMs: 1000 });
        await setup.stop();
        // The migrating clients write under the chroot and follow the connect string the phases
        // publish; a procedure whose clients are blocked (block-copy: a stand-in client process)
        // has them write beside the subtree instead, on the source, all along.
        const follows = procedure.migratingFollowsConnect ?? true;
        const migrating = await StressGroup.start({ name: "migrating", connect: follows ? `${sourceConnect}${CHROOT}` : sourceConnect, base: "/stress", sessions: 3 });
        groups.push(migrating);
        const sourceUsers = await StressGroup.start({ name: "source-users", connect: sourceConnect, base: "/other-tenant/stress", sessions: 2 });
        groups.push(sourceUsers);
        if (o.kafka) {
            kafka = await KafkaPart.start(f);
            result.kafkaLoad = kafka.load;
        }
        const kp = kafka;
        const everyone = procedure.everyoneFollowsConnect ?? false;
        lossCheck = async () => {
            phaseLabel = "loss check";
            await Promise.all(groups.map((g) => g.stop()));
            const finalConnect = migrating.currentConnect;
            const mv = await migrating.verify(finalConnect);
            const sv = await sourceUsers.verify(sourceUsers.currentConnect);
            result.verdict = {
                lost: mv.lost.length,
                acknowledged: mv.acknowledged,
                lostSample: mv.lost.slice(0, 10),
                sourceUsersLost: sv.lost.length,
                sourceUsersAcknowledged: sv.acknowledged,
            };
            say(`rehearse: loss check on ${finalConnect}: ${mv.acknowledged} acknowledged, ${mv.present} present, ${mv.lost.length} lost; source-users on ${sourceUsers.currentConnect}: ${sv.acknowledged} acknowledged, ${sv.lost.length} lost`);
            if (kp) {
                result.kafkaVerdict = await kp.verify(say);
            }
        };
        monitor = new ModeMonitor([...sources, ...targets]);
        monitor.start();
        const m = monitor;
        const phaseStart = { t: Date.now() };
        display = new Display(o.live, () => {
            const w = { start: phaseStart.t, end: Date.now() };
            const g1 = migrating.gaps(w);
            const g2 = sourceUsers.gaps(w);
            const k = kp ? kp.status(w) : "";
            return `[${phaseLabel} ${((Date.now() - phaseStart.t) / 1000).toFixed(0)} s] acks ${migrating.acknowledged}+${sourceUsers.acknowledged} · longest gap migrating ${g1.perSessionMs} ms, source-users ${g2.perSessionMs} ms${k} · ${m.current()}`;
        });
        display.start();

        // 4. The phases, as the scenario runs each.
        let published = `${sourceConnect}${CHROOT}`;
        const runPhase = async (phase: string, attempt: number, before?: () => Promise<void>, step?: string, watch?: (e: EngineEvent) => void): Promise<PhaseReport> => {
            phaseLabel = step ? `${phase}:${step}` : phase;
            await stack!.setConfig("zkmigrate:ensembles[0].phase", { value: phase }, true);
            if (before) await before();
            const { steps, refusedEnv, onEvent } = recordSteps(phase, say);
            say(`rehearse: phase ${phase}${step ? ` ${step}` : ""}${attempt > 1 ? ` (attempt ${attempt})` : ""}: pulumi up`);
            phaseStart.t = Date.now();
            const t0 = phaseStart.t;
            let outcome: "succeeded" | "failed" = "succeeded";
            let error: string | undefined;
            let connect = published;
            try {
                const up = await withTimeout(
                    stack!.up({
                        onEvent: (e) => {
                            onEvent(e);
                            watch?.(e);
                        },
                    }),
                    UP_TIMEOUT_MS,
                    `pulumi up (${phase})`,
                );
                const ens = (up.outputs.ensembles?.value ?? {}) as Record<string, { connect?: string }>;
                connect = ens[ENSEMBLE]?.connect ?? connect;
            } catch (e) {
                outcome = "failed";
                error = (e as Error).message.replace(/: running "(?:[^"\\]|\\.)*"/g, "");
            }
            const t1 = Date.now();
            // Kafka moves to the connect string the phase publishes.
            if (follows && outcome === "succeeded" && connect !== published) {
                const dial = await dialable(connect);
                say(`  ${phase}: clients move to ${connect}${dial !== connect ? ` (${dial})` : ""}`);
                migrating.setConnect(dial);
                // The ensemble's other users too, outside the chroot, when all of its clients move.
                if (everyone) sourceUsers.setConnect(dial.replace(/\/.*$/, ""));
                published = connect;
            }
            const w: Window = { start: t0, end: t1 };
            // Mitosis: what the sources went through (the joins' comparison, issue 13).
            const sourceIds = new Set(sources.map((h) => h.id));
            const mitosisFigures =
                o.scenario !== "block-copy" && procedure.phases.includes("source-restarted")
                    ? {
                          sourceRestarts: [...steps.values()].filter((s) => s.op === "update" && !s.failed && !s.stops && sourceIds.has(Number(/-restart-(\d+)$/.exec(s.name)?.[1]))).length,
                          sourceElections: m.elections([...sourceIds], w),
                      }
                    : {};
            const report: PhaseReport = {
                phase,
                ...(step ? { step } : {}),
                attempt,
                result: outcome,
                startedAt: new Date(t0).toISOString(),
                wallMs: t1 - t0,
                clients: { migrating: groupFigures(migrating, w), "source-users": groupFigures(sourceUsers, w) },
                ...(kp ? { kafka: kp.phaseFigures(w) } : {}),
                connect,
                steps: [...steps.values()]
                    .filter((s) => s.op !== "same")
                    .map((s) => ({
                        name: s.name,
                        op: s.op,
                        startMs: s.start - t0,
                        ms: (s.end ?? t1) - s.start,
                        ...(s.failed ? { failed: true } : {}),
                        ...(/-restart-\d+$/.test(s.name) ? { leaderAtStart: m.leadersAt(s.start) } : {}),
                    })),
                ...(error ? { error } : {}),
                ...mitosisFigures,
            };
            result.phases.push(report);
            for (const v of refusedEnv) if (!result.refusedEnv.includes(v)) result.refusedEnv.push(v);
            const c = report.clients;
            say(
                `rehearse: phase ${phase} ${outcome} in ${(report.wallMs / 1000).toFixed(1)} s; longest write gap migrating ${c.migrating.maxGapMs} ms, source-users ${c["source-users"].maxGapMs} ms; failed ops ${c.migrating.failedOps}+${c["source-users"].failedOps}` +
                    (report.kafka ? `; kafka: ${report.kafka.acknowledged} acknowledged, longest produce gap ${report.kafka.maxProduceGapMs} ms, failed sends ${report.kafka.failedSends}` : ""),
            );
            if (phase === "joined" && outcome === "succeeded") {
                // The join's split-brain window (declared by the plan): the source restarts onto
                // S+T' in their order; the window runs from the first one's end to the end of the
                // last one before the leader's.
                const ids = new Set(sources.map((h) => h.id));
                const restarts = [...steps.values()]
                    .filter((s) => s.op === "update" && !s.failed && s.end !== undefined && ids.has(Number(/-restart-(\d+)$/.exec(s.name)?.[1])))
                    .sort((a, b) => a.start - b.start);
                if (restarts.length >= 3) result.joinSplitBrainWindowMs = restarts[restarts.length - 2].end! - restarts[0].end!;
            }
            if (phase !== "split") {
                result.rolling.push(...rollingSteps(phase, steps, t1, m, migrating, sourceUsers));
            } else if (outcome === "succeeded") {
                result.split = splitFigures(steps, w, m, targets.map((h) => h.id), migrating, sourceUsers);
            }
            if (interrupted) throw new Error("interrupted");
            return report;
        };

        const setConfig = async (key: string, value: string) => {
            await stack!.setConfig(key, { value }, true);
        };
        const rehearsal: Rehearsal = { fleet: f, sources, targets, say, runPhase, setConfig, monitor: m, ...(cluster ? { cluster } : {}), result, project };
        const phases: Partial<Record<string, (r: Rehearsal, phase: string) => Promise<void>>> = { ...(procedure.phaseRuns ?? {}), ...(scenario.phases ?? {}) };
        for (const phase of procedure.phases) {
            const own = phases[phase];
            if (own) {
                await own(rehearsal, phase);
            } else {
                if (kp) await kp.beforePhase(phase, `${sourceConnect}${CHROOT}`, say);
                const r = await runPhase(phase, 1);
                if (r.result !== "succeeded") throw new Error(`phase ${phase} failed: ${r.error}`);
            }
            if (procedure.afterPhase) await procedure.afterPhase(rehearsal, phase);
        }
        if (scenario.after) {
            phaseLabel = "scenario check";
            await scenario.after(rehearsal);
        }

        // 5. The loss check.
        await lossCheck();
    } catch (e) {
        result.failure = (e as Error).message;
        say(`rehearse: FAILED: ${result.failure}`);
        // A failed phase is no reason to skip the loss check: what was acknowledged must still be
        // there (on the connect string the clients use now), and the report says so either way.
        if (lossCheck && !result.verdict && !interrupted) {
            say("rehearse: the loss check after the failure");
            await withTimeout(lossCheck(), 3 * 60_000, "the loss check after a failure").catch((x) => say(`rehearse: the loss check after the failure could not run: ${(x as Error).message}`));
        }
    } finally {
        // The machine's load while it ran (before the teardown's own).
        result.loadAverage = os.loadavg().map((x) => Number(x.toFixed(2)));
        display?.stop();
        display = undefined;
        console.error("rehearse: destroying the stack and the fleet");
        await cleanup();
    }
    result.kafkaController = kafka?.controller;
    return result;
}

/** A client group's figures within a phase's window. */
function groupFigures(g: StressGroup, w: Window): GroupFigures {
    const gaps = g.gaps(w);
    return {
        maxGapMs: gaps.perSessionMs,
        groupGapMs: gaps.groupMs,
        acknowledged: g.stats.reduce((n, s) => n + s.acked.filter((a) => a.at >= w.start && a.at <= w.end).length, 0),
        failedOps: g.failuresIn(w),
    };
}

/** Rolling steps: each restart outside the split, judged by whether it restarted the leader. */
function rollingSteps(phase: string, steps: Map<string, StepTiming>, t1: number, m: ModeMonitor, migrating: StressGroup, sourceUsers: StressGroup): RehearsalResult["rolling"] {
    const out: RehearsalResult["rolling"] = [];
    for (const s of steps.values()) {
        const mm = /-restart-(\d+)$/.exec(s.name);
        // Only restarts: an update of a restart resource (a create only checks health);
        // a server that stops for good (the dormant target at `joined`) is no restart.
        if (!mm || s.op !== "update" || s.failed || s.stops) continue;
        const id = Number(mm[1]);
        const sw = { start: s.start, end: s.end ?? t1 };
        const leaders = new Set([...m.leadersAt(s.start), ...m.leadersAt(sw.end)]);
        out.push({
            phase,
            step: s.name,
            server: id,
            restartsLeader: leaders.has(id),
            maxGapMs: Math.max(migrating.gaps(sw).perSessionMs, sourceUsers.gaps(sw).perSessionMs),
        });
    }
    return out;
}

/** The split: the sources' longest gap, and how long the targets were unavailable after the firewall went up. */
function splitFigures(steps: Map<string, StepTiming>, w: Window, m: ModeMonitor, targetIds: number[], migrating: StressGroup, sourceUsers: StressGroup): RehearsalResult["split"] {
    // The rules go up with each target's split-arm (its dead man's switch armed first); the firewall steps after them find them there.
    const arms = [...steps.values()].filter((s) => /-split-arm-\d+$/.test(s.name) && s.end !== undefined);
    const fw = arms.length > 0 ? arms : [...steps.values()].filter((s) => /-firewall-\d+$/.test(s.name) && s.end !== undefined);
    const up = fw.length > 0 ? Math.max(...fw.map((s) => s.end!)) : undefined;
    return {
        firewallUpAt: up,
        sourceMaxGapMs: sourceUsers.gaps(w).perSessionMs,
        ...(up !== undefined
            ? {
                  // The migrating clients already use the targets: how long after the
                  // firewall went up until they were acknowledged again (0: never stopped).
                  targetUnavailableMs: migrating.gaps({ start: up, end: w.end }).groupMs,
                  targetsServingMs: (m.firstServing(targetIds, up) ?? w.end) - up,
              }
            : {}),
    };
}

/** --join reconfig: the rehearsal's reconfig credentials (one per process; the servers get their digest). */
const RECONFIG_AUTH = `super:${randomBytes(12).toString("hex")}`;

/**
 * The fleet's ensembles for `--join reconfig` (issue 13): every server runs with dynamic reconfig
 * (reconfigEnabled=true, standaloneEnabled=false) and the super digest of RECONFIG_AUTH, which the
 * stack's zkmigrate:reconfigAuth (a secret) sends; ZooKeeper moves the server lines into its own
 * dynamic file at the first start.
 */
export function reconfigFleet(ensembles: FleetEnsembleSpec[]): FleetEnsembleSpec[] {
    const digest = `super:${createHash("sha1").update(RECONFIG_AUTH).digest("base64")}`;
    const settings = { reconfigEnabled: "true", standaloneEnabled: "false", "DigestAuthenticationProvider.superDigest": digest };
    return ensembles.map((e) => ({ ...e, settings: { ...(e.settings ?? {}), ...settings } }));
}
