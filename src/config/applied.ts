// The applied-state record: what the last successful update did, read back from this stack's own
// `applied` output, and the checks of a requested step against it (one step per update).
import { z } from "zod";
import { firstPhase, phaseIndex, PROCEDURE_NAMES, PROCEDURES, procedureOf, sameProcedure, serversOf, type EnsembleConfig } from "../procedures/registry";
import type { AppliedEnsemble, AppliedState, DesiredState, ProcedureName, ServerFingerprint } from "../types";
import { ensemblePath, NAMESPACE, type ConfigIssue } from "./errors";

export type { AppliedEnsemble, AppliedState } from "../types";

const membershipSchema = z.object({
    // `observer` (the observer join): kept, so that a server's role is part of what it runs.
    members: z.array(z.object({ id: z.int(), address: z.string(), peerPort: z.int(), electionPort: z.int(), observer: z.literal(true).optional() })),
    quorumListenOnAllIPs: z.boolean(),
});
const fingerprintSchema = z.object({ running: z.boolean(), location: z.enum(["host", "pod"]), membership: membershipSchema });

const entrySchema = z.object({
    procedure: z.enum(PROCEDURE_NAMES as [ProcedureName, ...ProcedureName[]]),
    phase: z.string(),
    cutover: z.array(z.int()).default([]),
    servers: z.array(z.int()).default([]),
    statefulSet: z.string().optional(),
    joinAs: z.enum(["voter", "observer"]).optional(),
    membershipChange: z.enum(["restart", "reconfig"]).optional(),
    running: z.unknown().optional(),
});

/**
 * Reads the `applied` stack output back, entry by entry. An entry that does not parse is left out
 * (see appliedIssues, which refuses it by name); fingerprints that do not parse are dropped (the
 * applied phase's desired state stands in, as for records of older versions).
 */
export function parseApplied(value: unknown): AppliedState {
    const out: AppliedState = {};
    if (!value || typeof value !== "object" || Array.isArray(value)) return out;
    for (const [name, entry] of Object.entries(value)) {
        const r = entrySchema.safeParse(entry);
        if (!r.success) continue;
        const running = z.record(z.string(), fingerprintSchema).safeParse(r.data.running);
        const { running: _, ...rest } = r.data;
        out[name] = { ...rest, ...(r.data.running !== undefined && running.success ? { running: running.data } : {}) };
    }
    return out;
}

/** Entries of the stored `applied` output this zkmigrate cannot read: refused by name, never taken for "nothing applied". */
export function appliedIssues(value: unknown): ConfigIssue[] {
    if (!value || typeof value !== "object" || Array.isArray(value)) return [];
    return Object.entries(value)
        .filter(([, entry]) => !entrySchema.safeParse(entry).success)
        .map(([name, entry]) => ({
            path: `${NAMESPACE}:ensembles[${name}]`,
            reason:
                `the stack's applied record of "${name}" cannot be read by this zkmigrate (${JSON.stringify(entry).slice(0, 120)}): ` +
                "it was written by another version; run that version to finish or step back, or rebuild the record with `zkmigrate adopt`",
        }));
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
        ...(extra.joinAs !== undefined ? { joinAs: extra.joinAs } : {}),
        ...(extra.membershipChange !== undefined ? { membershipChange: extra.membershipChange } : {}),
        ...(d.servers.length > 0 ? { running: fingerprintsOf(d) } : {}),
    };
}

/** What each server of a desired state runs, by myid (the `running` part of the applied record). */
export function fingerprintsOf(d: DesiredState): Record<string, ServerFingerprint> {
    return Object.fromEntries(
        d.servers.map((s) => [String(s.id), { running: s.running, location: s.location, membership: s.runningWith }]),
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
            if (!f || f.location !== s.location) return s;
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

/**
 * Ensembles the last update applied that the config no longer has: Pulumi would delete their
 * resources, running each delete (a firewall's lifts the split). Allowed only where the procedure
 * says that changes nothing on a host. `configured`: the names in the raw config (an ensemble
 * with a schema error is still there, not removed).
 */
export function removalIssues(ensembles: EnsembleConfig[], applied: AppliedState, configured?: string[]): ConfigIssue[] {
    const names = new Set([...ensembles.map((e) => e.name), ...(configured ?? [])]);
    const issues: ConfigIssue[] = [];
    for (const [name, a] of Object.entries(applied)) {
        if (names.has(name)) continue;
        const p = PROCEDURES[a.procedure];
        if (!p || p.removal.phases.includes(a.phase)) continue;
        issues.push({
            path: `${NAMESPACE}:ensembles`,
            reason: `ensemble "${name}" (${a.procedure}, applied at phase "${a.phase}") was removed from the config: ${p.removal.otherwise}`,
        });
    }
    return issues;
}

/** Checks each ensemble's requested step against what was applied last (and what left the config). */
export function validateTransitions(ensembles: EnsembleConfig[], applied: AppliedState, configured?: string[]): ConfigIssue[] {
    const issues: ConfigIssue[] = removalIssues(ensembles, applied, configured);
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
        if (a && !p.phases.includes(a.phase)) {
            // Written by another zkmigrate version (a phase renamed, added or removed): nothing can
            // be planned from a state this version does not know.
            issues.push({
                path: ensemblePath(e, ".phase"),
                reason:
                    `the stack's applied record says ensemble "${e.name}" is in ${e.procedure} phase "${a.phase}", which this zkmigrate does not know ` +
                    `(its phases: ${p.phases.join(", ")}); it was written by another zkmigrate version: run that version (pulumi stack history shows when it ran) ` +
                    "to finish or step back to a phase both know; nothing was changed",
            });
            continue;
        }
        const cur = currentOf(e, applied);
        const from = phaseIndex(e.procedure, cur.phase);
        const to = phaseIndex(e.procedure, e.phase);
        if (!a && to !== 0) {
            issues.push({
                path: ensemblePath(e, ".phase"),
                reason: `a new ensemble starts at the first phase "${firstPhase(e.procedure)}" (its preflight checks run there); got "${e.phase}"`,
            });
        } else if (Math.abs(to - from) > 1) {
            // The one step toward the requested phase: forward the next, backward the previous.
            const step = to > from ? `next: "${p.phases[from + 1]}"` : `back: "${p.phases[from - 1]}"`;
            issues.push({
                path: ensemblePath(e, ".phase"),
                reason: `"${e.phase}" is ${Math.abs(to - from)} steps from the applied phase "${cur.phase}": move one step per update (${step})`,
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
