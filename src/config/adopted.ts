// `zkmigrate:adopted`: applied records rebuilt by `zkmigrate adopt` for a stack that lost its
// outputs. Used for an ensemble ONLY where the stack has no `applied` record of its own; where it
// has one, the adopted record must say the same (a leftover after the next update) or the update
// is refused: adoption never overrides what the stack itself recorded.
import { phaseIndex, PROCEDURE_NAMES, procedureOf, type EnsembleConfig } from "../procedures/registry";
import type { AppliedEnsemble, AppliedState } from "../types";
import { parseApplied } from "./applied";
import { NAMESPACE, type ConfigIssue } from "./errors";

const KEY = `${NAMESPACE}:adopted`;

/** The command that removes one ensemble's adopted record (a property path: names with `-` go in brackets). */
export function rmCommand(name: string): string {
    return `pulumi config rm --path '${KEY}["${name}"]'`;
}

/** A record with its keys in one order (for comparing two records). */
function canonical(a: AppliedEnsemble, withRunning: boolean): string {
    const sortKeys = (v: unknown): unknown =>
        Array.isArray(v) ? v.map(sortKeys) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)])) : v;
    const { running, ...rest } = a;
    return JSON.stringify(sortKeys({ ...rest, cutover: [...a.cutover].sort(), servers: [...a.servers].sort((x, y) => x - y), ...(withRunning ? { running } : {}) }));
}

/** Whether two records say the same (`running` compared only when both have it: older records lack it). */
export function sameRecord(a: AppliedEnsemble, b: AppliedEnsemble): boolean {
    const both = a.running !== undefined && b.running !== undefined;
    return canonical(a, both) === canonical(b, both);
}

export interface AdoptedMerge {
    /** The stack's records, with the adopted ones where the stack has none. */
    applied: AppliedState;
    issues: ConfigIssue[];
    /** Adopted records the stack now has itself: the key can go. */
    leftovers: string[];
}

/**
 * Merges `zkmigrate:adopted` (its raw value) into the stack's own records. Each problem names its
 * config path: an ensemble that is not in the config, a value that is not a record, a procedure or
 * phase that does not fit the ensemble, a record that disagrees with the stack's own.
 */
export function mergeAdopted(raw: unknown, applied: AppliedState, ensembles: EnsembleConfig[]): AdoptedMerge {
    const out: AdoptedMerge = { applied: { ...applied }, issues: [], leftovers: [] };
    if (raw === undefined || raw === null || raw === "") return out;
    if (typeof raw !== "object" || Array.isArray(raw)) {
        out.issues.push({ path: KEY, reason: "expected an object of applied records by ensemble name (the output of zkmigrate adopt)" });
        return out;
    }
    for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
        const path = `${KEY}.${name}`;
        const e = ensembles.find((x) => x.name === name);
        if (!e) {
            out.issues.push({ path, reason: `no ensemble named "${name}" in ${NAMESPACE}:ensembles` });
            continue;
        }
        const v = value as { procedure?: unknown; phase?: unknown; servers?: unknown } | null;
        if (!v || typeof v !== "object" || typeof v.procedure !== "string" || typeof v.phase !== "string" || !Array.isArray(v.servers)) {
            out.issues.push({ path, reason: "not an applied record (procedure, phase, cutover, servers, running: the output of zkmigrate adopt)" });
            continue;
        }
        if (!PROCEDURE_NAMES.includes(v.procedure as never) || v.procedure !== e.procedure) {
            out.issues.push({ path: `${path}.procedure`, reason: `"${String(v.procedure)}" is not the ensemble's procedure "${e.procedure}"` });
            continue;
        }
        try {
            phaseIndex(e.procedure, v.phase);
        } catch {
            out.issues.push({ path: `${path}.phase`, reason: `unknown ${e.procedure} phase "${v.phase}" (one of: ${procedureOf(e).phases.join(", ")})` });
            continue;
        }
        const record = parseApplied({ [name]: value })[name];
        if (!record) {
            out.issues.push({ path, reason: "not an applied record: a field has the wrong type (use the output of zkmigrate adopt as it is)" });
            continue;
        }
        const own = applied[name];
        if (own === undefined) {
            out.applied[name] = record;
        } else if (sameRecord(own, record)) {
            out.leftovers.push(name);
        } else {
            out.issues.push({
                path,
                reason:
                    `the stack has its own applied record of "${name}" (phase ${own.phase}), which this adopted record ` +
                    `(phase ${record.phase}) contradicts; adoption is only for a stack without one: remove ${path} ` +
                    `(${rmCommand(name)})`,
            });
        }
    }
    return out;
}
