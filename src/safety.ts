// Quorum safety: simulate every single step of a plan (each stop, start, restart, firewall
// change, cutover, client switch), each server judged by the membership it runs with at that
// moment, and refuse a plan in which, at any moment,
//  - a client group that must be served reaches no server that a leader serves (outside a
//    no-quorum window the procedure declares),
//  - two disjoint groups of servers could each have a leader while they can still reach each
//    other or a client group reaches both (outside a split-brain window the procedure declares),
//  - a majority of empty servers (data moved aside by the plan) could elect an empty leader while
//    servers that hold the data run in the same ensemble,
//  - a client group is moved between two leaders that no longer share history (lost writes).
//
// ZooKeeper's rules, as modelled here (static membership, FastLeaderElection):
//  - Two servers talk when each can open a TCP connection to the address and ports the other
//    lists for it: the address resolves to where the server runs, no firewall rule rejects it, and
//    the ports are the ones the server itself listens on (its own line in its own config).
//  - A server L can be ELECTED with a group X when every member of X talks with L and a majority
//    of each member's own view (its config's voters) is in X and talks with it: a server decides
//    for a leader once a quorum of its OWN view voted for it (QuorumVerifier of its own config).
//  - An ESTABLISHED leader keeps leading while a majority of ITS view follows it (the ack quorum);
//    its followers do not re-check their own views until they restart or an election starts. A
//    server that was the leader of some electable group since it last started may be established.
//  - A learner that the leader does not list (a target joining the source) follows, without a
//    vote, once a majority of its own view follows that leader.
//  - FastLeaderElection prefers the highest zxid: a group with a server that holds the data never
//    elects an empty leader; a group of empty servers only does.
//  - Observers (`server.N=...:observer`, issue 13's observer join) never vote, count in no quorum
//    and never lead: a view is its voters. An observer follows a leader once a majority of its
//    view's voters follows it; it opens the connection itself, and a leader serves observers it
//    does not list (measured on ZooKeeper 3.5.10 and 3.9.5), so the leader need not list it.
// Two candidate leaders L1, L2 are a split brain when disjoint groups X1 ∋ L1 and X2 ∋ L2 can both
// reach their leader's ack quorum (decided exactly by counting, see `disjointQuorums`; a property
// test checks it against a brute force of every pair of subsets).
import { formatConnectString as formatConnect } from "./format/connect-string";
import { sameMembership } from "./format/zoo-cfg";
import { clientGroups } from "./plan";
import { effectsOf, type ClientGroup, type Effect, type MigrationPlan, type Window } from "./steps";
import type { DesiredState, Location, MemberLine, Membership, ServerId } from "./types";

export interface SimServer {
    id: ServerId;
    host: string;
    serviceFqdn?: string;
    location: Location;
    running: boolean;
    membership: Membership;
    /** Its data was moved aside by the plan and it has not synced from a leader with data since. */
    empty?: boolean;
}

export interface World {
    servers: Map<ServerId, SimServer>;
    services: boolean;
    /** Per server id, whether its Service routes to the pod (else to the host). */
    backendPod: Set<ServerId>;
    /** Host address -> addresses it rejects TCP to and from. */
    firewall: Map<string, Set<string>>;
    groups: Map<string, ClientGroup>;
    /**
     * Leaders that may be established, with the followers they were elected with: a follower keeps
     * following without re-checking its own view until it restarts (then it must join anew).
     */
    established: Map<ServerId, Set<ServerId>>;
}

export interface SafetyViolation {
    /** 1-based step number in the plan, and the moment inside it. */
    step: number;
    moment: string;
    reason: string;
}

export class UnsafePlanError extends Error {
    constructor(
        readonly ensemble: string,
        readonly violations: SafetyViolation[],
    ) {
        super(
            `unsafe plan for ensemble "${ensemble}":\n` +
                violations.map((v) => `  - step ${v.step} (${v.moment}): ${v.reason}`).join("\n"),
        );
        this.name = "UnsafePlanError";
    }
}

