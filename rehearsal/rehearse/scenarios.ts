// What the rehearsal can rehearse, as tables: a procedure row (the fleet it needs, the stack's
// ensemble entry, its phases in order) and a scenario row (what happens around the phases). The
// runner (runner.ts) walks the procedure's phases and asks the scenario how to run each one; by
// default a phase is one `pulumi up` that must succeed.
//
// A new scenario is a row in SCENARIOS and, where it does something of its own, a function for
// the phases it changes (as `fault` below). A new procedure is a row in PROCEDURES (kubernetes:
// a local cluster beside the fleet, and its own `pods` phase, rehearse/kubernetes.ts); a variant of the ensemble (e.g. targets joining as observers) a scenario whose
// `ensemble` adjusts the entry; a comparison of two runs composes the runner twice (rehearse.ts).
import { existsSync, readFileSync } from "node:fs";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { join } from "node:path";
import { clientCommands, readAcks } from "../block-copy-client";
import { REPO } from "../engine";
import { BLOCK_COPY_PHASES } from "../../src/procedures/block-copy";
import { KUBERNETES_PHASES } from "../../src/procedures/kubernetes";
import { MITOSIS_PHASES } from "../../src/procedures/mitosis";
import { fourLetterWord, parseMode } from "../../src/zk/four-letter";
import { call, connectClient } from "../../src/zk/session";
import { checkPrerequisites, connectString, hostsOf, runScript, type LocalFleet, type FleetEnsembleSpec, type FleetHost } from "../fleet";
import { ensureSshd, isOurSshd, waitSshd } from "../fleet/sshd";
import type { Cluster } from "../kubernetes/cluster";
import { minDeadmanSeconds } from "../../src/procedures/gates";
import { firewallChainName } from "../../src/scripts";
import { planTree, TREE_ADMIN, writeOps } from "../tree";
import { kubernetesAfterPhase, kubernetesEntry, podsPhase, podsPhaseWithFault } from "./kubernetes";
import type { ModeMonitor } from "./monitor";
import type { PhaseReport, RehearsalResult } from "./report";

/** What a scenario's phase function works with: the fleet, and one `pulumi up` of a phase. */
export interface Rehearsal {
    fleet: LocalFleet;
    sources: FleetHost[];
    targets: FleetHost[];
    say(line: string): void;
    /**
     * Sets the phase, runs `before`, then one `pulumi up`; the report of that attempt. `step` names
     * one of several updates of the phase (the kubernetes pods phase: one per cutover); `watch`
     * gets the engine's events too.
     */
    runPhase(phase: string, attempt: number, before?: () => Promise<void>, step?: string, watch?: (e: EngineEvent) => void): Promise<PhaseReport>;
    /** Sets a key of the stack's config (a path such as `zkmigrate:ensembles[0].cutover[0]`). */
    setConfig(key: string, value: string): Promise<void>;
    /** Who leads and serves (srvr every 200 ms). */
    monitor: ModeMonitor;
    /** The local Kubernetes, for a procedure that needs one. */
    cluster?: Cluster;
    /** What the run found so far (the phases' reports); a scenario adds its own figures. */
    result: RehearsalResult;
    /** The stack's project directory (where local commands run). */
    project: string;
}

/** How one phase runs in a scenario; throws to end the rehearsal as failed. */
export type PhaseRun = (r: Rehearsal, phase: string) => Promise<void>;

export interface Procedure {
    /** The phases in order, one `pulumi up` each. */
    phases: readonly string[];
    /** The fleet's ensembles (names "source" and "target": the stress clients use them). */
    ensembles: FleetEnsembleSpec[];
    /** The stack config's entry for the ensemble under migration (the chroot and clients added by the runner, unless it has `clients`). */
    ensemble(f: LocalFleet, cluster?: Cluster): Record<string, unknown>;
    /** Whether the in-process migrating clients write under the chroot and follow the published connect string (default true); false: they write beside it on the source. */
    migratingFollowsConnect?: boolean;
    /** Whether the "source-users" (the ensemble's other users, outside the chroot) follow the published connect string too (default false: they stay on the source). */
    everyoneFollowsConnect?: boolean;
    /** A local Kubernetes beside the fleet (started after it, destroyed before it, also on failure). */
    cluster?: boolean;
    /** Phases that run otherwise than one `pulumi up` in every scenario of the procedure (a scenario's own `phases` win). */
    phaseRuns?: Partial<Record<string, PhaseRun>>;
    /** Runs after each phase run that succeeded. */
    afterPhase?(r: Rehearsal, phase: string): Promise<void>;
}

