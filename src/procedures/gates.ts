// No half-applied step: the gates of multi-host steps and the split's dead man's switch.
//
// A step changes several hosts when a restart group holds more than one server (the split's
// targets-together restart) or when the firewall goes up (one rule set per target host). A host
// lost between two of those changes leaves the step half applied: the split's firewall up on the
// reachable targets and the restarts that wait for every firewall never run, so the migrated
// clients (already on the targets' addresses) have no service until someone repairs the host.
//
// 1. Gates. Every host such a step changes gets a read-only gate (`gate-<myid>`: reachable over
//    SSH, root, ZooKeeper serving, iptables usable, the switch armable), and every change of the
//    step waits for ALL gates, not only its own host's. The gates run on every attempt (the
//    component replaces them per `pulumi up`), so a second `pulumi up` checks every host again
//    before it changes anything.
//
// 2. The dead man's switch (as iptables-apply does). At the split the firewall only makes sense
//    with its partner, the targets' restart onto T. Each target's `split-arm-<myid>` arms a
//    switch on its host (a background process in its own session, owned by its pid file) and
//    then puts the rules up; the host's `firewall-<myid>` step, after every arm and before any
//    restart of the split (each waits for every firewall), commits the split on that host (checks
//    the switch and the rules; the switch stays armed). Times are counted from the
//    attempt's start A (the machine that runs pulumi; the hosts' clocks within 15 s of it):
//      - restarts may commit until A + commitBy, commitBy = bound - R - 30 s, where R is the
//        longest a restart step runs after its commit (service command bound + 10 s + health gate);
//      - the switch fires at A + bound: unless committed, it asks the other targets' srvr for
//        10 s; if one of them serves, the rules stay ("kept"), otherwise it lifts them ("lifted")
//        and the server, which still runs the joint membership S+T', rejoins the source.
//
// 3. The client fence (src/scripts/fence.ts). Before any arm, every running target that the split
//    cuts off fences its client port (loopback only; split-fence), and once every one is fenced,
//    catches up with the sources' zxid (split-catchup): when the rules go up, every target holds
//    every write any target acknowledged, so whichever majority of T elects has them all. Its
//    restart into T lifts the fence; a failed catch-up lifts its own; a timer lifts it at the deadline.
//
// Why a host lost mid-step leaves both ensembles serving and nothing acknowledged lost. The
// sources never change at the split, and S is a strict majority of S+T' whatever the targets do:
// the source serves throughout. For the migrating clients (on the targets' addresses) the states
// when a switch fires on target h (its restart never came) are:
//   a. No target committed (a firewall or arm step failed, so no restart ran): the other targets
//      are cut off too (not serving) or were never cut off (serving in the joint ensemble). If none
//      serves, h lifts its rules and serves the joint ensemble again; if one serves, that one
//      serves the migrating clients and h keeps its rules. No server runs T, so there is one
//      history.
//   a'. Some hosts committed (their firewall steps ran) but another's arm or firewall step failed,
//      so no restart ran (every restart waits for every firewall step): no server runs T; every
//      switch, the committed hosts' too, acts as in a: none serves, so all lift and catch up.
//   b. Some targets committed and restarted onto T. By the deadline their restarts have ended
//      (commit window + R < bound): either T formed (a majority of T restarted; they serve, h
//      sees it and keeps its rules: h stays cut off, never serving the joint ensemble again, and
//      joins T on the next attempt), or T cannot form in this attempt (fewer than a majority run
//      T; nothing else restarts until the next `pulumi up`, whose gates and arms come first): h
//      lifts and serves the joint ensemble, the restarted targets wait unserving. When the next
//      attempt completes T, h's history (the joint ensemble's, the newest) is the one T elects,
//      unless the restarted targets and the empty dormant one are a majority of T by themselves
//      (voter join, m = 3): then T may form without h and elect the older history (residual).
//   A committed host whose restart never came is lifted like any other when T does not serve at
//   the deadline (the commit does not stop the switch): kept cut off, its history would be the
//   cut's, and a later T of it and an empty or another stale target would outvote h's newer one
//   (the host-lost rehearsal lost 1,759 acknowledged writes that way when commits stopped the
//   switch).
//   In no state can a target serve the joint ensemble while T has a quorum: a migrating client
//   never sees two histories, so what was acknowledged stays. A lifted host's restart refuses to
//   commit (its firewall step finds "lifted"): the next `pulumi up` gates and arms every target again
//   (split-arm re-applies the rules on every attempt) before any restart.
// Residual risks, stated: a T that formed but had no leader for the whole 10 s probe, a restart
// that outlives its bounds (a JVM that starts after its health gate gave up), clocks further
// apart than 15 s (the gate and the arm refuse those they can see).
import { hostTarget, type Catchup, type Deadman, type GateCheck, type Step } from "../steps";
import { targetFingerprint } from "../scripts/fence";
import type { DesiredState, HostSettings, RestartGroup, ServerId, ServerState } from "../types";
import { serviceTimeout } from "../scripts/service";

