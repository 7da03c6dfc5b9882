// The model's entry points: desired state per phase, and the checked plan of one update.
import { ConfigError } from "./config/errors";
import { currentOf, runningState, validateTransitions } from "./config/applied";
import type { FleetConfig } from "./config/loader";
import { planTransition } from "./plan";
import { procedureOf, type EnsembleConfig } from "./procedures/registry";
import { assertSafe, UnsafePlanError } from "./safety";
import { UNKNOWN_LEADER, type KafkaControllerInfo, type LeaderInfo, type MigrationPlan } from "./steps";
import type { AppliedEnsemble, AppliedState, DesiredState, ServerId } from "./types";

/** The desired state of `e` in `phase` (with `cutover` for procedures that move servers one by one). */
export function desiredState(e: EnsembleConfig, phase: string = e.phase, cutover?: ServerId[]): DesiredState {
    return procedureOf(e).desired(e, { phase, cutover });
}

export interface EnsemblePlan {
    /** What runs now: the desired state of the applied phase. */
    current: DesiredState;
    applied: AppliedEnsemble;
    /** What this update makes of it. */
    desired: DesiredState;
    plan: MigrationPlan;
    /** The Pulumi type of the ensemble's component. */
    componentType: string;
}

/**
 * Plans one update of one ensemble, from the applied phase to the requested one, and checks its
 * quorum safety step by step. Throws UnsafePlanError when a step is unsafe.
 */
export function planEnsemble(e: EnsembleConfig, applied: AppliedState, leader: LeaderInfo = UNKNOWN_LEADER, kafka?: KafkaControllerInfo): EnsemblePlan {
    const a = currentOf(e, applied);
    const current = runningState(desiredState(e, a.phase, a.cutover), a);
    const desired = desiredState(e);
    const plan = planTransition(e, current, desired, leader, kafka);
    assertSafe(current, desired, plan);
    return { current, applied: a, desired, plan, componentType: procedureOf(e).componentType };
}

/** The leader as the config states it, when it does. */
export function configuredLeader(e: EnsembleConfig): LeaderInfo | undefined {
    return e.leader !== undefined ? { leaders: [e.leader], known: true } : undefined;
}

/**
 * Checks and plans a whole fleet: config against what was applied (one step per update), then the
 * quorum safety of every ensemble's plan. All problems are reported together, before any resource
 * is declared. `leaders` and `kafkaControllers` are what the preview read from the servers.
 */
export function planFleet(
    config: FleetConfig,
    applied: AppliedState,
    leaders: Record<string, LeaderInfo> = {},
    kafkaControllers: Record<string, KafkaControllerInfo> = {},
): Map<string, EnsemblePlan> {
    const issues = validateTransitions(config.ensembles, applied);
    if (issues.length > 0) {
        throw new ConfigError(issues);
    }
    const plans = new Map<string, EnsemblePlan>();
    const unsafe: UnsafePlanError[] = [];
    for (const e of config.ensembles) {
        try {
            plans.set(e.name, planEnsemble(e, applied, configuredLeader(e) ?? leaders[e.name] ?? UNKNOWN_LEADER, kafkaControllers[e.name]));
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
