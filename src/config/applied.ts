// The applied-state record: what the last successful update did, read back from this stack's own
// `applied` output, and the checks of a requested step against it (one step per update).
import { z } from "zod";
import { firstPhase, phaseIndex, PROCEDURE_NAMES, procedureOf, sameProcedure, serversOf, type EnsembleConfig } from "../procedures/registry";
import type { AppliedEnsemble, AppliedState, DesiredState, ProcedureName, ServerFingerprint } from "../types";
import { ensemblePath, type ConfigIssue } from "./errors";

export type { AppliedEnsemble, AppliedState } from "../types";

const membershipSchema = z.object({
    members: z.array(z.object({ id: z.int(), address: z.string(), peerPort: z.int(), electionPort: z.int() })),
    quorumListenOnAllIPs: z.boolean(),
});
const fingerprintSchema = z.object({ running: z.boolean(), location: z.enum(["host", "pod"]), membership: membershipSchema });

/** Reads the `applied` stack output back; anything unreadable counts as nothing applied. */
export function parseApplied(value: unknown): AppliedState {
    const schema = z.record(
        z.string(),
        z.object({
            procedure: z.enum(PROCEDURE_NAMES as [ProcedureName, ...ProcedureName[]]),
            phase: z.string(),
            cutover: z.array(z.int()).default([]),
            servers: z.array(z.int()).default([]),
            statefulSet: z.string().optional(),
            running: z.record(z.string(), fingerprintSchema).optional(),
        }),
    );
    const r = schema.safeParse(value ?? {});
    return r.success ? r.data : {};
}

/** The record this update writes once every step of the ensemble succeeded. */
export function appliedOf(e: EnsembleConfig): AppliedEnsemble {
    const p = procedureOf(e);
    const extra = p.appliedExtra(e);
    const d = p.desired(e, { phase: e.phase, cutover: extra.cutover });
    return {
        procedure: e.procedure,
        phase: e.phase,
        cutover: extra.cutover,
        servers: serversOf(e).map((s) => s.id),
        ...(extra.statefulSet !== undefined ? { statefulSet: extra.statefulSet } : {}),
        ...(d.servers.length > 0 ? { running: fingerprintsOf(d) } : {}),
    };
}

/** What each server of a desired state runs, by myid (the `running` part of the applied record). */
export function fingerprintsOf(d: DesiredState): Record<string, ServerFingerprint> {
    return Object.fromEntries(
        d.servers.map((s) => [String(s.id), { running: s.running && !s.decommissioned, location: s.location, membership: s.runningWith }]),
    );
}

/**
 * The state the servers run in now: the desired state of the applied phase, with what each server
 * runs as recorded by the last update. A setting edited since (a port, a host's spelling,
 * quorumListenOnAllIPs) therefore shows as a change of what the server runs, and is planned as a
 * restart like any other.
 */
export function runningState(d: DesiredState, a: AppliedEnsemble): DesiredState {
    const rec = a.running;
    if (!rec) return d;
    return {
        ...d,
        servers: d.servers.map((s) => {
            const f = rec[String(s.id)];
            if (!f || f.location !== s.location || s.decommissioned) return s;
            return { ...s, running: f.running, runningWith: f.membership };
        }),
    };
}

/**
 * The phase the ensemble is in now: the applied one, or, for a new ensemble, the first phase (its
 * baseline: the servers run as the config describes).
 */
export function currentOf(e: EnsembleConfig, applied: AppliedState): AppliedEnsemble {
    const a = applied[e.name];
    if (a && sameProcedure(a, e)) {
        return a;
    }
    return { procedure: e.procedure, phase: firstPhase(e.procedure), cutover: [], servers: serversOf(e).map((s) => s.id) };
}

/** Checks each ensemble's requested step against what was applied last. */
export function validateTransitions(ensembles: EnsembleConfig[], applied: AppliedState): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    for (const e of ensembles) {
        const a = applied[e.name];
        if (a && !sameProcedure(a, e)) {
            issues.push({
                path: ensemblePath(e, ".procedure"),
                reason: `ensemble "${e.name}" was applied as a ${a.procedure} migration; its procedure cannot change mid-way`,
            });
            continue;
        }
        const p = procedureOf(e);
        const cur = currentOf(e, applied);
        const from = phaseIndex(e.procedure, cur.phase);
        const to = phaseIndex(e.procedure, e.phase);
        if (!a && to !== 0) {
            issues.push({
                path: ensemblePath(e, ".phase"),
                reason: `a new ensemble starts at the first phase "${firstPhase(e.procedure)}" (its preflight checks run there); got "${e.phase}"`,
            });
        } else if (Math.abs(to - from) > 1) {
            const next = p.phases[Math.min(from + 1, p.phases.length - 1)];
            issues.push({
                path: ensemblePath(e, ".phase"),
                reason: `"${e.phase}" is ${Math.abs(to - from)} steps from the applied phase "${cur.phase}": move one step per update (next: "${next}")`,
            });
        }
        const ids = serversOf(e).map((s) => s.id).sort((x, y) => x - y);
        const before = [...cur.servers].sort((x, y) => x - y);
        if (a && from > 0 && ids.join(",") !== before.join(",")) {
            issues.push({
                path: ensemblePath(e),
                reason: `the servers of an ensemble cannot change during a migration (applied: ${before.join(", ")}; now: ${ids.join(", ")}); finish it or step back to the first phase first`,
            });
        }
        issues.push(...p.transitionIssues(e, a, cur));
    }
    return issues;
}