/** How long a switch asks the other targets before it lifts the rules. */
export const DEADMAN_PROBE_SECONDS = 10;
/** Slack between the commit window's end plus a restart and the deadline: clocks (2 x 15 s). */
export const DEADMAN_MARGIN_SECONDS = 30;
/** The least time the gates, arms and firewalls may take before the restarts commit. */
export const DEADMAN_MIN_WINDOW_SECONDS = 30;
/** The default time for them. */
export const DEADMAN_DEFAULT_WINDOW_SECONDS = 120;

/** The longest a target's restart step runs after its commit: the service command (+10 s to kill it) and the health gate. */
export function restartBudgetSeconds(host: HostSettings): number {
    return serviceTimeout(host) + 10 + host.healthTimeoutSeconds;
}

/** The smallest bound that leaves the restarts their time (and the default, 90 s more). */
export function minDeadmanSeconds(host: HostSettings): number {
    return DEADMAN_MIN_WINDOW_SECONDS + restartBudgetSeconds(host) + DEADMAN_MARGIN_SECONDS;
}

export function defaultDeadmanSeconds(host: HostSettings): number {
    return DEADMAN_DEFAULT_WINDOW_SECONDS + restartBudgetSeconds(host) + DEADMAN_MARGIN_SECONDS;
}

/** Why a configured bound is refused (undefined: fine). */
export function deadmanIssue(seconds: number, host: HostSettings): string | undefined {
    const min = minDeadmanSeconds(host);
    if (!Number.isInteger(seconds) || seconds < min) {
        return (
            `${seconds} s is too short: a target's restart may run ${restartBudgetSeconds(host)} s after it commits the split ` +
            `(the service command's bound max(120, healthTimeoutSeconds) + 10 s, and the health gate healthTimeoutSeconds ${host.healthTimeoutSeconds}), ` +
            `plus ${DEADMAN_MARGIN_SECONDS} s for clocks and at least ${DEADMAN_MIN_WINDOW_SECONDS} s for the gates and firewalls: at least ${min} s ` +
            `(default ${defaultDeadmanSeconds(host)} s); a shorter bound would lift the split under a restart that may still succeed`
        );
    }
    if (seconds > 86400) return `${seconds} s is more than a day: the migrated clients would wait that long for a lost host`;
    return undefined;
}

export interface GateArgs {
    ensemble: string;
    settings: HostSettings;
    from: DesiredState;
    to: DesiredState;
    groups: RestartGroup[];
    /** Targets whose firewall goes up in this update. */
    firewallApplied: ServerId[];
    /** splitDeadmanSeconds (default: defaultDeadmanSeconds). */
    deadmanSeconds?: number;
    /** What every gate waits for (the preflights). */
    after: string[];
}

export interface Gates {
    /** The gate and arm steps, in order (gates first). */
    steps: Step[];
    /** Ids of every gate: each change of a multi-host step waits for all of them. */
    gates: string[];
    /** Ids of every arm: the firewalls and the restarts wait for all of them. */
    arms: string[];
    /** Ids of every client fence and catch-up step (src/scripts/fence.ts): every arm waits for all of them. */
    fences: string[];
    /** Servers whose client port the split fences, with the membership they join (targetFingerprint): their restart lifts the fence and leaves that marker. */
    fenced: Map<ServerId, string>;
    /** Servers on whose host the firewall step commits the split (the armed hosts). */
    commit: Set<ServerId>;
    /** Servers whose steps change as part of a multi-host step (their restarts wait for every gate). */
    hosts: Set<ServerId>;
}

const targetOf = (s: ServerState) => hostTarget(s);

/**
 * The gates of this update's multi-host steps and, at the split (a firewall going up on hosts
 * whose servers restart in the same update), the arms of the dead man's switch.
 */
