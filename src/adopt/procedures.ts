// Which procedures can be adopted from their hosts, and what each knows beyond the phase table.
// The hosts show each server's membership, whether it runs and the firewall split; phases whose
// servers look the same can still differ in the data the servers hold (mitosis `separate` and
// `done`: in both every server runs its own ensemble's membership, but only after the split do
// the targets hold the source's data).
import type { MitosisConfig } from "../procedures/mitosis";
import type { EnsembleConfig } from "../procedures/registry";
import type { DesiredState, ProcedureName } from "../types";
import type { Observation } from "./observe";

export type Adoption =
    | { supported: true; dataDifferences: (e: EnsembleConfig, d: DesiredState, observations: Observation[]) => string[] }
    | { supported: false; reason: string };

const ADOPTION: Record<ProcedureName, Adoption> = {
    mitosis: { supported: true, dataDifferences: (e, d, o) => mitosisData(e as MitosisConfig, d, o) },
    kubernetes: {
        supported: false,
        reason:
            "the kubernetes procedure's phases live in the cluster as much as on the hosts (the per-server Services and " +
            "Endpoints, the StatefulSet and its pods), which `zkmigrate adopt` does not read: write its record by hand " +
            "(README, \"Re-adoption\")",
    },
    "block-copy": {
        supported: false,
        reason:
            "block & copy changes no ZooKeeper server: its phase is in the copy's state file and in the clients' " +
            "configuration, which `zkmigrate adopt` does not read: write its record by hand (README, \"Re-adoption\")",
    },
};

export function adoptionOf(e: { procedure: ProcedureName }): Adoption {
    return ADOPTION[e.procedure];
}

/**
 * Mitosis: in `separate` the targets are empty (the preflight's rule: at most emptyTargetMaxZnodes
 * znodes); from `split` on they run their own ensemble with the migrated data, so targets that are
 * all that small while the source is larger are not there yet.
 */
function mitosisData(e: MitosisConfig, d: DesiredState, observations: Observation[]): string[] {
    const max = e.emptyTargetMaxZnodes;
    const role = new Map(d.servers.map((s) => [s.id, s.role]));
    const counted = observations.filter((o) => o.mode !== undefined && o.nodeCount !== undefined);
    const targets = counted.filter((o) => role.get(o.id) === "target");
    const sources = counted.filter((o) => role.get(o.id) === "source");
    if (d.phase === "separate") {
        return targets.filter((o) => o.nodeCount! > max).map((o) => `myid ${o.id}: holds ${o.nodeCount} znodes; in separate the targets are empty (emptyTargetMaxZnodes ${max})`);
    }
    const splitOff = d.firewall.length > 0 || d.servers.every((s) => s.role !== "target" || s.runningWith.members.every((m) => role.get(m.id) === "target"));
    if (!splitOff || targets.length === 0 || sources.length === 0) return [];
    const most = Math.max(...targets.map((o) => o.nodeCount!));
    const sourceMost = Math.max(...sources.map((o) => o.nodeCount!));
    if (most <= max && sourceMost > max) {
        return [`the targets hold at most ${most} znodes and the sources ${sourceMost}: in ${d.phase} the targets hold the migrated data`];
    }
    return [];
}