export interface Scenario {
    /** One line for --help and the report. */
    about: string;
    /** The fleet's name is `<prefix>-<pid>` (with --kafka `rk<prefix without its r>-<pid>`). */
    fleetPrefix: string;
    procedure: keyof typeof PROCEDURES;
    /** Phases that run otherwise than one `pulumi up` that must succeed. */
    phases?: Partial<Record<string, PhaseRun>>;
    /** The join a mitosis scenario was built on (its faults hit that join's steps), when `--join` names none; unset: the config's default. */
    join?: "voter";
    /** Adjusts the stack's ensemble entry (a variant of the procedure). */
    ensemble?(entry: Record<string, unknown>, f: LocalFleet): Record<string, unknown>;
    /** Runs after the last phase, before the loss check; throws to fail the rehearsal. */
    after?(r: Rehearsal): Promise<void>;
}

export const PROCEDURES = {
    mitosis: {
        phases: MITOSIS_PHASES,
        // source 1-3 (serving), target 4-6 (an empty ensemble of its own, serving).
        ensembles: [
            { name: "source", servers: 3, firstId: 1 },
            { name: "target", servers: 3, firstId: 4 },
        ],
        ensemble(f: LocalFleet): Record<string, unknown> {
            const sources = hostsOf(f, "source");
            const targets = hostsOf(f, "target");
            return {
                procedure: "mitosis",
                phase: "separate",
                source: sources.map((h) => ({ id: h.id, host: h.address })),
                target: targets.map((h) => ({ id: h.id, host: h.address })),
                targetEmpty: true,
                // No joinAs: the config's default join (observers); withJoin pins another.
            };
        },
    },
    "block-copy": {
        phases: BLOCK_COPY_PHASES,
        // A non-empty target ensemble of its own (that is why this is block & copy, not mitosis).
        ensembles: [
            { name: "source", servers: 3, firstId: 1 },
            { name: "target", servers: 1, firstId: 4 },
        ],
        ensemble(f: LocalFleet): Record<string, unknown> {
            const c = standIn(f);
            return {
                procedure: "block-copy",
                phase: "precopy",
                source: hostsOf(f, "source").map((h) => ({ id: h.id, host: h.address })),
                target: hostsOf(f, "target").map((h) => ({ id: h.id, host: h.address })),
                allowSingleServer: true,
                path: "/kafka",
                copy: {
                    // The stack's project is a copy without cli/: the copy runs this repository's CLI.
                    command: `node --import tsx ${REPO}/cli/zkmigrate.ts`,
                    sourceAuthEnv: AUTH_ENV,
                    targetAuthEnv: AUTH_ENV,
                },
                // No unblock: `pulumi destroy` at the end must not start the client again.
                clients: { hosts: [{ host: c.host.address }], block: c.commands.stop, switch: c.commands.start },
            };
        },
        migratingFollowsConnect: false,
    },
    kubernetes: {
        phases: KUBERNETES_PHASES,
        // Three ZooKeeper hosts, moved into pods of a local Kubernetes one server per update.
        ensembles: [{ name: "source", servers: 3, firstId: 1 }],
        ensemble: (f: LocalFleet, cluster?: Cluster) => kubernetesEntry(hostsOf(f, "source"), cluster!),
        // Every client of the ensemble moves to the Service names (the chroot's and the others).
        everyoneFollowsConnect: true,
        cluster: true,
        phaseRuns: { pods: podsPhase },
        afterPhase: kubernetesAfterPhase,
    },
} satisfies Record<string, Procedure>;

/**
 * The stack's ensemble entry for a join (`--join`, issue 13): `joinAs` (observers join every target:
 * no activeTargets), or `membershipChange: reconfig`, which this zkmigrate's config must know (the
 * reconfig room), else the rehearsal refuses before it builds anything.
 */