export function multiHostGates(a: GateArgs): Gates {
    const onHost = new Map(a.to.servers.filter((s) => s.location === "host").map((s) => [s.id, s]));
    const before = new Map(a.from.servers.map((s) => [s.id, s]));
    const multi = a.groups.filter((g) => g.ids.length > 1);
    const restarting = new Set(a.groups.flatMap((g) => g.ids));
    const hosts = new Set<ServerId>([...a.firewallApplied, ...multi.flatMap((g) => g.ids)].filter((id) => onHost.has(id)));
    const out: Gates = { steps: [], gates: [], arms: [], fences: [], fenced: new Map(), commit: new Set(), hosts };
    if (hosts.size === 0) return out;

    // The split: a firewall that goes up on a host whose server restarts in the same update (the
    // voter join: the rules on the targets). Or, the observer join, a firewall that goes up on
    // hosts whose servers stay (the sources) while the servers it cuts off restart (the targets):
    // those hosts are armed, the targets are the partners their switches ask, and every target's
    // restart waits for every source's commit.
    const firewallOf = new Map(a.to.firewall.map((f) => [f.id, f]));
    const targetSide = a.firewallApplied.filter((id) => restarting.has(id) && onHost.has(id));
    const cutOff = (id: ServerId) => [...restarting].filter((r) => r !== id && onHost.has(r) && (firewallOf.get(id)?.peers ?? []).includes(onHost.get(r)!.host));
    const sourceSide = targetSide.length > 0 ? [] : a.firewallApplied.filter((id) => onHost.has(id) && !restarting.has(id) && cutOff(id).length > 0);
    const armed = [...targetSide, ...sourceSide];
    const bound = a.deadmanSeconds ?? defaultDeadmanSeconds(a.settings);
    const deadmanOf = (id: ServerId): Deadman => ({
        seconds: bound,
        commitBySeconds: bound - restartBudgetSeconds(a.settings) - DEADMAN_MARGIN_SECONDS,
        partners: (sourceSide.includes(id) ? cutOff(id) : armed.filter((x) => x !== id)).map((x) => ({ address: onHost.get(x)!.host, port: a.settings.clientPort })),
        probeSeconds: DEADMAN_PROBE_SECONDS,
    });
    const guards = [a.firewallApplied.length > 0 ? "the firewall split" : "", multi.length > 0 ? `restarts of ${multi.map((g) => g.ids.join("+")).join(", ")} together` : ""].filter((x) => x).join(" and ");

    const ids = [...hosts].sort((x, y) => x - y);
    for (const id of ids) {
        const s = onHost.get(id)!;
        const fw = a.firewallApplied.includes(id) ? firewallOf.get(id) : undefined;
        const gate: GateCheck = {
            guards,
            // A server that runs now must serve now (a dormant target about to start need not).
            serving: Boolean(before.get(id)?.running && before.get(id)?.location === "host"),
            ...(fw ? { firewallPeers: fw.peers } : {}),
            ...(armed.includes(id) ? { deadman: deadmanOf(id) } : {}),
        };
        const gid = `gate-${id}`;
        out.steps.push({ id: gid, kind: "gate", after: a.after, target: targetOf(s), server: id, settings: a.settings, ensemble: a.ensemble, gate });
        out.gates.push(gid);
    }
    // The client fence (src/scripts/fence.ts): every running target that the split cuts off stops
    // acknowledging (its fence), then, once all are fenced, catches up with the sources.
    if (armed.length > 0) {
        const cut = targetSide.length > 0 ? targetSide : [...new Set(sourceSide.flatMap(cutOff))];
        const runs = (id: ServerId) => before.get(id)?.running === true && before.get(id)?.location === "host";
        const fenced = cut.filter(runs).sort((x, y) => x - y);
        const sources = a.from.servers.filter((s) => runs(s.id) && !cut.includes(s.id)).sort((x, y) => x.id - y.id);
        if (sources.length > 0) {
            for (const id of fenced) {
                const fid = `split-fence-${id}`;
                const target = targetFingerprint(onHost.get(id)!.runningWith);
                out.steps.push({ id: fid, kind: "split-fence", after: [...out.gates], target: targetOf(onHost.get(id)!), server: id, settings: a.settings, ensemble: a.ensemble, fence: { seconds: bound, target } });
                out.fences.push(fid);
                out.fenced.set(id, target);
            }
            const fences = [...out.fences];
            for (const id of fenced) {
                const cid = `split-catchup-${id}`;
                const catchup: Catchup = { sources: sources.map((s) => ({ address: s.host, port: a.settings.clientPort })), target: out.fenced.get(id)! };
                out.steps.push({ id: cid, kind: "split-catchup", after: [...out.gates, ...fences], target: targetOf(onHost.get(id)!), server: id, settings: a.settings, ensemble: a.ensemble, catchup });
                out.fences.push(cid);
            }
        }
    }
    for (const id of armed) {
        const s = onHost.get(id)!;
        const aid = `split-arm-${id}`;
        out.steps.push({ id: aid, kind: "split-arm", after: [...out.gates, ...out.fences], target: targetOf(s), server: id, settings: a.settings, ensemble: a.ensemble, peers: firewallOf.get(id)!.peers, deadman: deadmanOf(id) });
        out.arms.push(aid);
        out.commit.add(id);
    }
    return out;
}
