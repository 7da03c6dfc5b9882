// The transition from the applied phase to the requested one, as the ordered steps that
// `pulumi up` will take: the components declare exactly this order (dependsOn chains), and the
// safety check simulates exactly these steps.
import type { EnsembleConfig } from "./config";
import { phaseIndex } from "./phases";
import { formatConnect, sameMembership } from "./procedures/common";
import type { ConnectString, DesiredState, RestartGroup, ServerId, ServerState } from "./types";

/** A client group that must keep being served, and where it connects. */
export interface ClientGroup {
    name: string;
    connect: ConnectString;
}

/** A known, declared stretch in which a client group may go without a quorum. */
export interface Window {
    group: string;
    reason: string;
}

export type Step =
    | { kind: "firewall-apply"; ids: ServerId[]; windows: Window[] }
    | { kind: "services-create" }
    | { kind: "restart"; group: RestartGroup; windows: Window[] }
    | { kind: "cutover"; ids: ServerId[] }
    | { kind: "firewall-remove"; ids: ServerId[] }
    | { kind: "clients-switch"; group: string; to: ConnectString }
    // Block & copy: no server changes, only copies and the clients' own commands.
    | { kind: "copy"; mode: "full" | "incremental" }
    | { kind: "clients-block"; hosts: string[] }
    | { kind: "clients-unblock"; hosts: string[] }
    | { kind: "clients-repoint"; to: ConnectString };

export interface Plan {
    ensemble: string;
    from: string;
    to: string;
    steps: Step[];
    /** The restart groups in order (a subset of the steps), for components and reports. */
    restartOrder: RestartGroup[];
    /** Servers whose written config changes in this step. */
    configChanges: ServerId[];
    windows: Window[];
    warnings: string[];
}

/** What pulumi could read of the servers' roles, with `srvr`, from where it runs. */
export interface LeaderInfo {
    /** Servers that answered `Mode: leader`. */
    leaders: ServerId[];
    /** False when no server could be asked (fixed order then). */
    known: boolean;
    /** Why the leader is unknown, for the warning. */
    detail?: string;
}

export const UNKNOWN_LEADER: LeaderInfo = { leaders: [], known: false, detail: "not probed" };

/** The client groups of an ensemble in a desired state. */
export function clientGroups(d: DesiredState): ClientGroup[] {
    if (d.procedure === "block-copy") {
        // The clients are stopped on purpose while blocked, and move between two ensembles that
        // never shared a leader: what keeps their writes is the verified final copy taken while
        // they were stopped (the phase order), not a quorum. planBlockCopy gives those steps.
        return [];
    }
    if (d.procedure === "mitosis") {
        // The shared ensemble's other users stay on the source; the migrating clients follow `current`.
        return [
            { name: "source-users", connect: d.clients.old },
            { name: "migrating", connect: d.clients.current },
        ];
    }
    return [{ name: "clients", connect: d.clients.current }];
}

function needsRestart(a: ServerState, b: ServerState): boolean {
    if (b.location === "pod" || a.location === "pod") {
        return false; // moving into a pod is a cutover step, not a host restart
    }
    if (a.running !== b.running) {
        return true;
    }
    return b.running && !sameMembership(a.runningWith, b.runningWith);
}

/**
 * Orders the servers that restart: mitosis targets first (they join or leave without touching the
 * source's quorum), then followers, the leader last (one election instead of two). At the split
 * all targets restart together: they must elect their own leader at once.
 */
export function restartGroups(
    e: EnsembleConfig,
    from: DesiredState,
    to: DesiredState,
    leader: LeaderInfo,
    warnings: string[],
): RestartGroup[] {
    const before = new Map(from.servers.map((s) => [s.id, s]));
    const changed = to.servers.filter((s) => needsRestart(before.get(s.id)!, s));
    if (changed.length === 0) {
        return [];
    }
    if (e.procedure === "mitosis" && from.phase === "prepared" && to.phase === "split") {
        const targets = changed.filter((s) => s.role === "target").map((s) => s.id);
        const rest = changed.filter((s) => s.role !== "target");
        return [
            { ids: targets, reason: "all targets at once, dormant ones included: behind the firewall they elect their own leader" },
            ...rest.map((s) => ({ ids: [s.id], reason: "source" })),
        ];
    }
    if (sourceRestartWindow(e, from, to) && changed.every((s) => s.role === "source")) {
        return sourcesWithoutSlack(e, changed, leader, warnings);
    }
    const leaders = new Set(leader.leaders);
    if (!leader.known) {
        warnings.push(
            `${e.name}: the current leader could not be read with srvr from here (${leader.detail ?? "unknown"}); ` +
                "restarting in myid order, the highest last (ZooKeeper's election favours the highest myid), " +
                "or set the ensemble's `leader` in the config",
        );
    }
    // Joining: targets first, the source untouched until they follow its leader. Leaving the
    // joint ensemble (stepping back to `separate`): the sources first drop the targets from their
    // membership, so that no source can follow a target ensemble that re-forms with their data.
    const leaving = e.procedure === "mitosis" && from.phase === "joined" && to.phase === "separate";
    const rank = (s: ServerState): number => {
        if (s.role === "target") return (s.running ? 1 : 0) + (leaving ? 4 : 0); // dormant stops before joins
        if (leaders.has(s.id)) return 3;
        return 2;
    };
    const ordered = [...changed].sort((a, b) => rank(a) - rank(b) || a.id - b.id);
    return ordered.map((s) => ({
        ids: [s.id],
        reason:
            s.role === "target"
                ? s.running
                    ? "target"
                    : "dormant target stops"
                : leaders.has(s.id)
                  ? "leader last"
                  : leader.known
                    ? "follower"
                    : "fixed order",
    }));
}