export function worldOf(d: DesiredState): World {
    const fqdn = new Map(d.kubernetes?.servers.map((s) => [s.id, s.serviceFqdn]) ?? []);
    const w: World = {
        servers: new Map(
            d.servers.map((s) => [
                s.id,
                { id: s.id, host: s.host, serviceFqdn: fqdn.get(s.id), location: s.location, running: s.running, membership: s.runningWith },
            ]),
        ),
        services: d.kubernetes?.services ?? false,
        backendPod: new Set(d.kubernetes?.servers.filter((s) => s.backend === "pod").map((s) => s.id) ?? []),
        firewall: new Map(d.firewall.map((f) => [f.host, new Set(f.peers)])),
        groups: new Map(clientGroups(d).map((g) => [g.name, g])),
        established: new Map(),
    };
    establish(w, candidates(w));
    return w;
}

// ---------------------------------------------------------------------------------------------
// Connections

function blocked(w: World, a: SimServer, b: SimServer): boolean {
    // Rules sit on host interfaces; a pod is not behind its old host's firewall.
    const hostA = a.location === "host" ? a.host : undefined;
    const hostB = b.location === "host" ? b.host : undefined;
    return (!!hostA && !!hostB && (w.firewall.get(hostA)?.has(hostB) || w.firewall.get(hostB)?.has(hostA))) || false;
}

/** Whether `address` reaches server `b` where it runs now. */
function resolves(w: World, address: string, b: SimServer): boolean {
    if (!b.running) return false;
    if (address === b.host) return b.location === "host";
    if (b.serviceFqdn !== undefined && address === b.serviceFqdn) {
        return w.services && (w.backendPod.has(b.id) ? b.location === "pod" : b.location === "host");
    }
    return false;
}

const lineOf = (m: Membership, id: ServerId): MemberLine | undefined => m.members.find((l) => l.id === id);

/** The voters of a membership (its observers count in no quorum). */
export const votersOf = (m: Membership): MemberLine[] => m.members.filter((x) => !x.observer);

/** Whether `s` runs as an observer (its own line says so): it never votes nor leads. */
export const observing = (s: SimServer): boolean => lineOf(s.membership, s.id)?.observer === true;

/** A server whose own address is virtual cannot bind its election port without quorumListenOnAllIPs. */
export function functional(s: SimServer): boolean {
    if (!s.running) return false;
    const own = lineOf(s.membership, s.id);
    if (!own) return false; // a server missing from its own config does not start
    const virtual = own.address !== s.host;
    return !virtual || s.membership.quorumListenOnAllIPs;
}

/** a opens a connection to b: through the line a lists for b, to the ports b listens on. */
export function reach(w: World, a: SimServer, b: SimServer): boolean {
    if (a.id === b.id) return functional(a);
    const line = lineOf(a.membership, b.id);
    const own = lineOf(b.membership, b.id);
    return (
        line !== undefined &&
        own !== undefined &&
        line.peerPort === own.peerPort &&
        line.electionPort === own.electionPort &&
        functional(a) &&
        functional(b) &&
        resolves(w, line.address, b) &&
        !blocked(w, a, b)
    );
}

/** a and b talk: each lists the other and reaches it. */
export function talk(w: World, a: SimServer, b: SimServer): boolean {
    return a.id === b.id ? functional(a) : reach(w, a, b) && reach(w, b, a);
}

const majority = (count: number, m: Membership) => 2 * count > votersOf(m).length;
const quorumSize = (m: Membership) => Math.floor(votersOf(m).length / 2) + 1;

/** Voters of `s`'s own view that are in `x` and talk with `s` (itself included when it votes). */
function support(w: World, s: SimServer, x: Set<ServerId>): number {
    return votersOf(s.membership).filter((m) => x.has(m.id) && talk(w, s, w.servers.get(m.id)!)).length;
}

// ---------------------------------------------------------------------------------------------
// Leaders

/**
 * The largest group that could elect `l`: the servers that talk with l, less (repeatedly) those
 * without a majority of their own view inside. Every electable group of l is inside it; l is
 * electable when l keeps its own majority there.
 */
export function electableGroup(w: World, l: SimServer): Set<ServerId> | undefined {
    if (!functional(l) || observing(l)) return undefined;
    const q = new Set<ServerId>([l.id]);
    for (const s of w.servers.values()) {
        if (s.id !== l.id && talk(w, l, s)) q.add(s.id);
    }
    for (let changed = true; changed; ) {
        changed = false;
        for (const id of q) {
            if (!majority(support(w, w.servers.get(id)!, q), w.servers.get(id)!.membership)) {
                q.delete(id);
                changed = true;
            }
        }
    }
    return q.has(l.id) ? q : undefined;
}

