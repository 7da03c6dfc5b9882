// The phase tables of both procedures (DESIGN.md). A phase moves at most one step per update.
import type { ProcedureName } from "./types";

export const MITOSIS_PHASES = [
    "separate",
    "joined",
    "clients",
    "prepared",
    "split",
    "source-restarted",
    "done",
] as const;
export type MitosisPhase = (typeof MITOSIS_PHASES)[number];

export const KUBERNETES_PHASES = ["hosts", "services", "clients", "peers", "pods", "done"] as const;
export type KubernetesPhase = (typeof KUBERNETES_PHASES)[number];

export type Phase = MitosisPhase | KubernetesPhase;

export function phasesOf(procedure: ProcedureName): readonly string[] {
    return procedure === "mitosis" ? MITOSIS_PHASES : KUBERNETES_PHASES;
}

export function phaseIndex(procedure: ProcedureName, phase: string): number {
    const i = phasesOf(procedure).indexOf(phase);
    if (i < 0) {
        throw new Error(`unknown ${procedure} phase "${phase}" (one of: ${phasesOf(procedure).join(", ")})`);
    }
    return i;
}

export function firstPhase(procedure: ProcedureName): string {
    return phasesOf(procedure)[0];
}
