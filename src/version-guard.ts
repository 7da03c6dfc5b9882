// The version guard of the preview: an update that restarts servers into another membership is
// refused when a server of the ensemble runs a release with a known bug of rolling membership
// changes (src/versions.ts: ZOOKEEPER-3829/3830). The versions are what `srvr` answered at preview
// (LeaderInfo.versions); a version that could not be read is a warning, not a refusal (the
// preflight reads it again on each host that runs a server).
import { ensemblePath, type ConfigIssue } from "./config/errors";
import { sameMembership } from "./format/zoo-cfg";
import type { EnsemblePlan } from "./model";
import { serversOf, type EnsembleConfig } from "./procedures/registry";
import type { LeaderInfo } from "./steps";
import type { ServerId } from "./types";
import { bugText, isAffected, ROLLING_MEMBERSHIP_BUG, type KnownBug } from "./versions";

/** The servers this update restarts into a membership other than the one they run now. */
export function membershipRestarts(p: Pick<EnsemblePlan, "current" | "desired" | "plan">): ServerId[] {
    const restarting = new Set(p.plan.restartOrder.flatMap((g) => g.ids));
    const now = new Map(p.current.servers.map((s) => [s.id, s]));
    return p.desired.servers
        .filter((s) => restarting.has(s.id) && s.running)
        .filter((s) => {
            const before = now.get(s.id);
            return !before || !sameMembership(before.runningWith, s.runningWith);
        })
        .map((s) => s.id);
}

export interface VersionGuard {
    /** Refusals: a membership change on an affected release. */
    issues: ConfigIssue[];
    /** Warnings by ensemble name: versions that could not be read. */
    warnings: Map<string, string[]>;
}

/**
 * Checks every planned update against the versions read at preview. `probed` is undefined when the
 * probe is off (every version unknown).
 */
export function versionGuard(
    ensembles: EnsembleConfig[],
    plans: Map<string, Pick<EnsemblePlan, "current" | "desired" | "plan">>,
    probed: Record<string, LeaderInfo> | undefined,
    bug: KnownBug = ROLLING_MEMBERSHIP_BUG,
): VersionGuard {
    const out: VersionGuard = { issues: [], warnings: new Map() };
    for (const e of ensembles) {
        const p = plans.get(e.name);
        if (!p) continue;
        const changes = membershipRestarts(p);
        if (changes.length === 0) continue;
        const info = probed?.[e.name];
        const versions = info?.versions ?? {};
        const ids = serversOf(e).map((s) => s.id);
        const affected = ids.filter((id) => versions[id] !== undefined && isAffected(bug, versions[id]) === true);
        const unknown = ids.filter((id) => versions[id] === undefined || isAffected(bug, versions[id]) === undefined);
        const step = `this step restarts ${changes.length === 1 ? "server" : "servers"} ${changes.join(", ")} into a new membership`;
        if (affected.length > 0) {
            out.issues.push({
                path: ensemblePath(e, ".phase"),
                reason:
                    `${step}, and ${affected.map((id) => `server ${id} runs ZooKeeper ${versions[id]}`).join(", ")} (read with srvr): ` +
                    `${bugText(bug)} (a rolling upgrade keeps the membership), then take this step; nothing was changed`,
            });
        } else if (unknown.length > 0) {
            const why = probed === undefined ? "zkmigrate:leaderProbe is off" : "no answer to srvr from here";
            const list = unknown.map((id) => (versions[id] !== undefined ? `${id} (${versions[id]})` : String(id))).join(", ");
            const warnings = out.warnings.get(e.name) ?? [];
            warnings.push(
                `${e.name}: ${step}; the ZooKeeper version of ${unknown.length === 1 ? "server" : "servers"} ${list} is unknown (${why}). ` +
                    `${bugText(bug)} (the first phase's preflight checks it on each server that runs then)`,
            );
            out.warnings.set(e.name, warnings);
        }
    }
    return out;
}