/** The servers that could be elected leader now. */
function candidates(w: World): ServerId[] {
    return [...w.servers.values()].filter((s) => electableGroup(w, s) !== undefined).map((s) => s.id);
}

/** Records leaders that could be elected now, with the group that could elect them. */
function establish(w: World, leaders: ServerId[]): void {
    for (const id of leaders) {
        const g = electableGroup(w, w.servers.get(id)!);
        if (g) w.established.set(id, new Set([...(w.established.get(id) ?? []), ...g]));
    }
}

const countIn = (m: Membership, x: Set<ServerId>) => votersOf(m).filter((v) => x.has(v.id)).length;

/** The servers that could lead a group now: electable now, or established and still holding an ack quorum. */
export function possibleLeaders(w: World): ServerId[] {
    const out = new Set(candidates(w));
    for (const id of w.established.keys()) {
        const l = w.servers.get(id)!;
        if (functional(l) && majority(countIn(l.membership, ackGroup(w, l)), l.membership)) out.add(id);
    }
    return [...out].sort((a, b) => a - b);
}

/**
 * The servers a leader `l` could count acks from now: the group that could elect it now, or, for
 * an established leader, the followers it was elected with that still talk with it; and servers
 * that (re)join it: a joining server follows l once a majority of its own view does.
 */
export function ackGroup(w: World, l: SimServer): Set<ServerId> {
    const out = electableGroup(w, l) ?? new Set<ServerId>([l.id]);
    for (const id of w.established.get(l.id) ?? []) {
        const s = w.servers.get(id);
        if (s && talk(w, l, s)) out.add(id);
    }
    for (let grown = true; grown; ) {
        grown = false;
        for (const s of w.servers.values()) {
            if (out.has(s.id) || !talk(w, l, s)) continue;
            if (majority(support(w, s, new Set([...out, s.id])), s.membership)) {
                out.add(s.id);
                grown = true;
            }
        }
    }
    return out;
}

/**
 * Whether leaders l1 and l2 can both hold a majority of their own views with disjoint groups of
 * followers: X1 ∋ l1 inside ackGroup(l1), X2 ∋ l2 inside ackGroup(l2), X1 ∩ X2 = ∅. Each leader
 * keeps itself; servers only one of them can count go to it; the ones both can count are shared
 * out, which works exactly when the three counting conditions below hold.
 */
export function disjointQuorums(w: World, l1: SimServer, l2: SimServer): boolean {
    if (l1.id === l2.id) return false;
    const a1 = ackGroup(w, l1);
    const a2 = ackGroup(w, l2);
    const in1 = (id: ServerId) => votersOf(l1.membership).some((m) => m.id === id);
    const in2 = (id: ServerId) => votersOf(l2.membership).some((m) => m.id === id);
    let base1 = in1(l1.id) ? 1 : 0;
    let base2 = in2(l2.id) ? 1 : 0;
    let both = 0;
    for (const id of new Set([...a1, ...a2])) {
        if (id === l1.id || id === l2.id) continue;
        const c1 = a1.has(id) && in1(id);
        const c2 = a2.has(id) && in2(id);
        if (c1 && c2) both++;
        else if (c1) base1++;
        else if (c2) base2++;
    }
    const q1 = quorumSize(l1.membership);
    const q2 = quorumSize(l2.membership);
    return base1 + both >= q1 && base2 + both >= q2 && base1 + base2 + both >= q1 + q2;
}

/** Servers that serve clients, with their leader: in a leader's ack group, or learners a majority of whose view follows it. */
function serving(w: World, leaders: ServerId[]): Map<ServerId, ServerId> {
    const out = new Map<ServerId, ServerId>();
    const groups = new Map(leaders.map((id) => [id, ackGroup(w, w.servers.get(id)!)]));
    for (const [l, g] of groups) {
        for (const id of g) if (!out.has(id)) out.set(id, l);
    }
    for (const s of w.servers.values()) {
        if (out.has(s.id) || !functional(s)) continue;
        for (const [l, g] of groups) {
            const leader = w.servers.get(l)!;
            // An observer opens the connection to the leader itself (a leader need not list it).
            if (!reach(w, s, leader) || (!observing(s) && !reach(w, leader, s))) continue;
            const followers = votersOf(s.membership).filter((m) => m.id === s.id || (g.has(m.id) && (!observing(s) || reach(w, s, w.servers.get(m.id)!)))).length;
            if (majority(followers, s.membership)) {
                out.set(s.id, l);
                break;
            }
        }
    }
    return out;
}

