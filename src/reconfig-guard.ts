// The reconfig guard of the preview: an update of a `membershipChange: reconfig` mitosis that runs a
// reconfig (the join, the split, the abort), or that starts the migration (its first phase), is
// refused when the sources' reading says dynamic reconfig is unavailable (src/zk/reconfig-probe.ts:
// release, dynamic configuration, reconfigEnabled, the right to write /zookeeper/config), with the
// reasons and the config path. Without a reading (zkmigrate:leaderProbe off) it is a warning: the
// reconfig step itself then fails on the host with the reason, and nothing after it runs.
import { ensemblePath, type ConfigIssue } from "./config/errors";
import type { EnsemblePlan } from "./model";
import { firstPhase, type EnsembleConfig } from "./procedures/registry";
import type { ReconfigReading } from "./zk/reconfig-probe";

/** The ensembles whose membership changes by reconfig. */
export function reconfigEnsembles(ensembles: EnsembleConfig[]): EnsembleConfig[] {
    return ensembles.filter((e) => "membershipChange" in e && e.membershipChange === "reconfig");
}

/** Whether this update needs reconfig: it runs one, or it is the first phase (checked before anything starts). */
export function needsReconfig(e: EnsembleConfig, p: Pick<EnsemblePlan, "plan">): boolean {
    return p.plan.steps.some((s) => s.effect?.kind === "reconfig") || e.phase === firstPhase(e.procedure);
}

export function reconfigGuard(
    ensembles: EnsembleConfig[],
    plans: Map<string, Pick<EnsemblePlan, "plan">>,
    readings: Record<string, ReconfigReading> | undefined,
): { issues: ConfigIssue[]; warnings: Map<string, string[]> } {
    const out = { issues: [] as ConfigIssue[], warnings: new Map<string, string[]>() };
    for (const e of reconfigEnsembles(ensembles)) {
        const p = plans.get(e.name);
        if (!p || !needsReconfig(e, p)) continue;
        const r = readings?.[e.name];
        if (!r) {
            out.warnings.set(e.name, [
                `${e.name}: membershipChange reconfig: whether the sources allow reconfig was not read (zkmigrate:leaderProbe is off); ` +
                    "the reconfig steps fail on the host if they do not (ZooKeeper >= 3.5.3, reconfigEnabled=true, a dynamic configuration, and write access to /zookeeper/config)",
            ]);
            continue;
        }
        if (r.available) continue;
        out.issues.push({
            path: ensemblePath(e, ".membershipChange"),
            reason: `reconfig is not available on the sources: ${r.reasons.join("; ")}; fix that, or use membershipChange: restart (nothing was changed)`,
        });
    }
    return out;
}
