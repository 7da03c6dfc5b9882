// `npm run rehearse`: a whole mitosis done by `pulumi up` (the real engine, the Automation API)
// on a local fleet of real ZooKeeper hosts, under load, with a loss check at the end.
//
//   node --import tsx rehearsal/rehearse.ts [--scenario mitosis|fault] [--kafka] [--report FILE]
//                                           [--spacing S] [--version V] [--plain]
//
// 1. a local fleet: source 1-3 (serving), target 4-6 (an empty ensemble of its own, serving);
// 2. a copy of the project in a temp dir with a stack on a local file backend (passphrase
//    secrets) whose config describes that fleet, SSH to the namespace hosts;
// 3. one `pulumi up` per phase: separate, joined, clients, prepared, split, source-restarted, done;
// 4. meanwhile two client groups write sequence-numbered znodes, read and keep watches: the
//    "migrating" clients (Kafka's chroot) always on the connect string the phase publishes, the
//    "source-users" (the shared ensemble's other tenants) on the source ensemble;
// 5. a report per phase and a JSON file of the same; the last line printed is a one-line JSON
//    summary. Exit 0 only with 0 lost and every phase applied.
// With --kafka, three Kafka brokers (ZooKeeper mode, hosts of their own) run on the source's chroot
// /kafka and move to the target in `clients` (rewritten zookeeper.connect, rolling restart, the
// controller last); producers (idempotent, acks=all) and a consumer group run through every phase,
// and the report adds messages acknowledged, consumed, lost (must be 0), duplicated, and the
// longest produce gap per phase (rehearsal/kafka-load.ts defines each figure).
// The fault scenario makes target 4's data dir unusable before `joined`: that `pulumi up` must
// stop at server 4 with nothing after it touched while the source serves, and after the repair a
// second `pulumi up` completes the phase.
// The fleet, the stack and the temp dir are always destroyed (also on failure and on SIGINT).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { LocalWorkspace, PulumiCommand, type EngineEvent, type Stack } from "@pulumi/pulumi/automation";
import { MITOSIS_PHASES } from "../src/phases";
import { fourLetterWord, parseMode } from "../src/zk/four-letter";
import { probeKafkaController } from "../src/zk/kafka";
import { REPO, copyProject, engineEnv, findEngine } from "./engine";
import { createFleet, destroyFleet, hostsOf, kafkaBootstrap, runScript, stackHostConfig, type Fleet, type FleetHost } from "./fleet";
import { KafkaLoad, createTopic, type KafkaFigures } from "./kafka-load";
import { StressGroup, type Window } from "./stress";

const ENSEMBLE = "kafka";
const CHROOT = "/kafka";
const STACK = "rehearsal";
const UP_TIMEOUT_MS = 10 * 60_000;
const TOPIC = "zkmigrate-rehearsal";

// ---------------------------------------------------------------------------------------------
// Arguments

interface Options {
    scenario: "mitosis" | "fault";
    report: string;
    spacingSeconds: number;
    version?: string;
    live: boolean;
    fleetName: string;
    kafka: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
    const o: Options = {
        scenario: "mitosis",
        report: path.resolve("rehearsal-report.json"),
        spacingSeconds: 10,
        live: Boolean(process.stderr.isTTY),
        fleetName: `rh-${process.pid}`,
        kafka: false,
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const value = () => {
            const v = argv[++i];
            if (v === undefined) throw new UsageError(`${a} needs a value`);
            return v;
        };
        if (a === "--scenario") {
            const v = value();
            if (v !== "mitosis" && v !== "fault") throw new UsageError(`--scenario ${v}: expected mitosis or fault`);
            o.scenario = v;
        } else if (a === "--report") o.report = path.resolve(value());
        else if (a === "--spacing") {
            const v = Number(value());
            if (!Number.isInteger(v) || v < 0 || v > 300) throw new UsageError(`--spacing: expected whole seconds 0..300`);
            o.spacingSeconds = v;
        } else if (a === "--version") o.version = value();
        else if (a === "--plain") o.live = false;
        else if (a === "--kafka") o.kafka = true;
        else if (a === "--help" || a === "-h") {
            console.log("usage: rehearse [--scenario mitosis|fault] [--kafka] [--report FILE] [--spacing S] [--version V] [--plain]");
            process.exit(0);
        } else throw new UsageError(`unknown argument ${a}`);
    }
    if (o.scenario === "fault") o.fleetName = `rf-${process.pid}`;
    if (o.kafka) o.fleetName = `rk${o.fleetName.slice(1)}`;
    return o;
}