/** Which servers a client group reaches through its connect string. */
function clientTargets(w: World, g: ClientGroup): ServerId[] {
    const out: ServerId[] = [];
    for (const c of g.connect.servers) {
        if (c.id === undefined) continue;
        const s = w.servers.get(c.id);
        if (s && resolves(w, c.host, s)) out.push(s.id);
    }
    return out;
}

/**
 * Whether the servers that could follow l1 and those that could follow l2 are walled off from each
 * other: no server is on both sides and no two talk (each lists the other and reaches it). A vote
 * counts only from a voter of one's own view (FastLeaderElection ignores the others' notifications,
 * and only answers them), so servers that do not list each other never mix their histories: a
 * split needs a firewall only while they still do. Servers whose data the plan empties anyway (an
 * aborted join's targets) lose no history of their own by talking.
 */
function walledOff(w: World, l1: SimServer, l2: SimServer, emptied: Set<ServerId>): boolean {
    const a1 = [...ackGroup(w, l1)].map((id) => w.servers.get(id)!);
    const a2 = [...ackGroup(w, l2)].map((id) => w.servers.get(id)!);
    return !a1.some((x) => a2.some((y) => !emptied.has(x.id) && !emptied.has(y.id) && (x.id === y.id || talk(w, x, y))));
}

/** Two leaders that could coexist, and why that is a split brain (or undefined when it is not). */
export function splitBrains(w: World, emptied: Set<ServerId> = new Set()): { l1: ServerId; l2: ServerId; reason: string }[] {
    const leaders = possibleLeaders(w);
    const out: { l1: ServerId; l2: ServerId; reason: string }[] = [];
    // Who serves whom, learners (observers) included: a client reaching an observer of l1 is a client of l1.
    const served = serving(w, leaders);
    for (let i = 0; i < leaders.length; i++) {
        for (let j = i + 1; j < leaders.length; j++) {
            const l1 = w.servers.get(leaders[i])!;
            const l2 = w.servers.get(leaders[j])!;
            if (!disjointQuorums(w, l1, l2)) continue;
            const g1 = ackGroup(w, l1);
            const g2 = ackGroup(w, l2);
            const shared = [...w.groups.values()].find((g) => {
                const t = clientTargets(w, g);
                return t.some((id) => g1.has(id) || served.get(id) === l1.id) && t.some((id) => g2.has(id) || served.get(id) === l2.id);
            });
            if (!walledOff(w, l1, l2, emptied)) {
                out.push({ l1: l1.id, l2: l2.id, reason: `servers of {${[...g1].join(",")}} (leader ${l1.id}) and {${[...g2].join(",")}} (leader ${l2.id}) can hold disjoint quorums of their own views while they still reach each other: an election inside this state (a leader crash, a network blip) can make two leaders` });
            } else if (shared) {
                out.push({ l1: l1.id, l2: l2.id, reason: `${shared.name} clients reach both {${[...g1].join(",")}} (leader ${l1.id}) and {${[...g2].join(",")}} (leader ${l2.id}), two ensembles with separate histories` });
            }
        }
    }
    return out;
}

/**
 * A leader without data could be elected by empty servers while servers that keep the data (the
 * plan does not empty them too, as an aborted join does) run in its view.
 */
