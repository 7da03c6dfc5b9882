// What the rehearsal can rehearse, as tables: a procedure row (the fleet it needs, the stack's
// ensemble entry, its phases in order) and a scenario row (what happens around the phases). The
// runner (runner.ts) walks the procedure's phases and asks the scenario how to run each one; by
// default a phase is one `pulumi up` that must succeed.
//
// A new scenario is a row in SCENARIOS and, where it does something of its own, a function for
// the phases it changes (as `fault` below). A new procedure (e.g. kubernetes) is a row in
// PROCEDURES; a variant of the ensemble (e.g. targets joining as observers) a scenario whose
// `ensemble` adjusts the entry; a comparison of two runs composes the runner twice (rehearse.ts).
import { MITOSIS_PHASES } from "../../src/procedures/mitosis";
import { fourLetterWord, parseMode } from "../../src/zk/four-letter";
import { hostsOf, runScript, type LocalFleet, type FleetEnsembleSpec, type FleetHost } from "../fleet";
import type { PhaseReport } from "./report";

/** What a scenario's phase function works with: the fleet, and one `pulumi up` of a phase. */
export interface Rehearsal {
    fleet: LocalFleet;
    sources: FleetHost[];
    targets: FleetHost[];
    say(line: string): void;
    /** Sets the phase, runs `before`, then one `pulumi up`; the report of that attempt. */
    runPhase(phase: string, attempt: number, before?: () => Promise<void>): Promise<PhaseReport>;
}

/** How one phase runs in a scenario; throws to end the rehearsal as failed. */
export type PhaseRun = (r: Rehearsal, phase: string) => Promise<void>;

export interface Procedure {
    /** The phases in order, one `pulumi up` each. */
    phases: readonly string[];
    /** The fleet's ensembles (names "source" and "target": the stress clients use them). */
    ensembles: FleetEnsembleSpec[];
    /** The stack config's entry for the ensemble under migration (the chroot and clients added by the runner). */
    ensemble(f: LocalFleet): Record<string, unknown>;
}

export interface Scenario {
    /** One line for --help and the report. */
    about: string;
    /** The fleet's name is `<prefix>-<pid>` (with --kafka `rk<prefix without its r>-<pid>`). */
    fleetPrefix: string;
    procedure: keyof typeof PROCEDURES;
    /** Phases that run otherwise than one `pulumi up` that must succeed. */
    phases?: Partial<Record<string, PhaseRun>>;
    /** Adjusts the stack's ensemble entry (a variant of the procedure). */
    ensemble?(entry: Record<string, unknown>): Record<string, unknown>;
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
                activeTargets: [targets[0].id, targets[1].id],
            };
        },
    },
} satisfies Record<string, Procedure>;

export const SCENARIOS = {
    mitosis: { about: "a whole mitosis under load", fleetPrefix: "rh", procedure: "mitosis" },
    fault: {
        about: "a target that cannot start in `joined`: pulumi up stops there; after the repair a second one completes the phase",
        fleetPrefix: "rf",
        procedure: "mitosis",
        phases: { joined: faultAtJoined },
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