// ---------------------------------------------------------------------------------------------
// Display: a live status line on a terminal, plain lines otherwise.

class Display {
    private status = "";
    private timer?: NodeJS.Timeout;
    constructor(
        private readonly live: boolean,
        private readonly statusFn: () => string,
    ) {}
    start() {
        if (!this.live) return;
        this.timer = setInterval(() => this.draw(), 500);
        this.timer.unref();
    }
    stop() {
        if (this.timer) clearInterval(this.timer);
        this.clear();
    }
    line(s: string) {
        this.clear();
        process.stderr.write(`${s}\n`);
        this.draw();
    }
    private clear() {
        if (this.live && this.status) process.stderr.write("\r\x1b[2K");
        this.status = "";
    }
    private draw() {
        if (!this.live) return;
        this.status = this.statusFn().slice(0, (process.stderr.columns ?? 120) - 1);
        process.stderr.write(`\r\x1b[2K${this.status}`);
    }
}

// ---------------------------------------------------------------------------------------------
// Who leads and who serves, polled with srvr.

interface ModeSample {
    at: number;
    modes: Record<number, string>;
}

class ModeMonitor {
    readonly samples: ModeSample[] = [];
    private stopped = false;
    private loop?: Promise<void>;
    constructor(private readonly hosts: FleetHost[]) {}
    start() {
        this.loop = (async () => {
            while (!this.stopped) {
                const at = Date.now();
                const modes: Record<number, string> = {};
                await Promise.all(
                    this.hosts.map(async (h) => {
                        try {
                            modes[h.id] = parseMode(await fourLetterWord(h.address, 2181, "srvr", 400)) ?? "not serving";
                        } catch {
                            modes[h.id] = "down";
                        }
                    }),
                );
                this.samples.push({ at, modes });
                await new Promise((r) => setTimeout(r, 200));
            }
        })();
    }
    async stop() {
        this.stopped = true;
        await this.loop;
    }
    /** The leader(s) of the last sample at or before t. */
    leadersAt(t: number): number[] {
        let s: ModeSample | undefined;
        for (const x of this.samples) {
            if (x.at > t) break;
            s = x;
        }
        return s ? Object.entries(s.modes).filter(([, m]) => m === "leader").map(([id]) => Number(id)) : [];
    }
    /** The first sample at or after t in which all of `ids` serve (leader or follower). */
    firstServing(ids: number[], t: number): number | undefined {
        return this.samples.find((x) => x.at >= t && ids.every((id) => x.modes[id] === "leader" || x.modes[id] === "follower"))?.at;
    }
    current(): string {
        const s = this.samples[this.samples.length - 1];
        if (!s) return "";
        return Object.entries(s.modes)
            .map(([id, m]) => `${id}:${m === "leader" ? "L" : m === "follower" ? "F" : m === "down" ? "-" : "?"}`)
            .join(" ");
    }
}

// ---------------------------------------------------------------------------------------------
// The engine

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