function emptyLeaders(w: World, emptied: Set<ServerId>): string[] {
    const out: string[] = [];
    for (const id of possibleLeaders(w)) {
        const l = w.servers.get(id)!;
        if (!l.empty) continue;
        const g = ackGroup(w, l);
        const empties = votersOf(l.membership).filter((m) => g.has(m.id) && w.servers.get(m.id)!.empty).length;
        const withData = l.membership.members.filter((m) => {
            const s = w.servers.get(m.id);
            return s && s.running && !s.empty && !emptied.has(s.id);
        });
        if (empties >= quorumSize(l.membership) && withData.length > 0) {
            out.push(
                `${empties} empty servers (data moved aside, not synced yet) are a majority of ${id}'s view and could elect the empty ${id} ` +
                    `while ${withData.map((m) => m.id).join(", ")} hold the data: start the empty servers after the ones with the data have a leader, or fewer at once`,
            );
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// The simulation

class Checker {
    readonly out: SafetyViolation[] = [];
    constructor(
        readonly w: World,
        readonly declared: Window[],
        /** Servers whose data the plan moves aside somewhere. */
        readonly emptied: Set<ServerId>,
        readonly onState?: StateObserver,
    ) {}

    /** Checks the world at one moment; `windows` are the declared windows open during this event. */
    check(step: number, moment: string, windows: Window[]): void {
        const w = this.w;
        this.onState?.(w, step, moment, this.emptied);
        // An election window excuses nothing: it is open wherever its step is.
        for (const x of windows) if (x.kind === "election") record(x, step);
        const leaders = possibleLeaders(w);
        const serve = serving(w, leaders);
        const open = (kind: "no-quorum" | "split-brain", group?: string) =>
            windows.find((x) => (x.kind ?? "no-quorum") === kind && (group === undefined || x.group === group));
        for (const g of w.groups.values()) {
            if (clientTargets(w, g).some((id) => serve.has(id))) continue;
            const win = open("no-quorum", g.name);
            if (win) {
                record(win, step);
                continue;
            }
            this.out.push({ step, moment, reason: `${g.name} clients (${formatConnect(g.connect)}) reach no server in a quorum: ${describeQuorums(w)}` });
        }
        const brains = splitBrains(w, this.emptied);
        if (brains.length > 0) {
            const win = open("split-brain");
            if (win) record(win, step);
            else for (const b of brains) this.out.push({ step, moment, reason: b.reason });
        }
        for (const reason of emptyLeaders(w, this.emptied)) this.out.push({ step, moment, reason });
        // Servers that follow a leader with data hold the data from now on; leaders elected now may
        // stay established until they stop.
        for (const [id, l] of serve) {
            const s = w.servers.get(id)!;
            if (s.empty && !w.servers.get(l)!.empty) s.empty = false;
        }
        establish(w, leaders);
    }
}

function record(win: Window, step: number): void {
    win.steps ??= [];
    if (!win.steps.includes(step)) win.steps.push(step);
}

function describeQuorums(w: World): string {
    const parts = [...w.servers.values()].map((s) => {
        if (!s.running) return `${s.id} stopped`;
        if (!functional(s)) return `${s.id} cannot bind its election port (virtual address without quorumListenOnAllIPs)`;
        const sees = support(w, s, new Set(w.servers.keys()));
        return `${s.id}${observing(s) ? " (observer)" : ""} sees ${sees} of ${votersOf(s.membership).length} voters`;
    });
    return parts.join("; ");
}

/** A copy of the mutable parts of the world (servers, established leaders). */
function snapshot(w: World): { servers: SimServer[]; established: [ServerId, ServerId[]][] } {
    return { servers: [...w.servers.values()].map((x) => ({ ...x })), established: [...w.established].map(([k, v]) => [k, [...v]]) };
}

function restore(w: World, s: ReturnType<typeof snapshot>): void {
    for (const x of s.servers) w.servers.set(x.id, x);
    w.established = new Map(s.established.map(([k, v]) => [k, new Set(v)]));
}

/** A server stops: it leads and follows no one until it joins anew. */
const stop = (w: World, id: ServerId) => {
    w.servers.get(id)!.running = false;
    w.established.delete(id);
    for (const g of w.established.values()) g.delete(id);
};

/**
 * Simulates `plan` from the state `from` (what runs now); `to` gives the memberships restarts pick
 * up. Each event (the effect of a step, or of a group of steps that run together) is one numbered
 * step of the report. The declared windows of the plan get the steps in which they were open.
 */
/** Sees every state the simulation checks (tests compare it with a brute force of the rules). */
export type StateObserver = (w: World, step: number, moment: string, emptied: Set<ServerId>) => void;

export function simulate(from: DesiredState, to: DesiredState, plan: MigrationPlan, onState?: StateObserver): SafetyViolation[] {
    const w = worldOf(from);
    const events = effectsOf(plan.steps);
    const emptied = new Set(events.flatMap((e) => (e.kind === "restart" ? (e.wiped ?? []) : [])));
    const c = new Checker(w, plan.windows, emptied, onState);
    const target = new Map(to.servers.map((s) => [s.id, s]));
    const fqdn = new Map(to.kubernetes?.servers.map((s) => [s.id, s.serviceFqdn]) ?? []);
    for (const win of plan.windows) delete win.steps;
    c.check(0, "before the first step", []);
    events.forEach((s: Effect, i) => {
        const n = i + 1;
        switch (s.kind) {
            case "services-create":
                w.services = true;
                for (const [id, f] of fqdn) w.servers.get(id)!.serviceFqdn = f;
                c.check(n, "Services created", []);
                break;
            case "firewall-apply": {
                // A split must not leave the migrating clients behind on the source: their writes
                // after the firewall would never reach the target.
                const g = w.groups.get("migrating");
                if (g && formatConnect(g.connect) !== formatConnect(to.clients.next)) {
                    c.out.push({ step: n, moment: "before the firewall", reason: `split while the migrating clients still use ${formatConnect(g.connect)}: run the clients phase first` });
                }
                for (const f of to.firewall.filter((x) => s.ids.includes(x.id))) w.firewall.set(f.host, new Set(f.peers));
                c.check(n, "firewall applied", s.windows);
                break;
            }
            case "restart": {
                // The servers of a group restart in parallel, not at once: every mix of them still
                // running the old config, stopped, and running the new one is a state that can
                // occur (3^k of them), checked before the group's end state.
                const ids = s.group.ids;
                const label = ids.join(" + ");
                const before = new Map(ids.map((id) => [id, { ...w.servers.get(id)! }]));
                const apply = (id: ServerId, state: 0 | 1 | 2) => {
                    const sim = w.servers.get(id)!;
                    if (state === 0) {
                        Object.assign(sim, before.get(id)!);
                        return;
                    }
                    stop(w, id);
                    if (state === 2) {
                        const t = target.get(id)!;
                        sim.running = t.running;
                        sim.membership = t.runningWith;
                        sim.empty = s.wiped?.includes(id) ? true : before.get(id)!.empty;
                    }
                };
                if (ids.length > 1 && ids.length <= 6) {
                    const names = ["runs its old config", "stopped", "runs its new config"];
                    const total = 3 ** ids.length;
                    for (let code = 1; code < total - 1; code++) {
                        const states = ids.map((_, i) => Math.floor(code / 3 ** i) % 3) as (0 | 1 | 2)[];
                        if (states.every((x) => x === 0)) continue;
                        const saved = snapshot(w);
                        states.forEach((x, i) => apply(ids[i], x));
                        c.check(n, ids.map((id, i) => `${id} ${names[states[i]]}`).join(", "), s.windows);
                        restore(w, saved);
                    }
                }
                for (const id of ids) apply(id, 1);
                c.check(n, `${label} stopped`, s.windows);
                for (const id of ids) apply(id, 2);
                c.check(n, `${label} ${ids.every((id) => w.servers.get(id)!.running) ? "restarted" : "stopped for good"}`, s.windows);
                break;
            }
            case "cutover": {
                for (const id of s.ids) stop(w, id);
                c.check(n, `host${s.ids.length > 1 ? "s" : ""} of ${s.ids.join(" + ")} stopped for the cutover`, []);
                for (const id of s.ids) {
                    const sim = w.servers.get(id)!;
                    sim.location = "pod";
                    sim.running = true;
                    sim.membership = target.get(id)!.runningWith;
                    w.backendPod.add(id);
                    c.check(n, `${id} runs in its pod`, []);
                }
                break;
            }
            case "firewall-remove":
                for (const f of from.firewall.filter((x) => s.ids.includes(x.id))) w.firewall.delete(f.host);
                c.check(n, "firewall removed", []);
                break;
            case "clients-switch": {
                const before = w.groups.get(s.group);
                const serve = serving(w, possibleLeaders(w));
                if (before) {
                    const a = new Set(clientTargets(w, before).map((id) => serve.get(id)).filter((l) => l !== undefined));
                    const b = new Set(clientTargets(w, { name: s.group, connect: s.to }).map((id) => serve.get(id)).filter((l) => l !== undefined));
                    const shared = [...a].some((x) => b.has(x));
                    if (a.size > 0 && b.size > 0 && !shared) {
                        c.out.push({
                            step: n,
                            moment: "clients switch",
                            reason: `${s.group} clients move between ensembles that no longer share a leader (${[...a].join(",")} -> ${[...b].join(",")}): writes made since they parted would be lost`,
                        });
                    }
                }
                w.groups.set(s.group, { name: s.group, connect: s.to });
                c.check(n, `${s.group} clients switched`, []);
                break;
            }
            case "broker-restart": {
                // A broker restarts onto its new connect string: that ensemble must serve then.
                const g = { name: `Kafka broker ${s.broker}`, connect: s.connect };
                const serve = serving(w, possibleLeaders(w));
                if (!clientTargets(w, g).some((id) => serve.has(id))) {
                    c.out.push({ step: n, moment: `broker ${s.broker} restarts`, reason: `Kafka broker ${s.broker} would restart onto ${formatConnect(s.connect)}, where no server is in a quorum: ${describeQuorums(w)}` });
                }
                break;
            }
            case "stop":
                simulateStop(w, c, n, s);
                break;
            case "reconfig":
                simulateReconfig(w, c, n, s);
                break;
            case "copy":
            case "clients-block":
            case "clients-unblock":
            case "clients-repoint":
                // Block & copy touches no server: nothing for the quorum simulation to do.
                break;
        }
    });
    // The end state must be the requested one.
    for (const t of to.servers) {
        const sim = w.servers.get(t.id)!;
        if (sim.running !== t.running || (t.running && !sameMembership(sim.membership, t.runningWith))) {
            c.out.push({ step: events.length, moment: "end", reason: `server ${t.id} does not end in its requested state` });
        }
    }
    return c.out;
}

// ---------------------------------------------------------------------------------------------
// Dynamic reconfig (src/procedures/mitosis-reconfig.ts)

/** Servers stopped together: they lead and follow no one; checked once all are down, and in every order of stopping. */
function simulateStop(w: World, c: Checker, n: number, e: Extract<Effect, { kind: "stop" }>): void {
    // One at a time in every prefix of the group's order is covered by checking each subset size in id order.
    const ids = [...e.ids].sort((a, b) => a - b);
    for (const id of ids) {
        stop(w, id);
        c.check(n, `${id} stopped`, e.windows);
    }
}

/**
 * `reconfig` through server `through`: it must follow a leader (it forwards the request there); the
 * leader commits only with a quorum of the old configuration (its view) and of the new one among
 * the servers that follow it. Every server following that leader then runs the new membership (no
 * restart); servers cut off from it keep theirs. A server the new membership drops stays a
 * non-voting follower in ZooKeeper; the simulation counts it as out of every quorum.
 */
function simulateReconfig(w: World, c: Checker, n: number, e: Extract<Effect, { kind: "reconfig" }>): void {
    const label = `reconfig through ${e.through}${e.add.length > 0 ? ` add ${e.add.map((m) => m.id).join(",")}` : ""}${e.remove.length > 0 ? ` remove ${e.remove.join(",")}` : ""}`;
    const serve = serving(w, possibleLeaders(w));
    const leaderId = serve.get(e.through);
    if (leaderId === undefined) {
        c.out.push({ step: n, moment: label, reason: `the reconfig runs through server ${e.through}, which follows no leader: ${describeQuorums(w)}` });
        c.check(n, label, e.windows);
        return;
    }
    const leader = w.servers.get(leaderId)!;
    const old = leader.membership;
    const removed = new Set([...e.remove, ...e.add.map((m) => m.id)]);
    const next: Membership = {
        members: [...old.members.filter((m) => !removed.has(m.id)), ...e.add].sort((a, b) => a.id - b.id),
        quorumListenOnAllIPs: old.quorumListenOnAllIPs,
    };
    // The servers that follow the leader now (and ack its proposals): its ack group, plus learners.
    const followers = new Set([...serve].filter(([, l]) => l === leaderId).map(([id]) => id));
    const acks = (m: Membership) => votersOf(m).filter((v) => followers.has(v.id)).length;
    for (const [what, m] of [
        ["old", old],
        ["new", next],
    ] as const) {
        if (2 * acks(m) <= votersOf(m).length) {
            c.out.push({
                step: n,
                moment: label,
                reason: `the reconfig cannot commit: leader ${leaderId} has ${acks(m)} of the ${votersOf(m).length} voters of the ${what} configuration (${votersOf(m).map((v) => v.id).join(",")}) following it`,
            });
            c.check(n, label, e.windows);
            return;
        }
    }
    for (const id of followers) w.servers.get(id)!.membership = next;
    c.check(n, `${label} committed by leader ${leaderId}`, e.windows);
}

/** Throws UnsafePlanError when the plan is not quorum-safe. */
export function assertSafe(from: DesiredState, to: DesiredState, plan: MigrationPlan): void {
    const v = simulate(from, to, plan);
    if (v.length > 0) {
        throw new UnsafePlanError(plan.ensemble, v);
    }
}
