// Mitosis with the observer join (issue 13, `joinAs: observer`): the targets join the source as
// observers. Observers never vote and never lead, so the source's quorum and leader never change,
// every target receives the data (no dormant target), and the joint phases have no split-brain
// window. The sources never list the targets: a ZooKeeper leader serves observers its own static
// config does not list (measured with 3.5.10 and 3.9.5: the observers sync, take writes and
// forward their clients' writes; the leader logs "Follower sid: 4 not in the current config" and
// serves it), so the sources never restart. Why each phase comes where it does:
//   separate          as the voter join. Back here (the abort) the targets leave together and
//                     start empty on T; the sources never changed.
//   joined            every target restarts, one at a time, onto S (voters) + T (observers) with
//                     `peerType=observer`, its data moved aside: it syncs from the source leader.
//   clients           the clients move to T's addresses; an observer forwards their writes to the
//                     source leader, so every write still lands in one history.
//   prepared          the split's read-only preflight (the planned observer lines pass it).
//   split             the firewall on the source hosts cuts T from S (tcp-reset, both directions):
//                     every observer loses the leader at one moment, with the same history, and no
//                     observer keeps serving the source's history once T has a leader;
//                     then all targets restart together as participants of T and elect their own
//                     leader (every one holds the data). The sources do not notice: observers count
//                     in no quorum.
//   source-restarted  nothing: the sources run S already (kept so both joins share the phases).
//   done              the firewall goes.
import { ensemblePath, type ConfigIssue } from "../config/errors";
import type { ServerSpec } from "../config/schema";
import type { PreflightCheck, Window } from "../steps";
import type { AppliedEnsemble, DesiredState, FirewallSplit, Membership, RestartGroup, ServerState } from "../types";
import { hostMembership, serversConnect } from "./common";
import { changedServers, closingSteps, hostSteps } from "./host-steps";
import { BACK, clientGroups, joinIssues, kafkaSteps, mitosis, MITOSIS_PHASES, preflightOf, SPLIT_WINDOW, type MitosisConfig, type MitosisPhase } from "./mitosis";
import { phaseIndexIn, type BackStep, type PlanContext, type Procedure, type RoomPlan } from "./procedure";

/** S: the sources; T: the targets as their own ensemble; S+T°: the sources' voters and every target as an observer. */
type ObserverMembers = "S" | "T" | "S+T°";

interface ObserverRow {
    running: { source: ObserverMembers; target: ObserverMembers };
    /** Targets' data is moved aside when they restart into another ensemble than they ran in. */
    wipe: boolean;
    firewall: boolean;
    clients: "old" | "new";
    preflight: boolean;
    /** How the targets' restarts into the phase group: one at a time (each syncs), or all at once (the split). */
    restarts: "one-at-a-time" | "together";
}

export const MITOSIS_OBSERVER_TABLE: Record<MitosisPhase, ObserverRow> = {
    separate: { running: { source: "S", target: "T" }, wipe: true, firewall: false, clients: "old", preflight: true, restarts: "together" },
    joined: { running: { source: "S", target: "S+T°" }, wipe: true, firewall: false, clients: "old", preflight: false, restarts: "one-at-a-time" },
    clients: { running: { source: "S", target: "S+T°" }, wipe: true, firewall: false, clients: "new", preflight: false, restarts: "one-at-a-time" },
    prepared: { running: { source: "S", target: "S+T°" }, wipe: true, firewall: false, clients: "new", preflight: true, restarts: "one-at-a-time" },
    split: { running: { source: "S", target: "T" }, wipe: false, firewall: true, clients: "new", preflight: false, restarts: "together" },
    "source-restarted": { running: { source: "S", target: "T" }, wipe: false, firewall: true, clients: "new", preflight: false, restarts: "together" },
    done: { running: { source: "S", target: "T" }, wipe: false, firewall: false, clients: "new", preflight: false, restarts: "together" },
};

const OBSERVER_BACK: Record<Exclude<MitosisPhase, "separate">, BackStep> = {
    ...BACK,
    joined: { allowed: true, reason: "an aborted join: the targets leave together and start empty on T; the sources never changed" },
    split: {
        allowed: false,
        reason: "the targets run their own ensemble with the migrating clients' writes since the split, which the sources never saw: as observers again they would lose them",
    },
    "source-restarted": { allowed: true, reason: "nothing changes on a host: the sources ran S already" },
};

/** The membership of S+T°: the sources' voter lines and every target as an observer. */
export function observerJoint(e: MitosisConfig): Membership {
    const s = hostMembership(e.source, e.ports, e.quorumListenOnAllIPs);
    const t = hostMembership(e.target, e.ports, e.quorumListenOnAllIPs);
    return { ...s, members: [...s.members, ...t.members.map((m) => ({ ...m, observer: true as const }))].sort((a, b) => a.id - b.id) };
}