export function withJoin(entry: Record<string, unknown>, join: "voter" | "observer" | "reconfig" | undefined, knows: (key: string) => boolean): Record<string, unknown> {
    if (join === undefined) return entry;
    if (join === "voter") {
        // The seed's join: two of the three targets join as voters (S stays a majority, 3 of 5), the third stays dormant.
        const targets = (entry.target as { id: number }[] | undefined) ?? [];
        return { ...entry, joinAs: "voter", activeTargets: targets.slice(0, 2).map((t) => t.id) };
    }
    if (join === "observer") {
        const { activeTargets: _, ...rest } = entry;
        return { ...rest, joinAs: "observer" };
    }
    if (!knows("membershipChange")) {
        throw new Error("--join reconfig: this zkmigrate has no `membershipChange: reconfig` for mitosis yet (the reconfig join of issue 13 is not merged); run --join voter or --join observer");
    }
    return { ...entry, membershipChange: "reconfig" };
}

export const SCENARIOS = {
    mitosis: { about: "a whole mitosis under load", fleetPrefix: "rh", procedure: "mitosis" },
    fault: {
        about: "a target that cannot start in `joined`: pulumi up stops there; after the repair a second one completes the phase",
        fleetPrefix: "rf",
        procedure: "mitosis",
        join: "voter",
        phases: { joined: faultAtJoined },
    },
    abort: {
        about: "the abort of a join under load: separate, joined, then back to separate (the targets leave together and start empty, the sources return to S leader first); 0 lost",
        fleetPrefix: "ra",
        procedure: "mitosis",
        join: "voter",
        phases: { clients: abortJoin, prepared: skip, split: skip, "source-restarted": skip, done: skip },
        after: abortCheck,
    },
    "host-lost": {
        about: "a target's sshd lost at the split: before it (the gates stop pulumi up before any change) and after the first target's split went up (the dead man's switches decide); both ensembles keep serving; after the repair a third pulumi up completes the split",
        fleetPrefix: "rl",
        procedure: "mitosis",
        join: "voter",
        phases: { split: hostLostAtSplit },
        // The shortest bound the config accepts for the fleet's health timeout: the switches fire soonest.
        ensemble: (entry, f) => ({ ...entry, splitDeadmanSeconds: hostLostBound(f) }),
    },
    "block-copy": {
        about: "a whole block & copy under load: a stand-in client on a fleet host writes sequence numbers, blocked by `blocked`, switched to the target by `switched`",
        fleetPrefix: "rb",
        procedure: "block-copy",
        phases: { precopy: blockCopyPrecopy },
        after: blockCopyCheck,
    },
    kubernetes: {
        about: "hosts to Kubernetes under load: a local cluster, every phase by pulumi up, one cutover per update (followers first, the leader last)",
        fleetPrefix: "rn",
        procedure: "kubernetes",
    },
    "pod-fault": {
        about: "the first cutover's pod cannot mount its volume: pulumi up stops at the StatefulSet with the host stopped but restorable and 2 of 3 serving; after the repair a second one completes the cutover",
        fleetPrefix: "rp",
        procedure: "kubernetes",
        phases: { pods: podsPhaseWithFault },
    },
} satisfies Record<string, Scenario>;

export type ScenarioName = keyof typeof SCENARIOS;

export function isScenario(name: string): name is ScenarioName {
    return Object.prototype.hasOwnProperty.call(SCENARIOS, name);
}

/**
 * The fault scenario's `joined`: target 4's data dir made unusable before the phase; that
 * `pulumi up` must stop at server 4 with nothing after it touched while the source serves, and
 * after the repair a second `pulumi up` completes the phase.
 */