interface StepTiming {
    name: string;
    op: string;
    /** The step stops its server (zk-service stop), rather than restarting it. */
    stops?: boolean;
    start: number;
    end?: number;
    failed?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The report

interface GroupFigures {
    maxGapMs: number;
    groupGapMs: number;
    acknowledged: number;
    failedOps: number;
}

interface PhaseReport {
    phase: string;
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
}

interface RollingStep {
    phase: string;
    step: string;
    server: number;
    restartsLeader: boolean;
    maxGapMs: number;
}

async function main(): Promise<number> {
    const o = parseArgs(process.argv.slice(2));
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
        throw new UsageError("the rehearsal needs root: it creates network namespaces, a bridge and iptables rules");
    }
    const started = Date.now();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "zkmigrate-rehearse-"));
    let fleet: Fleet | undefined;
    let stack: Stack | undefined;
    const groups: StressGroup[] = [];
    let kafkaLoad: KafkaLoad | undefined;
    let monitor: ModeMonitor | undefined;
    let display: Display | undefined;
    let phaseLabel = "setup";
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
        await kafkaLoad?.stop(0).catch(() => undefined);
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
        if (fleet) await destroyFleet(fleet.name, {}).catch((e) => console.error(`rehearse: destroying fleet ${fleet?.name}: ${(e as Error).message}`));
        fs.rmSync(tmp, { recursive: true, force: true });
    };

    const phases: PhaseReport[] = [];
    const rolling: RollingStep[] = [];
    // Variables the hosts' sshd refused to a command (@pulumi/command: "Unable to set 'X'"): the
    // program must send none (components/remote-command.ts), so any fails the rehearsal.
    const refusedEnv = new Set<string>();
    let verdict: { lost: number; acknowledged: number; lostSample: string[]; sourceUsersLost: number; sourceUsersAcknowledged: number } | undefined;
    let kafkaVerdict: KafkaFigures | undefined;
    /** The Kafka controller just before `clients` (read from /controller), which must restart last. */
    let kafkaController: number | undefined;
    let failure: string | undefined;
    let split: { firewallUpAt?: number; sourceMaxGapMs?: number; targetUnavailableMs?: number; targetsServingMs?: number } = {};

    try {
        // 1. The engine and the fleet.
        const bin = ensureEngine();
        const envVars = engineEnv(bin, path.join(tmp, "state"), `rehearsal-${process.pid}`);
        fs.mkdirSync(path.join(tmp, "state"));
        // The Automation API checks the CLI version before any workspace exists: this process's env too.
        for (const [k, v] of Object.entries(envVars)) process.env[k] = v;
        const pulumiCommand = await PulumiCommand.get({ root: path.dirname(bin) });
        console.error(`rehearse: scenario ${o.scenario}; Pulumi ${pulumiCommand.version?.toString() ?? "?"} from ${bin}`);

        console.error(`rehearse: creating fleet ${o.fleetName} (source 1-3, target 4-6 empty; both serving${o.kafka ? `; Kafka brokers 1-3 on the source's ${CHROOT}` : ""})`);
        fleet = await createFleet(
            {
                name: o.fleetName,
                ensembles: [
                    { name: "source", servers: 3, firstId: 1 },
                    { name: "target", servers: 3, firstId: 4 },
                ],
                ...(o.version ? { version: o.version } : {}),
                ...(o.kafka ? { kafka: { brokers: 3, firstId: 1, zookeeper: "source", chroot: CHROOT } } : {}),
            },
            { log: (l) => console.error(`fleet: ${l}`) },
        );
        const f = fleet;
        const sources = hostsOf(f, "source");
        const targets = hostsOf(f, "target");
        const sourceConnect = sources.map((h) => `${h.address}:2181`).join(",");

        // 2. The stack: a copy of the project, config describing the fleet.
        const project = path.join(tmp, "project");
        copyProject(project);
        const ensemble = {
            name: ENSEMBLE,
            procedure: "mitosis",
            phase: "separate",
            source: sources.map((h) => ({ id: h.id, host: h.address })),
            target: targets.map((h) => ({ id: h.id, host: h.address })),
            targetEmpty: true,
            activeTargets: [targets[0].id, targets[1].id],
            clients: {
                chroot: CHROOT,
                ...(o.kafka && f.kafkaSettings
                    ? {
                          kafka: {
                              brokers: hostsOf(f, "kafka").map((h) => ({ id: h.id, host: h.address })),
                              serverProperties: f.kafkaSettings.serverProperties,
                              binDir: f.kafkaSettings.binDir,
                              port: f.kafkaSettings.port,
                              service: f.kafkaSettings.service,
                              healthTimeoutSeconds: f.kafkaSettings.healthTimeoutSeconds,
                              spacingSeconds: f.kafkaSettings.spacingSeconds,
                          },
                      }
                    : {}),
            },
        };
        const stackConfig = {
            config: {
                "zkmigrate:sshUser": "root",
                "zkmigrate:defaults": { ...stackHostConfig(f), spacingSeconds: o.spacingSeconds },
                "zkmigrate:ensembles": [ensemble],
            },
        };
        fs.writeFileSync(path.join(project, `Pulumi.${STACK}.yaml`), JSON.stringify(stackConfig, null, 2));
        stack = await LocalWorkspace.createStack({ stackName: STACK, workDir: project }, { pulumiCommand, envVars });
        await stack.setConfig("zkmigrate:sshPrivateKey", { value: fs.readFileSync(f.sshKey, "utf8"), secret: true });

        // 3. Load: Kafka's chroot on the source, two client groups, the mode monitor.
        const setup = await StressGroup.start({ name: "setup", connect: sourceConnect, base: `${CHROOT}/.setup`, sessions: 1, pauseMs: 1000 });
        await setup.stop();
        const migrating = await StressGroup.start({ name: "migrating", connect: `${sourceConnect}${CHROOT}`, base: "/stress", sessions: 3 });
        groups.push(migrating);
        const sourceUsers = await StressGroup.start({ name: "source-users", connect: sourceConnect, base: "/other-tenant/stress", sessions: 2 });
        groups.push(sourceUsers);
        if (o.kafka) {
            const bootstrap = kafkaBootstrap(f);
            console.error(`rehearse: Kafka: topic ${TOPIC} (3 partitions, replication factor 3, min.insync.replicas 2), producers and consumers on ${bootstrap.join(",")}`);
            await createTopic(bootstrap, TOPIC);
            kafkaLoad = await KafkaLoad.start({ bootstrap, topic: TOPIC });
        }
        const kl = kafkaLoad;
        monitor = new ModeMonitor([...sources, ...targets]);
        monitor.start();
        const m = monitor;
        const phaseStart = { t: Date.now() };
        display = new Display(o.live, () => {
            const w = { start: phaseStart.t, end: Date.now() };
            const g1 = migrating.gaps(w);
            const g2 = sourceUsers.gaps(w);
            const k = kl ? ` · kafka acks ${kl.acknowledged}, consumed ${kl.consumed}, longest produce gap ${kl.gaps(w).perProducerMs} ms` : "";
            return `[${phaseLabel} ${((Date.now() - phaseStart.t) / 1000).toFixed(0)} s] acks ${migrating.acknowledged}+${sourceUsers.acknowledged} · longest gap migrating ${g1.perSessionMs} ms, source-users ${g2.perSessionMs} ms${k} · ${m.current()}`;
        });
        display.start();

        // 4. The phases.
        const runPhase = async (phase: string, attempt: number, before?: () => Promise<void>): Promise<PhaseReport> => {
            phaseLabel = phase;
            await stack!.setConfig("zkmigrate:ensembles[0].phase", { value: phase }, true);
            if (before) await before();
            const steps = new Map<string, StepTiming>();
            const onEvent = (e: EngineEvent) => {
                const now = Date.now();
                const pre = e.resourcePreEvent?.metadata;
                if (pre && pre.type.startsWith("command:")) {
                    const name = pre.urn.split("::").pop()!;
                    const script = String((pre.new?.inputs as Record<string, unknown> | undefined)?.[pre.op === "update" ? "update" : "create"] ?? "");
                    steps.set(name, { name, op: pre.op, start: now, stops: /^# zkmigrate: stop/m.test(script) });
                    if (pre.op !== "same") say(`  ${phase}: ${pre.op} ${name} ...`);
                }
                const out = e.resOutputsEvent?.metadata;
                if (out && out.type.startsWith("command:")) {
                    const s = steps.get(out.urn.split("::").pop()!);
                    if (s) {
                        s.end = now;
                        if (s.op !== "same") say(`  ${phase}: ${s.op} ${s.name} done in ${now - s.start} ms`);
                    }
                }
                const failed = e.resOpFailedEvent?.metadata;
                if (failed && failed.type.startsWith("command:")) {
                    const s = steps.get(failed.urn.split("::").pop()!);
                    if (s) {
                        s.end = now;
                        s.failed = true;
                        say(`  ${phase}: ${s.op} ${s.name} FAILED after ${now - s.start} ms`);
                    }
                }
                const diag = e.diagnosticEvent;
                const refused = diag && /Unable to set '([^']+)'/.exec(diag.message);
                if (refused) refusedEnv.add(refused[1]);
                if (diag && (diag.severity === "warning" || diag.severity === "error") && !diag.ephemeral) {
                    // The command provider quotes the whole script in its error: keep the status and
                    // what the script said.
                    const lines = diag.message.trim().split("\n");
                    lines[0] = lines[0].replace(/: running ".*$/, "").slice(0, 200);
                    say(`  ${phase}: ${diag.severity}: ${lines.slice(0, 12).join("\n    ")}`);
                }
            };
            say(`rehearse: phase ${phase}${attempt > 1 ? ` (attempt ${attempt})` : ""}: pulumi up`);
            phaseStart.t = Date.now();
            const t0 = phaseStart.t;
            let result: "succeeded" | "failed" = "succeeded";
            let error: string | undefined;
            let connect = migrating.currentConnect;
            try {
                const up = await withTimeout(stack!.up({ onEvent }), UP_TIMEOUT_MS, `pulumi up (${phase})`);
                const ens = (up.outputs.ensembles?.value ?? {}) as Record<string, { connect?: string }>;
                connect = ens[ENSEMBLE]?.connect ?? connect;
            } catch (e) {
                result = "failed";
                error = (e as Error).message.replace(/: running "(?:[^"\\]|\\.)*"/g, "");
            }
            const t1 = Date.now();
            // Kafka moves to the connect string the phase publishes.
            if (result === "succeeded" && connect !== migrating.currentConnect) {
                say(`  ${phase}: clients move to ${connect}`);
                migrating.setConnect(connect);
            }
            const w: Window = { start: t0, end: t1 };
            const figures = (g: StressGroup): GroupFigures => {
                const gaps = g.gaps(w);
                return {
                    maxGapMs: gaps.perSessionMs,
                    groupGapMs: gaps.groupMs,
                    acknowledged: g.stats.reduce((n, s) => n + s.acked.filter((a) => a.at >= t0 && a.at <= t1).length, 0),
                    failedOps: g.failuresIn(w),
                };
            };
            const report: PhaseReport = {
                phase,
                attempt,
                result,
                startedAt: new Date(t0).toISOString(),
                wallMs: t1 - t0,
                clients: { migrating: figures(migrating), "source-users": figures(sourceUsers) },
                ...(kl ? { kafka: { acknowledged: kl.acknowledgedIn(w), failedSends: kl.failuresIn(w), maxProduceGapMs: kl.gaps(w).perProducerMs } } : {}),
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
            };
            phases.push(report);
            const c = report.clients;
            say(
                `rehearse: phase ${phase} ${result} in ${(report.wallMs / 1000).toFixed(1)} s; longest write gap migrating ${c.migrating.maxGapMs} ms, source-users ${c["source-users"].maxGapMs} ms; failed ops ${c.migrating.failedOps}+${c["source-users"].failedOps}` +
                    (report.kafka ? `; kafka: ${report.kafka.acknowledged} acknowledged, longest produce gap ${report.kafka.maxProduceGapMs} ms, failed sends ${report.kafka.failedSends}` : ""),
            );
            // Rolling steps: each restart outside the split, judged by whether it restarted the leader.
            if (phase !== "split") {
                for (const s of steps.values()) {
                    const mm = /-restart-(\d+)$/.exec(s.name);
                    // Only restarts: an update of a restart resource (a create only checks health);
                    // a server that stops for good (the dormant target at `joined`) is no restart.
                    if (!mm || s.op !== "update" || s.failed || s.stops) continue;
                    const id = Number(mm[1]);
                    const sw = { start: s.start, end: s.end ?? t1 };
                    const leaders = new Set([...m.leadersAt(s.start), ...m.leadersAt(sw.end)]);
                    rolling.push({
                        phase,
                        step: s.name,
                        server: id,
                        restartsLeader: leaders.has(id),
                        maxGapMs: Math.max(migrating.gaps(sw).perSessionMs, sourceUsers.gaps(sw).perSessionMs),
                    });
                }
            } else if (result === "succeeded") {
                const fw = [...steps.values()].filter((s) => /-firewall-\d+$/.test(s.name) && s.end !== undefined);
                const up = fw.length > 0 ? Math.max(...fw.map((s) => s.end!)) : undefined;
                split = {
                    firewallUpAt: up,
                    sourceMaxGapMs: sourceUsers.gaps(w).perSessionMs,
                    ...(up !== undefined
                        ? {
                              // The migrating clients already use the targets: how long after the
                              // firewall went up until they were acknowledged again (0: never stopped).
                              targetUnavailableMs: migrating.gaps({ start: up, end: t1 }).groupMs,
                              targetsServingMs: (m.firstServing(targets.map((h) => h.id), up) ?? t1) - up,
                          }
                        : {}),
                };
            }
            if (interrupted) throw new Error("interrupted");
            return report;
        };

        for (const phase of MITOSIS_PHASES) {
            if (o.scenario === "fault" && phase === "joined") {
                const victim = targets[0];
                const dataDir = f.hostSettings.paths.dataDir;
                const breakIt = async () => {
                    // An empty read-only file system over the data dir's version-2: the config step
                    // (myid, zoo.cfg) still works, but the data cannot be moved aside for the
                    // first join and ZooKeeper cannot write its snapshot there.
                    const r = await runScript(f, victim, `mkdir -p '${dataDir}/version-2' && mount -t tmpfs -o ro,size=1m zkm-fault '${dataDir}/version-2'`);
                    if (r.code !== 0) throw new Error(`fault: cannot make ${victim.name}'s data dir unusable: ${r.stderr}`);
                    say(`rehearse: fault: ${victim.name}'s ${dataDir}/version-2 is now a read-only empty file system`);
                };
                const first = await runPhase(phase, 1, breakIt);
                const checks: string[] = [];
                if (first.result !== "failed") checks.push("the first pulumi up of joined succeeded although target 4 cannot start");
                const failedStep = first.steps.find((s) => s.failed);
                if (!failedStep || !failedStep.name.endsWith(`-${victim.id}`)) checks.push(`expected the failure at server ${victim.id}, got ${failedStep?.name ?? "none"}`);
                const restartsAfter = first.steps.filter((x) => /-restart-\d+$/.test(x.name) && failedStep && x.startMs > failedStep.startMs).map((x) => x.name);
                if (restartsAfter.length > 0) checks.push(`servers restarted after the failed one: ${restartsAfter.join(", ")}`);
                const srcModes = await Promise.all(sources.map(async (h) => parseMode(await fourLetterWord(h.address, 2181, "srvr", 2000).catch(() => "")) ?? "down"));
                if (!srcModes.every((x) => x === "leader" || x === "follower")) checks.push(`the source stopped serving: ${srcModes.join(", ")}`);
                if (checks.length > 0) throw new Error(`fault scenario: ${checks.join("; ")}`);
                say(`rehearse: fault: pulumi up stopped at ${failedStep!.name}; nothing after it touched; the source serves (${srcModes.join(", ")})`);
                const repair = async () => {
                    const r = await runScript(f, victim, `umount '${dataDir}/version-2'`);
                    if (r.code !== 0) throw new Error(`fault: repair failed: ${r.stderr}`);
                    say(`rehearse: fault: repaired ${victim.name}'s data dir`);
                };
                const second = await runPhase(phase, 2, repair);
                if (second.result !== "succeeded") throw new Error(`phase joined after the repair: ${second.error}`);
                continue;
            }
            if (phase === "clients" && kafkaLoad) {
                const c = await probeKafkaController(`${sourceConnect}${CHROOT}`, 5000);
                kafkaController = c.controller;
                say(`rehearse: Kafka controller before clients: ${c.controller ?? "unknown"} (${c.detail})`);
            }
            const r = await runPhase(phase, 1);
            if (r.result !== "succeeded") throw new Error(`phase ${phase} failed: ${r.error}`);
        }

        // 5. The loss check.
        phaseLabel = "loss check";
        await Promise.all(groups.map((g) => g.stop()));
        const finalConnect = migrating.currentConnect;
        const mv = await migrating.verify(finalConnect);
        const sv = await sourceUsers.verify(sourceConnect);
        verdict = {
            lost: mv.lost.length,
            acknowledged: mv.acknowledged,
            lostSample: mv.lost.slice(0, 10),
            sourceUsersLost: sv.lost.length,
            sourceUsersAcknowledged: sv.acknowledged,
        };
        say(`rehearse: loss check on ${finalConnect}: ${mv.acknowledged} acknowledged, ${mv.present} present, ${mv.lost.length} lost; source-users on ${sourceConnect}: ${sv.acknowledged} acknowledged, ${sv.lost.length} lost`);
        if (kafkaLoad) {
            kafkaVerdict = await kafkaLoad.verify();
            const k = kafkaVerdict;
            say(`rehearse: Kafka loss check (topic ${TOPIC} read from the beginning): ${k.acknowledged} acknowledged, ${k.inLog} in the log, ${k.lost} lost, ${k.duplicated} duplicated; consumers received ${k.consumed} (${k.redelivered} redelivered, ${k.notConsumedLive} not received live)`);
        }
    } catch (e) {
        failure = (e as Error).message;
        say(`rehearse: FAILED: ${failure}`);
    } finally {
        display?.stop();
        display = undefined;
        console.error("rehearse: destroying the stack and the fleet");
        await cleanup();
    }

    // 6. The report.
    const nonLeader = rolling.filter((r) => !r.restartsLeader);
    const summary = {
        scenario: o.scenario,
        ok: false,
        lost: verdict ? verdict.lost + verdict.sourceUsersLost : null,
        acknowledged: verdict ? verdict.acknowledged + verdict.sourceUsersAcknowledged : null,
        splitSourceMaxGapMs: split.sourceMaxGapMs ?? null,
        splitTargetUnavailableMs: split.targetUnavailableMs ?? null,
        splitTargetsServingMs: split.targetsServingMs ?? null,
        maxRollingGapMs: nonLeader.length > 0 ? Math.max(...nonLeader.map((r) => r.maxGapMs)) : null,
        maxLeaderRestartGapMs: rolling.some((r) => r.restartsLeader) ? Math.max(...rolling.filter((r) => r.restartsLeader).map((r) => r.maxGapMs)) : null,
        failedOps: phases.reduce((n, p) => n + p.clients.migrating.failedOps + p.clients["source-users"].failedOps, 0),
        ...(o.kafka
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
                            controller: kafkaController ?? null,
                            // The brokers restarted in `clients`, in the order they started.
                            restartOrder: (phases.find((p) => p.phase === "clients")?.steps ?? [])
                                .filter((x) => x.op === "update" && /-broker-\d+$/.test(x.name))
                                .sort((a, b) => a.startMs - b.startMs)
                                .map((x) => Number(/-broker-(\d+)$/.exec(x.name)![1])),
                        }
                      : null,
              }
            : {}),
        wallMs: Date.now() - started,
        phases: Object.fromEntries(
            phases.map((p) => [
                p.attempt > 1 ? `${p.phase}#${p.attempt}` : p.phase,
                {
                    result: p.result,
                    wallMs: p.wallMs,
                    maxGapMs: Math.max(p.clients.migrating.maxGapMs, p.clients["source-users"].maxGapMs),
                    failedOps: p.clients.migrating.failedOps + p.clients["source-users"].failedOps,
                    ...(p.kafka ? { kafkaMaxProduceGapMs: p.kafka.maxProduceGapMs } : {}),
                },
            ]),
        ),
        refusedEnv: [...refusedEnv],
        ...(failure ? { failure: failure.split("\n")[0] } : {}),
    };
    summary.ok = !failure && refusedEnv.size === 0 && summary.lost === 0 && phases.length > 0 && (!o.kafka || (kafkaVerdict !== undefined && kafkaVerdict.lost === 0));
    const full = { summary, phases, rolling, split, verdict: verdict ?? null, kafka: kafkaVerdict ?? null, kafkaCrashes: kafkaLoad?.crashes ?? [],
        kafkaConsumerStalls: kafkaLoad?.stalls ?? [],
        kafkaSendFailures: kafkaLoad?.producers.flatMap((p) => p.failures.map((f) => ({ producer: p.name, ...f }))).slice(0, 50) ?? [], kafkaClientErrors: kafkaLoad?.consumerErrors.slice(0, 50) ?? [], fleet: o.fleetName, at: new Date(started).toISOString() };
    fs.writeFileSync(o.report, `${JSON.stringify(full, null, 2)}\n`);

    const lines = [
        "",
        `zkmigrate rehearsal (${o.scenario}${o.kafka ? ", with Kafka" : ""}): ${summary.ok ? "PASSED" : "FAILED"}${failure ? ` — ${failure.split("\n")[0]}` : ""}`,
        "",
        `${"phase".padEnd(20)}${"result".padEnd(11)}${"wall s".padStart(8)}${"migrating gap ms".padStart(18)}${"source-users gap ms".padStart(21)}${"failed ops".padStart(12)}${o.kafka ? `${"kafka acks".padStart(12)}${"produce gap ms".padStart(16)}` : ""}`,
        ...phases.map((p) =>
            [
                (p.attempt > 1 ? `${p.phase} (#${p.attempt})` : p.phase).padEnd(20),
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
        ...rolling.map((r) => `  ${r.phase.padEnd(17)} ${r.step.padEnd(22)} ${r.restartsLeader ? "leader    " : "not leader"} ${String(r.maxGapMs).padStart(6)} ms`),
        "",
        `split: sources' longest write gap ${split.sourceMaxGapMs ?? "-"} ms; targets unavailable ${split.targetUnavailableMs ?? "-"} ms after the firewall went up (all serving by srvr after ${split.targetsServingMs ?? "-"} ms)`,
        verdict
            ? `loss check: ${verdict.acknowledged} acknowledged writes of the migrating clients, ${verdict.lost} lost; ${verdict.sourceUsersAcknowledged} of the source's other users, ${verdict.sourceUsersLost} lost${verdict.lostSample.length ? ` (e.g. ${verdict.lostSample.join(", ")})` : ""}`
            : "loss check: not reached",
        `environment refused by the hosts' sshd: ${refusedEnv.size ? [...refusedEnv].join(", ") : "none"}`,
        ...(o.kafka
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
        `report: ${o.report}`,
    ];
    console.log(lines.join("\n"));
    console.log(JSON.stringify(summary));
    return summary.ok ? 0 : 1;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout;
    return Promise.race([
        p.finally(() => clearTimeout(timer)),
        new Promise<T>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
        }),
    ]);
}

main().then(
    (code) => process.exit(code),
    (e) => {
        console.error(`rehearse: ${e instanceof UsageError ? "" : "error: "}${(e as Error).message}`);
        process.exit(e instanceof UsageError ? 2 : 1);
    },
);
