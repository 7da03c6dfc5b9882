// The model's entry points: desired state per phase, and the checked plan of one update.
import { ConfigError, currentOf, validateTransitions, type AppliedEnsemble, type AppliedState, type EnsembleConfig, type FleetConfig } from "./config";
import type { BlockCopyPhase, KubernetesPhase, MitosisPhase } from "./phases";
import { planTransition, UNKNOWN_LEADER, type LeaderInfo, type Plan } from "./plan";
import { blockCopyDesired } from "./procedures/block-copy";
import { kubernetesDesired } from "./procedures/kubernetes";
import { mitosisDesired } from "./procedures/mitosis";
import { assertSafe, UnsafePlanError } from "./safety";
import type { DesiredState } from "./types";

/** The desired state of `e` in `phase` (with `cutover` for the kubernetes procedure). */
export function desiredState(e: EnsembleConfig, phase: string = e.phase, cutover?: number[]): DesiredState {
    if (e.procedure === "mitosis") {
        return mitosisDesired(e, phase as MitosisPhase);
    }
    if (e.procedure === "block-copy") {
        return blockCopyDesired(e, phase as BlockCopyPhase);
    }
    return kubernetesDesired({ ...e, cutover: cutover ?? e.cutover }, phase as KubernetesPhase);
}

export interface EnsemblePlan {
    /** What runs now: the desired state of the applied phase. */
    current: DesiredState;
    applied: AppliedEnsemble;
    /** What this update makes of it. */
    desired: DesiredState;
    plan: Plan;
}

/**
 * Plans one update of one ensemble, from the applied phase to the requested one, and checks
 * its quorum safety step by step. Throws UnsafePlanError when a step is unsafe.
 */
export function planEnsemble(e: EnsembleConfig, applied: AppliedState, leader: LeaderInfo = UNKNOWN_LEADER): EnsemblePlan {
    const a = currentOf(e, applied);
    const current = desiredState(e, a.phase, a.cutover);
    const desired = desiredState(e);
    const plan = planTransition(e, current, desired, leader);
    assertSafe(current, desired, plan);
    return { current, applied: a, desired, plan };
}

/** The leader as the config states it, when it does. */
export function configuredLeader(e: EnsembleConfig): LeaderInfo | undefined {
    return e.leader !== undefined ? { leaders: [e.leader], known: true } : undefined;
}

/**
 * Checks and plans a whole fleet: config against what was applied (one step per update), then
 * the quorum safety of every ensemble's plan. All problems are reported together, before any
 * resource is declared.
 */
export function planFleet(config: FleetConfig, applied: AppliedState, leaders: Record<string, LeaderInfo> = {}): Map<string, EnsemblePlan> {
    const issues = validateTransitions(config.ensembles, applied);
    if (issues.length > 0) {
        throw new ConfigError(issues);
    }
    const plans = new Map<string, EnsemblePlan>();
    const unsafe: UnsafePlanError[] = [];
    for (const e of config.ensembles) {
        try {
            plans.set(e.name, planEnsemble(e, applied, configuredLeader(e) ?? leaders[e.name] ?? UNKNOWN_LEADER));
        } catch (err) {
            if (!(err instanceof UnsafePlanError)) throw err;
            unsafe.push(err);
        }
    }
    if (unsafe.length > 0) {
        throw new UnsafeFleetError(unsafe);
    }
    return plans;
}

export class UnsafeFleetError extends Error {
    constructor(readonly errors: UnsafePlanError[]) {
        super(errors.map((e) => e.message).join("\n"));
        this.name = "UnsafeFleetError";
    }
}