async function faultAtJoined(r: Rehearsal, phase: string): Promise<void> {
    const f = r.fleet;
    const say = r.say;
    const victim = r.targets[0];
    const dataDir = f.hostSettings.paths.dataDir;
    const breakIt = async () => {
        // An empty read-only file system over the data dir's version-2: the config step
        // (myid, zoo.cfg) still works, but the data cannot be moved aside for the
        // first join and ZooKeeper cannot write its snapshot there.
        const res = await runScript(f, victim, `mkdir -p '${dataDir}/version-2' && mount -t tmpfs -o ro,size=1m zkm-fault '${dataDir}/version-2'`);
        if (res.code !== 0) throw new Error(`fault: cannot make ${victim.name}'s data dir unusable: ${res.stderr}`);
        say(`rehearse: fault: ${victim.name}'s ${dataDir}/version-2 is now a read-only empty file system`);
    };
    const first = await r.runPhase(phase, 1, breakIt);
    const checks: string[] = [];
    if (first.result !== "failed") checks.push("the first pulumi up of joined succeeded although target 4 cannot start");
    const failedStep = first.steps.find((s) => s.failed);
    if (!failedStep || !failedStep.name.endsWith(`-${victim.id}`)) checks.push(`expected the failure at server ${victim.id}, got ${failedStep?.name ?? "none"}`);
    const restartsAfter = first.steps.filter((x) => /-restart-\d+$/.test(x.name) && failedStep && x.startMs > failedStep.startMs).map((x) => x.name);
    if (restartsAfter.length > 0) checks.push(`servers restarted after the failed one: ${restartsAfter.join(", ")}`);
    const srcModes = await Promise.all(r.sources.map(async (h) => parseMode(await fourLetterWord(h.address, 2181, "srvr", 2000).catch(() => "")) ?? "down"));
    if (!srcModes.every((x) => x === "leader" || x === "follower")) checks.push(`the source stopped serving: ${srcModes.join(", ")}`);
    if (checks.length > 0) throw new Error(`fault scenario: ${checks.join("; ")}`);
    say(`rehearse: fault: pulumi up stopped at ${failedStep!.name}; nothing after it touched; the source serves (${srcModes.join(", ")})`);
    const repair = async () => {
        const res = await runScript(f, victim, `umount '${dataDir}/version-2'`);
        if (res.code !== 0) throw new Error(`fault: repair failed: ${res.stderr}`);
        say(`rehearse: fault: repaired ${victim.name}'s data dir`);
    };
    const second = await r.runPhase(phase, 2, repair);
    if (second.result !== "succeeded") throw new Error(`phase joined after the repair: ${second.error}`);
}

/** A phase the scenario does not reach. */
async function skip(): Promise<void> {}

/** In place of `clients`: the step back from `joined` to `separate`, which must succeed. */
async function abortJoin(r: Rehearsal): Promise<void> {
    r.say("rehearse: abort: stepping back from joined to separate");
    const report = await r.runPhase("separate", 2);
    if (report.result !== "succeeded") throw new Error(`the abort (joined -> separate) failed: ${report.error}`);
}

/** After the abort: the sources serve on their own again, every target is empty and serves its own ensemble. */
async function abortCheck(r: Rehearsal): Promise<void> {
    const problems: string[] = [];
    for (const h of r.sources) {
        const conf = await fourLetterWord(h.address, 2181, "conf", 3000).catch((e: Error) => `(${e.message})`);
        const members = [...conf.matchAll(/^server\.(\d+)=/gm)].map((m) => Number(m[1]));
        const expected = r.sources.map((x) => x.id);
        if (members.length > 0 && members.sort((a, b) => a - b).join(",") !== expected.join(",")) problems.push(`source ${h.id} runs with ${members.join(",")}, expected ${expected.join(",")}`);
    }
    for (const h of r.targets) {
        const srvr = await fourLetterWord(h.address, 2181, "srvr", 3000).catch(() => "");
        const mode = parseMode(srvr);
        const nodes = Number(/Node count: (\d+)/.exec(srvr)?.[1] ?? NaN);
        if (mode !== "leader" && mode !== "follower") problems.push(`target ${h.id} does not serve (${mode ?? "no answer"})`);
        else if (!(nodes <= 5)) problems.push(`target ${h.id} holds ${nodes} znodes: not emptied`);
    }
    if (problems.length > 0) throw new Error(`abort: ${problems.join("; ")}`);
    r.say("rehearse: abort: the sources run S again; every target serves an empty ensemble of its own");
}

/** Whether each server answers srvr with a Mode ("leader", "follower", or "down"). */
async function modes(hosts: FleetHost[]): Promise<string[]> {
    return Promise.all(hosts.map(async (h) => parseMode(await fourLetterWord(h.address, 2181, "srvr", 2000).catch(() => "")) ?? "down"));
}

/**
 * The host-lost scenario's split. Target 5 (active) loses its sshd:
 *   1. before the split's `pulumi up`: the gates stop it before any change (no arm, firewall or
 *      restart runs); the joint ensemble still serves the migrating clients, the source its own;
 *   2. repaired, then lost again as soon as the first target's split-arm step is done: the step is
 *      half applied; the switches decide by their deadline (a target whose restart never came
 *      lifts its rules or, when another target serves, keeps them); both ensembles serve;
 *   3. repaired: a third `pulumi up` completes the split. The loss check follows as usual.
 */