/**
 * `split` -> `source-restarted` without slack: the sources run S+T' with T' cut off, so any
 * source that stops takes the quorum with it, as long as the leader counts acks in S+T'. A
 * leader counts them in its own membership only: once the leader runs S-only, each further
 * restart leaves n-1 of n and the source keeps serving. So the leader goes first, not last. The
 * highest myid must be that leader (with equal zxids the sources elect the highest myid): when
 * the current leader is another source, it restarts first, the election makes the highest myid
 * leader, and that one restarts next. Every quorum loss is then a leader restart, one in the
 * usual case (after the split the sources elected the highest myid).
 */
function sourcesWithoutSlack(e: EnsembleConfig, changed: ServerState[], leader: LeaderInfo, warnings: string[]): RestartGroup[] {
    const ids = changed.map((s) => s.id);
    const highest = Math.max(...ids);
    const current = leader.known ? leader.leaders.find((id) => ids.includes(id)) : undefined;
    if (!leader.known) {
        warnings.push(
            `${e.name}: the current leader could not be read with srvr from here (${leader.detail ?? "unknown"}); ` +
                `restarting the highest myid (${highest}) first, as the leader usually is after the split ` +
                "(or set the ensemble's `leader` in the config)",
        );
    }
    const first: RestartGroup[] =
        current !== undefined && current !== highest
            ? [
                  { ids: [current], reason: "leader first: the election after it makes the highest myid leader" },
                  { ids: [highest], reason: "the new leader: back on S only, it counts acks in S" },
              ]
            : [{ ids: [highest], reason: current === highest ? "leader first: back on S only, it counts acks in S" : "highest myid first (leader unknown)" }];
    const done = new Set(first.flatMap((g) => g.ids));
    const rest = ids.filter((id) => !done.has(id)).sort((a, b) => b - a);
    return [...first, ...rest.map((id) => ({ ids: [id], reason: "follower: the leader counts S only, n-1 of n keep the quorum" }))];
}

/** The steps from `from` to `to`, in the order the components run them. */
export function planTransition(e: EnsembleConfig, from: DesiredState, to: DesiredState, leader: LeaderInfo = UNKNOWN_LEADER): Plan {
    if (e.procedure === "block-copy") {
        return planBlockCopy(e, from, to);
    }
    const warnings: string[] = [];
    const steps: Step[] = [];
    const windows: Window[] = [];

    if (to.kubernetes?.services && !from.kubernetes?.services) {
        steps.push({ kind: "services-create" });
    }

    const fwBefore = new Set(from.firewall.map((f) => f.id));
    const fwAfter = new Set(to.firewall.map((f) => f.id));
    const applied = to.firewall.filter((f) => !fwBefore.has(f.id)).map((f) => f.id);
    const removed = from.firewall.filter((f) => !fwAfter.has(f.id)).map((f) => f.id);
    const groups = restartGroups(e, from, to, leader, warnings);

    // The split: the migrating clients lose their quorum from the firewall until the targets
    // have elected their own leader. This is the one window the seed accepts.
    const splitWindow: Window = {
        group: "migrating",
        reason: "the split: from the firewall until all targets have restarted and elected their own leader",
    };
    if (applied.length > 0) {
        const isSplit = groups.some((g) => g.ids.length > 1);
        steps.push({ kind: "firewall-apply", ids: applied, windows: isSplit ? [splitWindow] : [] });
        if (isSplit) windows.push(splitWindow);
    }

    const sourceWindow = sourceRestartWindow(e, from, to);
    if (sourceWindow) {
        windows.push(sourceWindow);
        warnings.push(`${e.name}: ${sourceWindow.reason}`);
    }
    for (const g of groups) {
        const w: Window[] = [];
        if (g.ids.length > 1 && applied.length > 0) w.push(splitWindow);
        const roles = g.ids.map((id) => to.servers.find((s) => s.id === id)!.role);
        if (sourceWindow && roles.includes("source")) w.push(sourceWindow);
        steps.push({ kind: "restart", group: g, windows: w });
    }

    const podsBefore = new Set(from.servers.filter((s) => s.location === "pod").map((s) => s.id));
    const newPods = to.servers.filter((s) => s.location === "pod" && !podsBefore.has(s.id)).map((s) => s.id);
    if (newPods.length > 0) {
        // All hosts named in one update stop before their pods start (the components do not chain
        // them): cutting over two servers at once takes two down together.
        steps.push({ kind: "cutover", ids: newPods });
    }

    // Removed resources are deleted last in a Pulumi update: firewall removal comes after all else.
    if (removed.length > 0) {
        steps.push({ kind: "firewall-remove", ids: removed });
    }

    const fromGroups = new Map(clientGroups(from).map((g) => [g.name, g]));
    for (const g of clientGroups(to)) {
        const prev = fromGroups.get(g.name);
        if (prev && formatConnect(prev.connect) !== formatConnect(g.connect)) {
            steps.push({ kind: "clients-switch", group: g.name, to: g.connect });
        }
    }

    const fromById = new Map(from.servers.map((s) => [s.id, s]));
    const configChanges = to.servers
        .filter((s) => s.location === "host" && !sameMembership(fromById.get(s.id)!.written, s.written))
        .map((s) => s.id);
    return { ensemble: e.name, from: from.phase, to: to.phase, steps, restartOrder: groups, configChanges, windows, warnings };
}

