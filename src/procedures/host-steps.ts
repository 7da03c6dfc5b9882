// The host side of a plan, shared by the procedures whose servers run on hosts: per server a
// preflight (in the phases that have one), a firewall split where the phase has one, and a restart
// step whose effect is a restart exactly when what the server runs changes. The restart step
// writes the server's config right before it restarts it: a config is never written ahead of its
// restart, so a server that crashes and restarts on its own comes back on what it ran.
//
// What a server runs now comes from the applied record (src/config/applied.ts runningState), so a
// change from any cause (a phase, a port, a host's spelling) is a restart in the planned order.
// Steps without an effect are frozen: an edit of a setting that needs no restart (spacing, timeouts,
// service commands) changes their text, and must not make Pulumi run them.
import { formatConnectString } from "../format/connect-string";
import { sameMembership } from "../format/zoo-cfg";
import type { Membership } from "../types";
import { hostTarget, type ClientGroup, type Effect, type PreflightCheck, type Step, type Window } from "../steps";
import type { DesiredState, HostSettings, RestartGroup, ServerState } from "../types";
import { multiHostGates } from "./gates";

/** Whether a server's running state changes between two desired states (a host restart or stop). */
export function needsRestart(a: ServerState, b: ServerState): boolean {
    if (b.location === "pod" || a.location === "pod") {
        return false; // moving into a pod is a cutover step, not a host restart
    }
    if (a.running !== b.running) {
        return true;
    }
    return b.running && !sameMembership(a.runningWith, b.runningWith);
}

/** Whether two memberships list the same server ids (whatever their addresses, ports or spelling). */
export function sameMemberIds(a: Membership, b: Membership): boolean {
    const ids = (m: Membership) => m.members.map((x) => x.id).sort((x, y) => x - y).join(",");
    return ids(a) === ids(b);
}

/**
 * Whether a restart of `s` (from `before`) wipes its data: only when the phase says so AND the
 * server joins another ensemble than the one it ran in (it was stopped, or its membership lists
 * other servers). A restart for an edited port or spelling never wipes: the data is the ensemble's.
 */
export function wipesOnRestart(before: ServerState, s: ServerState): boolean {
    return s.wipeDataOnStart && s.running && (!before.running || !sameMemberIds(before.runningWith, s.runningWith));
}

/** The servers whose running state changes, in `to`'s order. */
export function changedServers(from: DesiredState, to: DesiredState): ServerState[] {
    const before = new Map(from.servers.map((s) => [s.id, s]));
    return to.servers.filter((s) => needsRestart(before.get(s.id)!, s));
}

export interface HostStepsArgs {
    ensemble: string;
    settings: HostSettings;
    spacingSeconds: number;
    from: DesiredState;
    to: DesiredState;
    groups: RestartGroup[];
    /** The windows each restart group falls in. */
    groupWindows: (g: RestartGroup) => Window[];
    /** The windows the firewall going up opens. */
    firewallWindows: Window[];
    /** The preflight of one server, in phases with a preflight. */
    preflight?: (s: ServerState) => PreflightCheck;
    /** Steps every preflight and restart waits for (e.g. the Services the new membership names). */
    after?: string[];
    /** The split's dead man's switch bound (splitDeadmanSeconds; gates.ts). */
    deadmanSeconds?: number;
}

const target = (s: ServerState) => hostTarget(s);