async function hostLostAtSplit(r: Rehearsal, phase: string): Promise<void> {
    const f = r.fleet;
    const say = r.say;
    const victim = r.targets[1];
    const tools = checkPrerequisites();
    const kill = () => {
        if (victim.sshdPid !== undefined && isOurSshd(f.mountPoint, victim.sshdPid)) {
            process.kill(victim.sshdPid, "SIGTERM");
            say(`rehearse: host-lost: stopped ${victim.name}'s sshd (pid ${victim.sshdPid})`);
        }
    };
    const repair = async () => {
        await ensureSshd(f, victim, tools);
        await waitSshd(f, [victim]);
        say(`rehearse: host-lost: ${victim.name}'s sshd runs again (pid ${victim.sshdPid})`);
    };
    const serving = async (when: string) => {
        const src = await modes(r.sources);
        const tgt = await modes(r.targets);
        say(`rehearse: host-lost: ${when}: sources ${src.join(", ")}; targets ${tgt.join(", ")}`);
        const problems: string[] = [];
        if (!src.every((m) => m !== "down")) problems.push(`the source stopped serving (${src.join(", ")})`);
        if (tgt.every((m) => m === "down")) problems.push(`no target serves the migrating clients (${tgt.join(", ")})`);
        return problems;
    };

    // 1. Lost before the step.
    const first = await r.runPhase(phase, 1, async () => kill());
    const checks: string[] = [];
    if (first.result !== "failed") checks.push("the first pulumi up of split succeeded although target 5 had no sshd");
    const failed = first.steps.filter((s) => s.failed).map((s) => s.name);
    if (!failed.some((n) => n.endsWith(`-gate-${victim.id}`))) checks.push(`expected gate-${victim.id} to fail, failed: ${failed.join(", ") || "none"}`);
    const changed = first.steps.filter((s) => /-(split-arm|firewall|restart)-\d+$/.test(s.name) && s.op !== "same" && s.op !== "read").map((s) => s.name);
    if (changed.length > 0) checks.push(`steps that change hosts ran although a gate failed: ${changed.join(", ")}`);
    checks.push(...(await serving("after the gates stopped pulumi up")));
    if (checks.length > 0) throw new Error(`host-lost (before the step): ${checks.join("; ")}`);

    // 2. Lost after the first target's split went up.
    let killed = false;
    const second = await r.runPhase(phase, 2, repair, undefined, (e) => {
        const out = e.resOutputsEvent?.metadata;
        if (!killed && out && /-split-arm-\d+$/.test(out.urn)) {
            killed = true;
            kill();
        }
    });
    if (!killed) throw new Error("host-lost: no split-arm step completed in the second pulumi up");
    if (second.result !== "failed") say("rehearse: host-lost: the second pulumi up succeeded (the lost host's steps were done before its sshd went)");
    else {
        // Until every switch has decided (bounded: the bound from the update's start, plus a minute).
        const chain = firewallChainName("kafka");
        const stateOf = (h: FleetHost) => {
            const p = join(h.dir, `zkmigrate-split-${chain}`, "state");
            return existsSync(p) ? readFileSync(p, "utf8").trim() : "none";
        };
        const deadline = Date.parse(second.startedAt) + (hostLostBound(f) + 60) * 1000;
        // A committed host's switch decides too (a commit does not stop it).
        while (r.targets.some((h) => stateOf(h) === "armed" || stateOf(h) === "committed")) {
            if (Date.now() > deadline) throw new Error(`host-lost: switches still armed a minute after their bound: ${r.targets.map((h) => `${h.name} ${stateOf(h)}`).join(", ")}`);
            await new Promise((res) => setTimeout(res, 1000));
        }
        const decided = Date.now();
        say(`rehearse: host-lost: the switches decided: ${r.targets.map((h) => `${h.name} ${stateOf(h)}`).join(", ")}`);
        // A target whose rules were lifted rejoins at its next election round: FastLeaderElection
        // backs off to 60 s between rounds while it is cut off, so allow 120 s, until every lifted
        // target serves again (the repair's gates want them serving).
        // The dormant target (the last) does not run before the split: only the active ones rejoin.
        const lifted = r.targets.slice(0, 2).filter((h) => stateOf(h) === "lifted");
        const notBack = async () => {
            const p = await serving(`${((Date.now() - decided) / 1000).toFixed(0)} s after the switches decided`);
            const m = await modes(lifted);
            return [...p, ...lifted.filter((_, i) => m[i] === "down").map((h) => `${h.name} lifted its rules but does not serve`)];
        };
        let problems = await notBack();
        while (problems.length > 0 && Date.now() - decided < 120_000) {
            await new Promise((res) => setTimeout(res, 2000));
            problems = await notBack();
        }
        if (problems.length > 0) throw new Error(`host-lost (after the first split-arm): ${problems.join("; ")}`);
        say(`rehearse: host-lost: both ensembles serve ${((Date.now() - decided) / 1000).toFixed(1)} s after the switches decided`);
    }

    // 3. Repaired: the split completes.
    const third = await r.runPhase(phase, 3, repair);
    if (third.result !== "succeeded") throw new Error(`split after the repair: ${third.error}`);
}

