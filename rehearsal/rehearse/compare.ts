// `rehearse --compare`: the joins of issue 13 run one after the other on fresh fleets, side by side.
// Pure: from each run's result and summary to the table and the last JSON line
// (`variants: { voter, observer, reconfig }`). A join this zkmigrate cannot run is `null` with the
// reason in `skipped`.
import { JOIN_AS_DEFAULT } from "../../src/procedures/mitosis";
import type { RehearsalResult, Summary } from "./report";

export const COMPARED = ["voter", "observer", "reconfig"] as const;
export type Compared = (typeof COMPARED)[number];

/** One variant's figures (the keys the issue asks for, and a few beside them). */
export interface VariantFigures {
    ok: boolean;
    lost: number | null;
    acknowledged: number | null;
    sourceRestarts: number;
    sourceElections: number;
    /** The sources' (source-users') longest write gap over the whole run, and at the split. */
    sourceMaxGapMs: number;
    splitSourceMaxGapMs: number | null;
    /** The migrating clients' longest write gap from `clients` on (they use the targets then). */
    targetsMaxGapMs: number;
    splitTargetUnavailableMs: number | null;
    splitTargetsServingMs: number | null;
    joinSplitBrainWindowMs: number | null;
    wallMs: number;
    phases: Record<string, { sourceRestarts: number; sourceElections: number; sourceMaxGapMs: number; migratingMaxGapMs: number; wallMs: number }>;
    failure?: string;
}

export function variantFigures(r: RehearsalResult, s: Summary): VariantFigures {
    const phases: VariantFigures["phases"] = {};
    for (const p of r.phases) {
        if (p.attempt > 1 || p.result !== "succeeded") continue;
        phases[p.phase] = {
            sourceRestarts: p.sourceRestarts ?? 0,
            sourceElections: p.sourceElections ?? 0,
            sourceMaxGapMs: p.clients["source-users"].maxGapMs,
            migratingMaxGapMs: p.clients.migrating.maxGapMs,
            wallMs: p.wallMs,
        };
    }
    const sum = (k: "sourceRestarts" | "sourceElections") => Object.values(phases).reduce((n, p) => n + p[k], 0);
    return {
        ok: s.ok,
        lost: s.lost,
        acknowledged: s.acknowledged,
        sourceRestarts: sum("sourceRestarts"),
        sourceElections: sum("sourceElections"),
        sourceMaxGapMs: Math.max(0, ...Object.values(phases).map((p) => p.sourceMaxGapMs)),
        splitSourceMaxGapMs: s.splitSourceMaxGapMs,
        targetsMaxGapMs: Math.max(0, ...Object.entries(phases).filter(([k]) => k !== "separate" && k !== "joined").map(([, p]) => p.migratingMaxGapMs)),
        splitTargetUnavailableMs: s.splitTargetUnavailableMs,
        splitTargetsServingMs: s.splitTargetsServingMs,
        joinSplitBrainWindowMs: s.joinSplitBrainWindowMs,
        wallMs: s.wallMs,
        phases,
        ...(r.failure ? { failure: r.failure.split("\n")[0] } : {}),
    };
}

export type Variants = Record<Compared, VariantFigures | null>;

/** The side-by-side table: per phase restarts / elections / gaps of each join, then the totals. */
export function renderCompare(v: Variants, skipped: Partial<Record<Compared, string>>): string {
    const ran = COMPARED.filter((k) => v[k] !== null);
    const col = 30;
    const cell = (x: string) => x.padStart(col);
    const phases = [...new Set(ran.flatMap((k) => Object.keys(v[k]!.phases)))];
    const lines = [
        "",
        "zkmigrate rehearsal --compare: the joins side by side (fresh fleet each; per phase: source restarts / source elections / longest write gap ms of the sources / of the migrating clients)",
        "",
        `${"phase".padEnd(32)}${ran.map((k) => cell(k === JOIN_AS_DEFAULT ? `${k} (default)` : k)).join("")}`,
        ...phases.map((p) => `${p.padEnd(32)}${ran.map((k) => {
            const x = v[k]!.phases[p];
            return cell(x ? `${x.sourceRestarts} / ${x.sourceElections} / ${x.sourceMaxGapMs} / ${x.migratingMaxGapMs}` : "-");
        }).join("")}`),
        "",
        ...([
            ["source restarts", (x: VariantFigures) => String(x.sourceRestarts)],
            ["source elections", (x: VariantFigures) => String(x.sourceElections)],
            ["sources' max gap ms", (x: VariantFigures) => String(x.sourceMaxGapMs)],
            ["  at the split", (x: VariantFigures) => String(x.splitSourceMaxGapMs ?? "-")],
            ["targets' max gap ms", (x: VariantFigures) => String(x.targetsMaxGapMs)],
            ["split: targets unavailable ms", (x: VariantFigures) => String(x.splitTargetUnavailableMs ?? "-")],
            ["split: all targets serve ms", (x: VariantFigures) => String(x.splitTargetsServingMs ?? "-")],
            ["join split-brain window ms", (x: VariantFigures) => String(x.joinSplitBrainWindowMs ?? "-")],
            ["wall s", (x: VariantFigures) => (x.wallMs / 1000).toFixed(0)],
            ["lost / acknowledged", (x: VariantFigures) => `${x.lost ?? "-"} / ${x.acknowledged ?? "-"}`],
            ["result", (x: VariantFigures) => (x.ok ? "PASSED" : x.failure ? "FAILED (below)" : "FAILED")],
        ] as const).map(([label, f]) => `${label.padEnd(32)}${ran.map((k) => cell(f(v[k]!))).join("")}`),
        // A failure's whole reason, which the column would cut.
        ...ran.filter((k) => !v[k]!.ok && v[k]!.failure).map((k) => `${k}: FAILED: ${v[k]!.failure}`),
        ...COMPARED.filter((k) => v[k] === null).map((k) => `${k}: not run (${skipped[k] ?? "unavailable"})`),
    ];
    return lines.join("\n");
}

/** The last JSON line of --compare. `ok` only when every variant that ran passed with 0 lost. */
export function compareSummary(v: Variants, skipped: Partial<Record<Compared, string>>) {
    const ran = COMPARED.filter((k) => v[k] !== null);
    return {
        compare: true,
        ok: ran.length > 0 && ran.every((k) => v[k]!.ok && v[k]!.lost === 0),
        variants: v,
        ...(Object.keys(skipped).length > 0 ? { skipped } : {}),
    };
}