export function observerDesired(e: MitosisConfig, phase: string = e.phase): DesiredState {
    phaseIndexIn("mitosis", MITOSIS_PHASES, phase);
    const row = MITOSIS_OBSERVER_TABLE[phase as MitosisPhase];
    const memberships: Record<ObserverMembers, Membership> = {
        S: hostMembership(e.source, e.ports, e.quorumListenOnAllIPs),
        T: hostMembership(e.target, e.ports, e.quorumListenOnAllIPs),
        "S+T°": observerJoint(e),
    };
    const server = (s: ServerSpec, role: "source" | "target", running: ObserverMembers, wipe: boolean): ServerState => ({
        id: s.id,
        role,
        host: s.host,
        sshHost: s.sshHost,
        hostKey: s.hostKey,
        location: "host",
        running: true,
        written: memberships[running],
        runningWith: memberships[running],
        dormant: false,
        wipeDataOnStart: wipe,
        decommissioned: false,
    });
    const servers = [...e.source.map((s) => server(s, "source", row.running.source, false)), ...e.target.map((t) => server(t, "target", row.running.target, row.wipe))];
    // The split's rules sit on the SOURCE hosts (the voter join puts them on the targets): the
    // source leader is the one server that sends the observers their data, so its rules cut every
    // observer at one moment, and they all hold the same history when they elect T's leader. Rules
    // on the targets, applied host by host, let one observer acknowledge its clients' writes that
    // another, cut earlier, never got; T could then elect the one without them (measured: 8 writes
    // lost in the first integration run).
    const firewall: FirewallSplit[] = row.firewall ? e.source.map((x) => ({ id: x.id, host: x.host, peers: e.target.map((t) => t.host) })) : [];
    const old = serversConnect(e.source, e.ports.client, e.chroot);
    const next = serversConnect(e.target, e.ports.client, e.newChroot ?? e.chroot);
    const current = row.clients === "new" ? next : old;
    const kafka = e.kafka ? { brokers: e.kafka.brokers, settings: e.kafka.settings, connect: current } : undefined;
    return { ensemble: e.name, procedure: "mitosis", phase, servers, firewall, clients: { old, next, current, ...(kafka ? { kafka } : {}) }, preflight: row.preflight };
}

/**
 * The targets' restarts: one at a time into the joint membership (each is gated on serving, that
 * is synced, before the next leaves T), all together out of it (at the split behind the firewall,
 * in an abort back to an empty T). Sources restart only when what they run changed by other
 * causes (a port, a spelling), one at a time, the leader last.
 */
export function observerRestartGroups(e: MitosisConfig, from: DesiredState, to: DesiredState, leader: PlanContext<MitosisConfig>["leader"]): RestartGroup[] {
    const changed = changedServers(from, to);
    const targets = changed.filter((s) => s.role === "target").map((s) => s.id);
    const leaders = new Set(leader.leaders);
    const sources = changed
        .filter((s) => s.role === "source")
        .sort((a, b) => Number(leaders.has(a.id)) - Number(leaders.has(b.id)) || a.id - b.id)
        .map((s): RestartGroup => ({ ids: [s.id], reason: leaders.has(s.id) ? "leader last" : leader.known ? "follower" : "fixed order" }));
    if (targets.length === 0) return sources;
    const joining = to.servers.some((s) => s.role === "target" && s.runningWith.members.some((m) => m.observer));
    const t: RestartGroup[] = joining
        ? targets.map((id) => ({ ids: [id], reason: "target joins as an observer" }))
        : [{ ids: targets, reason: from.firewall.length > 0 || to.firewall.length > 0 ? "all targets at once: behind the firewall they elect their own leader" : "targets leave together and start on T" }];
    // Leaving the joint membership the targets go first (the sources never listed them).
    return [...t, ...sources];
}

function preflight(e: MitosisConfig, s: ServerState, phase: MitosisPhase): PreflightCheck {
    const check = preflightOf(e, s, phase);
    // The split's rules go on the sources: they need iptables and no leftover chain too.
    const firewalled = s.role === "source" ? { requireCommands: [...new Set([...check.requireCommands, "iptables"])], noLeftoverSplit: true } : {};
    if (phase !== "prepared") return { ...check, ...firewalled };
    // The targets observe the source: their planned observer lines (and peerType) pass the check.
    return { ...check, ...firewalled, observers: { ids: e.target.map((t) => t.id), observer: s.role === "target" } };
}

function plan(ctx: PlanContext<MitosisConfig>): RoomPlan {
    const { e, from, to } = ctx;
    const warnings: string[] = [];
    const restartOrder = observerRestartGroups(e, from, to, ctx.leader);
    const windows: Window[] = [];
    const applied = to.firewall.some((f) => !from.firewall.some((x) => x.id === f.id));
    const isSplit = applied && restartOrder.some((g) => g.ids.length > 1);
    if (isSplit) windows.push(SPLIT_WINDOW);
    const backward = MITOSIS_PHASES.indexOf(to.phase as MitosisPhase) < MITOSIS_PHASES.indexOf(from.phase as MitosisPhase);
    const steps = hostSteps({
        ensemble: e.name,
        settings: e.host,
        spacingSeconds: e.spacingSeconds,
        from,
        to,
        groups: restartOrder,
        firewallWindows: isSplit ? [SPLIT_WINDOW] : [],
        groupWindows: (g) => (g.ids.length > 1 && applied ? [SPLIT_WINDOW] : []),
        deadmanSeconds: e.splitDeadmanSeconds,
        ...(backward ? {} : { preflight: (s: ServerState) => preflight(e, s, to.phase as MitosisPhase) }),
    });
    const brokerOrder = kafkaSteps(ctx, steps, warnings);
    steps.push(...closingSteps(from, to, clientGroups));
    return { steps, restartOrder, windows, warnings, brokerOrder };
}

function transitionIssues(e: MitosisConfig, a: AppliedEnsemble | undefined): ConfigIssue[] {
    const issues = joinIssues(e, a);
    if (issues.length === 0 && a?.phase === "split" && e.phase === "prepared") {
        issues.push({ path: ensemblePath(e, ".phase"), reason: `back from "split" is refused with joinAs: observer: ${OBSERVER_BACK.split.reason}` });
    }
    return issues;
}

/** The mitosis room with the observer join: the same phases, config and component, its own table and plan. */
export const mitosisObserver: Procedure<MitosisConfig> = {
    ...mitosis,
    back: OBSERVER_BACK,
    desired: (e, at) => observerDesired(e, at.phase),
    transitionIssues,
    plan,
};