/** The scenario's splitDeadmanSeconds: the least the config accepts for the fleet's health timeout, plus 60 s for a busy machine. */
function hostLostBound(f: LocalFleet): number {
    return minDeadmanSeconds(f.hostSettings) + 60;
}

// ---------------------------------------------------------------------------------------------
// Block & copy: a stand-in client process on the first source host (its block command stops it,
// its switch command starts it against ZK_CONNECT), a generated tree under the subtree, the
// blocked window and the stand-in's loss check.

/** The variable the copy and the journal read the digest credentials from (set for the engine). */
const AUTH_ENV = "ZKMIGRATE_REHEARSAL_AUTH";
const TREE_NODES = 5000;

function standIn(f: LocalFleet) {
    const host = hostsOf(f, "source")[0];
    // Inside the host its directory is f.mountPoint; from here it is host.dir.
    const inside = { ackLog: join(f.mountPoint, "run", "standin.acks"), pidFile: join(f.mountPoint, "run", "standin.pid") };
    return { host, commands: clientCommands({ repo: REPO, ...inside }), ackLog: join(host.dir, "run", "standin.acks") };
}

/** The precopy: a tree under the subtree, the stand-in client started on the source, then the phase. */
async function blockCopyPrecopy(r: Rehearsal, phase: string): Promise<void> {
    const f = r.fleet;
    process.env[AUTH_ENV] = `digest:${TREE_ADMIN}`;
    const src = await connectClient(connectString(f, "source"), 20_000, 20_000);
    try {
        src.addAuthInfo("digest", Buffer.from(TREE_ADMIN));
        const tree = planTree({ nodes: TREE_NODES });
        const s = await writeOps(src, "/kafka/tree", tree.ops);
        r.say(`rehearse: block-copy: ${tree.nodes.length} znodes under /kafka/tree on the source (${s.toFixed(1)} s)`);
    } finally {
        src.close();
    }
    const c = standIn(f);
    const started = await runScript(f, c.host, `export ZK_CONNECT='${connectString(f, "source")}/kafka'\n${c.commands.start}\n`, { timeoutMs: 60_000 });
    if (started.code !== 0) throw new Error(`block-copy: the stand-in client did not start on ${c.host.name}: ${started.stderr}`);
    for (const t0 = Date.now(); readAcks(c.ackLog).length < 20; ) {
        if (Date.now() - t0 > 30_000) throw new Error(`block-copy: the stand-in client on ${c.host.name} wrote fewer than 20 numbers in 30 s`);
        await new Promise((res) => setTimeout(res, 100));
    }
    r.say(`rehearse: block-copy: the stand-in client writes on ${c.host.name} (${readAcks(c.ackLog).length} acknowledged)`);
    const report = await r.runPhase(phase, 1);
    if (report.result !== "succeeded") throw new Error(`phase ${phase} failed: ${report.error}`);
}

/** A step's absolute start and end (ms since the epoch) in a phase's report. */
function stepTimes(r: RehearsalResult, phase: string, match: (name: string) => boolean): { start: number; end: number; ms: number }[] {
    const p = r.phases.find((x) => x.phase === phase && x.result === "succeeded");
    if (!p) return [];
    const t0 = Date.parse(p.startedAt);
    return p.steps.filter((s) => match(s.name) && s.op === "create").map((s) => ({ start: t0 + s.startMs, end: t0 + s.startMs + s.ms, ms: s.ms }));
}