export function hostSteps(a: HostStepsArgs): Step[] {
    const { from, to } = a;
    const after = a.after ?? [];
    const onHosts = to.servers.filter((s) => s.location === "host");
    const steps: Step[] = [];

    // Preflight: read-only checks; nothing is written anywhere until all of them passed.
    const preflight: string[] = [];
    if (to.preflight && a.preflight) {
        for (const s of onHosts) {
            const id = `preflight-${s.id}`;
            steps.push({ id, kind: "preflight", after, target: target(s), server: s.id, settings: a.settings, ensemble: a.ensemble, check: a.preflight(s) });
            preflight.push(id);
        }
    }


    // The firewall split goes up before the targets restart at the split, and comes down (the
    // engine deletes the resource) only when the phase no longer has it.
    const fwBefore = new Set(from.firewall.map((f) => f.id));
    const applied = to.firewall.filter((f) => !fwBefore.has(f.id)).map((f) => f.id);
    const apply: Effect | undefined = applied.length > 0 ? { kind: "firewall-apply", ids: applied, windows: a.firewallWindows } : undefined;

    // Multi-host steps: every host passes its gate before the first change on any of them; at the
    // split each armed host's dead man's switch is armed (and its rules go up) before the firewalls,
    // which commit the split on the armed hosts; every restart waits for every firewall.
    const gates = multiHostGates({ ensemble: a.ensemble, settings: a.settings, from, to, groups: a.groups, firewallApplied: applied, deadmanSeconds: a.deadmanSeconds, after: preflight });
    for (const g of gates.steps) steps.push(g.kind === "split-arm" && apply ? { ...g, effect: apply } : g);
    const gated = [...gates.gates, ...gates.fences, ...gates.arms];

    const firewalls: string[] = [];
    for (const f of to.firewall) {
        const s = to.servers.find((x) => x.id === f.id)!;
        const id = `firewall-${f.id}`;
        // On an armed host the arm put the rules up: this step commits the split there (after every arm).
        const commit = applied.includes(f.id) && gates.commit.has(f.id);
        steps.push({ id, kind: "firewall", after: [...preflight, ...gated], target: target(s), server: f.id, ensemble: a.ensemble, peers: f.peers, settings: a.settings, ...(commit ? { commit: true as const } : {}), ...(applied.includes(f.id) ? { effect: apply } : { frozen: true }) });
        firewalls.push(id);
    }

    // Restarts, chained in the planned order: each group waits for the previous group.
    const position = new Map<number, number>();
    a.groups.forEach((g, i) => g.ids.forEach((id) => position.set(id, i)));
    const fromById = new Map(from.servers.map((s) => [s.id, s]));
    const wiped = (ids: number[]) => ids.filter((id) => {
        const s = to.servers.find((x) => x.id === id)!;
        return wipesOnRestart(fromById.get(id)!, s);
    });
    const effects = a.groups.map((g): Effect => ({ kind: "restart", group: g, windows: a.groupWindows(g), wiped: wiped(g.ids) }));
    const members: string[][] = a.groups.map(() => []);
    const ordered = [...onHosts].sort((x, y) => (position.get(x.id) ?? -1) - (position.get(y.id) ?? -1));
    for (const s of ordered) {
        const pos = position.get(s.id);
        const id = `restart-${s.id}`;
        const before = fromById.get(s.id)!;
        steps.push({
            id,
            kind: "restart",
            after: [...preflight, ...(pos !== undefined && pos > 0 ? members[pos - 1] : []), ...(gates.hosts.has(s.id) ? gated : []), ...firewalls, ...after],
            target: target(s),
            server: s.id,
            settings: a.settings,
            running: s.running && !s.decommissioned,
            membership: s.runningWith,
            ...(before.location === "host" && before.running ? { before: before.runningWith } : {}),
            wipeData: wipesOnRestart(before, s),
            spacingSeconds: a.spacingSeconds,
            ...(gates.fenced.has(s.id) && pos !== undefined ? { unfence: { ensemble: a.ensemble, target: gates.fenced.get(s.id)! } } : {}),
            ...(pos !== undefined ? { group: pos, effect: effects[pos] } : { frozen: true }),
        });
        if (pos !== undefined) members[pos].push(id);
    }
    return steps;
}

/** The engine's own steps at the end of an update: firewall removal, then the clients' new connect strings. */
export function closingSteps(from: DesiredState, to: DesiredState, groups: (d: DesiredState) => ClientGroup[]): Step[] {
    const steps: Step[] = [];
    const fwAfter = new Set(to.firewall.map((f) => f.id));
    const removed = from.firewall.filter((f) => !fwAfter.has(f.id)).map((f) => f.id);
    // Removed resources are deleted last in a Pulumi update: the firewall comes down after all else.
    if (removed.length > 0) {
        steps.push({ id: "firewall-remove", kind: "firewall-remove", declare: false, after: [], effect: { kind: "firewall-remove", ids: removed } });
    }
    const before = new Map(groups(from).map((g) => [g.name, g]));
    for (const g of groups(to)) {
        const prev = before.get(g.name);
        if (prev && formatConnectString(prev.connect) !== formatConnectString(g.connect)) {
            steps.push({ id: `connect-${g.name}`, kind: "clients-connect", declare: false, after: [], effect: { kind: "clients-switch", group: g.name, to: g.connect } });
        }
    }
    return steps;
}

/** The ids of the declared steps (those that become resources). */
export function declaredIds(steps: Step[]): string[] {
    return steps.filter((s) => !("declare" in s)).map((s) => s.id);
}
