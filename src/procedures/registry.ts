// The registry: the model reaches a procedure only through here, never by testing its name.
import type { ProcedureName } from "../types";
import { blockCopy, type BlockCopyConfig } from "./block-copy";
import { kubernetes, type KubernetesConfig } from "./kubernetes";
import { mitosis, type MitosisConfig } from "./mitosis";
import { mitosisObserver } from "./mitosis-observer";
import { mitosisReconfig } from "./mitosis-reconfig";
import { phaseIndexIn, type AnyProcedure, type Procedure } from "./procedure";

export type EnsembleConfig = MitosisConfig | KubernetesConfig | BlockCopyConfig;

export const PROCEDURES: Readonly<Record<ProcedureName, AnyProcedure>> = {
    mitosis,
    kubernetes,
    "block-copy": blockCopy,
};

export const PROCEDURE_NAMES = Object.keys(PROCEDURES) as ProcedureName[];

/**
 * The procedure of an ensemble (or of a procedure name). A mitosis with `membershipChange: reconfig`
 * is the reconfig room (src/procedures/mitosis-reconfig.ts; with `joinAs: observer` it adds the
 * targets as observers), one with `joinAs: observer` alone the observer join's room
 * (src/procedures/mitosis-observer.ts): the same phases, config part and component type.
 */
export function procedureOf(e: { procedure: ProcedureName } | ProcedureName): Procedure<EnsembleConfig> {
    if (typeof e !== "string" && e.procedure === "mitosis" && (e as { membershipChange?: string }).membershipChange === "reconfig") {
        return mitosisReconfig as unknown as Procedure<EnsembleConfig>;
    }
    if (typeof e !== "string" && e.procedure === "mitosis" && (e as { joinAs?: string }).joinAs === "observer") return mitosisObserver as AnyProcedure;
    return PROCEDURES[typeof e === "string" ? e : e.procedure];
}

/** The procedure whose component has Pulumi type `type` (the policy pack reads resources by type). */
export function procedureOfComponent(type: string): AnyProcedure | undefined {
    return Object.values(PROCEDURES).find((p) => p.componentType === type);
}

/** Every server of an ensemble (source and target, or servers). */
export function serversOf(e: EnsembleConfig) {
    return procedureOf(e).groups(e).flatMap(([, list]) => list);
}

/** The index of `phase` among its procedure's phases; throws on an unknown phase. */
export function phaseIndex(procedure: ProcedureName, phase: string): number {
    return phaseIndexIn(procedure, PROCEDURES[procedure].phases, phase);
}

export function firstPhase(procedure: ProcedureName): string {
    return PROCEDURES[procedure].phases[0];
}

/** Whether a record was applied under the ensemble's current procedure (a procedure never changes mid-way). */
export function sameProcedure(a: { procedure: ProcedureName }, e: { procedure: ProcedureName }): boolean {
    return a.procedure === e.procedure;
}