/** Block & copy steps, in the order the component chains them. A new ensemble plans its precopy. */
function planBlockCopy(e: Extract<EnsembleConfig, { procedure: "block-copy" }>, from: DesiredState, to: DesiredState): Plan {
    const a = from.blockCopy!;
    const b = to.blockCopy!;
    const hosts = e.clients.hosts.map((h) => h.host);
    const steps: Step[] = [];
    const fresh = from.phase === to.phase && to.phase === "precopy";
    const forward = phaseIndex("block-copy", to.phase) > phaseIndex("block-copy", from.phase);
    if (fresh || (forward && b.copy !== a.copy && b.copy !== "none")) steps.push({ kind: "copy", mode: b.copy === "incremental" ? "incremental" : "full" });
    if (b.clientsBlocked && !a.clientsBlocked) steps.unshift({ kind: "clients-block", hosts });
    if (!b.clientsBlocked && a.clientsBlocked && b.clientsOn === "source") steps.push({ kind: "clients-unblock", hosts });
    if (b.clientsOn !== a.clientsOn) steps.push({ kind: "clients-repoint", to: to.clients.current });
    const warnings =
        !b.clientsBlocked && a.clientsBlocked && b.clientsOn === "source" && !e.clients.unblock
            ? [`${e.name}: stepping back to "${to.phase}" leaves the clients stopped: no clients.unblock command is configured`]
            : [];
    return { ensemble: e.name, from: from.phase, to: to.phase, steps, restartOrder: [], configChanges: [], windows: [], warnings };
}

/**
 * After the split the sources still run the joint membership: n sources of n+|T'| voters, the
 * targets cut off. When n-1 sources are no majority of that, each source restart costs the source
 * its quorum for the length of the restart. The seed accepts this; we declare it so that the
 * operator sees it in the preview, and the safety check refuses any loss that is not declared.
 */
function sourceRestartWindow(e: EnsembleConfig, from: DesiredState, to: DesiredState): Window | undefined {
    if (e.procedure !== "mitosis" || to.phase !== "source-restarted" || from.phase !== "split") {
        return undefined;
    }
    const n = e.source.length;
    const voters = n + e.active.length;
    if (2 * (n - 1) > voters) {
        return undefined;
    }
    return {
        group: "source-users",
        reason:
            `after the split the sources run the joint membership (${n} of ${voters} voters, the targets cut off), ` +
            `so a source restart leaves ${n - 1} of ${voters}: the source has no quorum until the restarted server is back ` +
            "(seconds; sessions survive if their timeout is longer). The leader restarts first: back on its S-only " +
            "membership it counts acks in S, so the later restarts keep the quorum",
    };
}

export function describePlan(p: Plan): string[] {
    return p.steps.map((s) => {
        switch (s.kind) {
            case "firewall-apply":
                return `firewall split on ${s.ids.join(", ")}`;
            case "services-create":
                return "create the per-server Services and Endpoints";
            case "restart":
                return `restart ${s.group.ids.join(" + ")} (${s.group.reason})`;
            case "cutover":
                return `cut over ${s.ids.join(", ")} into pods`;
            case "firewall-remove":
                return `remove the firewall split on ${s.ids.join(", ")}`;
            case "clients-switch":
                return `${s.group} connect to ${formatConnect(s.to)}`;
            case "copy":
                return s.mode === "full" ? "full copy while the clients run (precopy)" : "incremental copy of what changed since the precopy, verified (clients blocked)";
            case "clients-block":
                return `block the clients on ${s.hosts.join(", ")}`;
            case "clients-unblock":
                return `unblock the clients on ${s.hosts.join(", ")}`;
            case "clients-repoint":
                return `clients switched to ${formatConnect(s.to)}`;
        }
    });
}