/** After `done`: the blocked window, and every number the stand-in client was acknowledged is on the target. */
async function blockCopyCheck(r: Rehearsal): Promise<void> {
    const f = r.fleet;
    const c = standIn(f);
    const stopped = await runScript(f, c.host, `${c.commands.stop}\n`, { timeoutMs: 60_000 });
    if (stopped.code !== 0) throw new Error(`block-copy: stopping the stand-in client: ${stopped.stderr}`);
    const lines = existsSync(c.ackLog) ? readFileSync(c.ackLog, "utf8").split("\n").filter((l) => l !== "") : [];
    const acks = lines.map((l) => l.split(" ").map(Number) as [number, number]);
    const pre = stepTimes(r.result, "precopy", (n) => n.endsWith("-precopy"));
    const blocks = stepTimes(r.result, "blocked", (n) => n.includes("-block-"));
    const fin = stepTimes(r.result, "final-copy", (n) => n.endsWith("-final-copy"));
    const switches = stepTimes(r.result, "switched", (n) => n.includes("-switch-"));
    if (pre.length !== 1 || blocks.length === 0 || fin.length !== 1 || switches.length === 0) {
        throw new Error("block-copy: the precopy, block, final-copy and switch steps are not all in the phases' reports");
    }
    const blockStart = Math.min(...blocks.map((b) => b.start));
    const switchEnd = Math.max(...switches.map((x) => x.end));
    let gap = 0;
    for (let i = 1; i < acks.length; i++) gap = Math.max(gap, acks[i][1] - acks[i - 1][1]);
    const dst = await connectClient(`${connectString(f, "target")}/kafka`, 20_000, 20_000);
    let present: Set<string>;
    try {
        present = new Set(await call<string[]>("getChildren /seq", 20_000, (cb) => dst.getChildren("/seq", cb)));
    } finally {
        dst.close();
    }
    const lost = acks.filter(([n]) => !present.has(`n-${n}`)).map(([n]) => n);
    const journalFile = join(r.project, ".zkmigrate", "kafka-copy-state.json.journal");
    const j = existsSync(journalFile) ? (JSON.parse(readFileSync(journalFile, "utf8")) as { status: string; stoppedAt?: string; reason?: string }) : undefined;
    const log = existsSync(`${journalFile}.log`) ? readFileSync(`${journalFile}.log`, "utf8").trim().split("\n").slice(-3).join(" | ") : "";
    const stoppedAt = j?.stoppedAt ? Date.parse(j.stoppedAt) : NaN;
    r.result.blockCopy = {
        blockedMs: switchEnd - blockStart,
        clientGapMs: gap,
        finalCopyMs: fin[0].ms,
        fullCopyMs: pre[0].ms,
        // The final copy stopped the journal (it consumes it) while it ran.
        journal: j?.status === "stopped" && stoppedAt >= fin[0].start && stoppedAt <= fin[0].end,
        journalState: `${j?.status ?? "missing"}${j?.reason ? `: ${j.reason}` : ""}${log ? ` (log: ${log})` : ""}`,
        acknowledged: acks.length,
        acknowledgedOnTarget: acks.filter(([, at]) => at > switchEnd - 1).length,
        lost: lost.length,
        lostSample: lost.slice(0, 10),
    };
    const b = r.result.blockCopy;
    r.say(`rehearse: block-copy: blocked -> switched ${b.blockedMs} ms (stand-in gap ${b.clientGapMs} ms), final copy ${b.finalCopyMs} ms (${b.journal ? "journal" : "scan"}), full copy ${b.fullCopyMs} ms; ${b.acknowledged} acknowledged, ${b.lost} lost`);
    const problems: string[] = [];
    if (b.acknowledgedOnTarget === 0) problems.push("the stand-in client wrote nothing on the target after the switch");
    if (acks.filter(([, at]) => at < blockStart).length === 0) problems.push("the stand-in client wrote nothing on the source before the block");
    // A journal that broke is no failure of the migration: the final copy scanned instead, and said
    // so; the report shows why (b.journalState).
    if (!b.journal) r.say(`rehearse: block-copy: the final copy scanned instead of using the journal: ${b.journalState}`);
    if (problems.length > 0) throw new Error(`block-copy: ${problems.join("; ")}`);
}
