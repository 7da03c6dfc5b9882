// The phase tables of the procedures (DESIGN.md). A phase moves at most one step per update.
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

/**
 * Block & copy (seed 003), for a target that is not empty: copy the subtree while the clients
 * run, stop them, copy again only what changed since, point them at the target.
 */
export const BLOCK_COPY_PHASES = ["precopy", "blocked", "final-copy", "switched", "done"] as const;
export type BlockCopyPhase = (typeof BLOCK_COPY_PHASES)[number];

export type Phase = MitosisPhase | KubernetesPhase | BlockCopyPhase;

export function phasesOf(procedure: ProcedureName): readonly string[] {
    return procedure === "mitosis" ? MITOSIS_PHASES : procedure === "kubernetes" ? KUBERNETES_PHASES : BLOCK_COPY_PHASES;
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
