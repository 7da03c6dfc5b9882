// Quorum safety: simulate every single step of a plan (each stop, start, restart, firewall
// change, cutover), each server judged by the membership it runs with at that moment, and refuse
// a plan in which
//  - a client group that should be served has no server in a working quorum (outside a window
//    the procedure declares), or
//  - two disjoint quorums exist that can still reach each other (split brain), or
//  - a client group is moved between two quorums that no longer share history (lost writes).
//
// The quorum arithmetic follows ZooKeeper with static membership: a leader counts a voter only
// if each lists the other and each can reach the other's listed address; a learner that the
// leader does not list (a joining target) follows, without a vote, once a majority of its own
// view follows that leader.
import { formatConnectString as formatConnect } from "./format/connect-string";
import { sameMembership } from "./format/zoo-cfg";
import { clientGroups } from "./plan";
import { effectsOf, type ClientGroup, type Effect, type MigrationPlan, type Window } from "./steps";
import type { DesiredState, Location, Membership, ServerId } from "./types";

interface SimServer {
    id: ServerId;
    host: string;
    serviceFqdn?: string;
    location: Location;
    running: boolean;
    membership: Membership;
}

interface World {
    servers: Map<ServerId, SimServer>;
    services: boolean;
    /** Per server id, whether its Service routes to the pod (else to the host). */
    backendPod: Set<ServerId>;
    /** Host address -> addresses it rejects TCP to and from. */
    firewall: Map<string, Set<string>>;
    groups: Map<string, ClientGroup>;
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

function worldOf(d: DesiredState): World {
    const fqdn = new Map(d.kubernetes?.servers.map((s) => [s.id, s.serviceFqdn]) ?? []);
    return {
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
    };
}

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

/** A server whose own address is virtual cannot bind its election port without quorumListenOnAllIPs. */
function functional(s: SimServer): boolean {
    if (!s.running) return false;
    const own = s.membership.members.find((m) => m.id === s.id);
    if (!own) return false; // a server missing from its own config does not start
    const virtual = own.address !== s.host;
    return !virtual || s.membership.quorumListenOnAllIPs;
}

function addressOf(m: Membership, id: ServerId): string | undefined {
    return m.members.find((l) => l.id === id)?.address;
}

/** a connects to b through the address a lists for b. */
function reach(w: World, a: SimServer, b: SimServer): boolean {
    const addr = addressOf(a.membership, b.id);
    return addr !== undefined && functional(a) && functional(b) && resolves(w, addr, b) && !blocked(w, a, b);
}

/**
 * Voters that back leader L. A voter counts when each lists the other and both directions
 * connect, and when a majority of the voter's own view backs L too: ZooKeeper's election makes a
 * server follow a leader only once a quorum of its own membership agrees. Computed as the
 * greatest set closed under that rule (members that fall short are dropped until none does).
 */
function quorumOf(w: World, l: SimServer): Set<ServerId> {
    const q = new Set<ServerId>([l.id]);
    for (const s of w.servers.values()) {
        if (s.id !== l.id && reach(w, l, s) && reach(w, s, l)) q.add(s.id);
    }
    for (let changed = true; changed; ) {
        changed = false;
        for (const id of q) {
            const s = w.servers.get(id)!;
            if (id !== l.id && !majority(s.membership.members.filter((m) => q.has(m.id)).length, s.membership)) {
                q.delete(id);
                changed = true;
            }
        }
    }
    return q;
}

const majority = (count: number, m: Membership) => 2 * count > m.members.length;

interface Leader {
    id: ServerId;
    quorum: Set<ServerId>;
}

function possibleLeaders(w: World): Leader[] {
    const out: Leader[] = [];
    for (const l of w.servers.values()) {
        if (!functional(l)) continue;
        const q = quorumOf(w, l);
        if (majority(l.membership.members.filter((m) => q.has(m.id)).length, l.membership)) out.push({ id: l.id, quorum: q });
    }
    return out;
}

/** Servers that serve clients: in a leader's quorum, or learners a majority of whose view follows it. */
function serving(w: World, leaders: Leader[]): Map<ServerId, Leader> {
    const out = new Map<ServerId, Leader>();
    for (const l of leaders) {
        for (const id of l.quorum) out.set(id, l);
    }
    for (const s of w.servers.values()) {
        if (out.has(s.id) || !functional(s)) continue;
        for (const l of leaders) {
            const leader = w.servers.get(l.id)!;
            if (!reach(w, s, leader) || !reach(w, leader, s)) continue;
            const followers = s.membership.members.filter((m) => m.id === s.id || l.quorum.has(m.id)).length;
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

function check(w: World, step: number, moment: string, windows: Window[], out: SafetyViolation[]): Map<ServerId, Leader> {
    const leaders = possibleLeaders(w);
    const serve = serving(w, leaders);
    for (const g of w.groups.values()) {
        if (windows.some((x) => x.group === g.name)) continue;
        if (!clientTargets(w, g).some((id) => serve.has(id))) {
            out.push({
                step,
                moment,
                reason: `${g.name} clients (${formatConnect(g.connect)}) reach no server in a quorum: ${describeQuorums(w)}`,
            });
        }
    }
    // Split brain: two disjoint quorums are fine only when neither side can reach a server the
    // other side lists (the intended split, behind the firewall or with disjoint memberships).
    for (let i = 0; i < leaders.length; i++) {
        for (let j = i + 1; j < leaders.length; j++) {
            const a = leaders[i];
            const b = leaders[j];
            if ([...a.quorum].some((id) => b.quorum.has(id))) continue;
            const talk = [...a.quorum].some((x) =>
                [...b.quorum].some((y) => {
                    const sx = w.servers.get(x)!;
                    const sy = w.servers.get(y)!;
                    return reach(w, sx, sy) || reach(w, sy, sx);
                }),
            );
            if (talk) {
                out.push({
                    step,
                    moment,
                    reason:
                        `two disjoint majorities can reach each other: {${[...a.quorum].join(",")}} (leader ${a.id}) and ` +
                        `{${[...b.quorum].join(",")}} (leader ${b.id}); one could sync the other's servers away`,
                });
            }
        }
    }
    return serve;
}

function describeQuorums(w: World): string {
    const parts = [...w.servers.values()].map((s) => {
        if (!s.running) return `${s.id} stopped`;
        if (!functional(s)) return `${s.id} cannot bind its election port (virtual address without quorumListenOnAllIPs)`;
        const q = quorumOf(w, s);
        return `${s.id} sees ${q.size} of ${s.membership.members.length} voters`;
    });
    return parts.join("; ");
}

/**
 * Simulates `plan` from the state `from` (what runs now); `to` gives the memberships restarts pick
 * up. Each event (the effect of a step, or of a group of steps that run together) is one numbered
 * step of the report.
 */
export function simulate(from: DesiredState, to: DesiredState, plan: MigrationPlan): SafetyViolation[] {
    const w = worldOf(from);
    const out: SafetyViolation[] = [];
    const target = new Map(to.servers.map((s) => [s.id, s]));
    const fqdn = new Map(to.kubernetes?.servers.map((s) => [s.id, s.serviceFqdn]) ?? []);
    check(w, 0, "before the first step", [], out);
    const events = effectsOf(plan.steps);
    events.forEach((s: Effect, i) => {
        const n = i + 1;
        switch (s.kind) {
            case "services-create":
                w.services = true;
                for (const [id, f] of fqdn) w.servers.get(id)!.serviceFqdn = f;
                check(w, n, "Services created", [], out);
                break;
            case "firewall-apply": {
                // A split must not leave the migrating clients behind on the source: their writes
                // after the firewall would never reach the target.
                const g = w.groups.get("migrating");
                if (g && formatConnect(g.connect) !== formatConnect(to.clients.next)) {
                    out.push({
                        step: n,
                        moment: "before the firewall",
                        reason: `split while the migrating clients still use ${formatConnect(g.connect)}: run the clients phase first`,
                    });
                }
                for (const f of to.firewall.filter((x) => s.ids.includes(x.id))) w.firewall.set(f.host, new Set(f.peers));
                check(w, n, "firewall applied", s.windows, out);
                break;
            }
            case "restart": {
                // Every server of the group goes down together, then comes up with its new config.
                for (const id of s.group.ids) w.servers.get(id)!.running = false;
                check(w, n, `${s.group.ids.join(" + ")} stopped`, s.windows, out);
                for (const id of s.group.ids) {
                    const t = target.get(id)!;
                    const sim = w.servers.get(id)!;
                    sim.running = t.running;
                    sim.membership = t.runningWith;
                }
                check(w, n, `${s.group.ids.join(" + ")} ${s.group.ids.every((id) => target.get(id)!.running) ? "restarted" : "stopped for good"}`, s.windows, out);
                break;
            }
            case "cutover": {
                for (const id of s.ids) w.servers.get(id)!.running = false;
                check(w, n, `host${s.ids.length > 1 ? "s" : ""} of ${s.ids.join(" + ")} stopped for the cutover`, [], out);
                for (const id of s.ids) {
                    const sim = w.servers.get(id)!;
                    sim.location = "pod";
                    sim.running = true;
                    sim.membership = target.get(id)!.runningWith;
                    w.backendPod.add(id);
                    check(w, n, `${id} runs in its pod`, [], out);
                }
                break;
            }
            case "firewall-remove":
                for (const f of from.firewall.filter((x) => s.ids.includes(x.id))) w.firewall.delete(f.host);
                check(w, n, "firewall removed", [], out);
                break;
            case "clients-switch": {
                const before = w.groups.get(s.group);
                const leaders = possibleLeaders(w);
                const serve = serving(w, leaders);
                if (before) {
                    const a = new Set(clientTargets(w, before).map((id) => serve.get(id)).filter((l) => l).map((l) => l!.id));
                    const next = { name: s.group, connect: s.to };
                    const b = new Set(clientTargets(w, next).map((id) => serve.get(id)).filter((l) => l).map((l) => l!.id));
                    const shared = [...a].some((x) => b.has(x));
                    if (a.size > 0 && b.size > 0 && !shared) {
                        out.push({
                            step: n,
                            moment: "clients switch",
                            reason: `${s.group} clients move between ensembles that no longer share a leader (${[...a].join(",")} -> ${[...b].join(",")}): writes made since they parted would be lost`,
                        });
                    }
                }
                w.groups.set(s.group, { name: s.group, connect: s.to });
                check(w, n, `${s.group} clients switched`, [], out);
                break;
            }
            case "broker-restart": {
                // A broker restarts onto its new connect string: that ensemble must serve then.
                const g = { name: `Kafka broker ${s.broker}`, connect: s.connect };
                const serve = serving(w, possibleLeaders(w));
                if (!clientTargets(w, g).some((id) => serve.has(id))) {
                    out.push({ step: n, moment: `broker ${s.broker} restarts`, reason: `Kafka broker ${s.broker} would restart onto ${formatConnect(s.connect)}, where no server is in a quorum: ${describeQuorums(w)}` });
                }
                break;
            }
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
            out.push({ step: events.length, moment: "end", reason: `server ${t.id} does not end in its requested state` });
        }
    }
    return out;
}

/** Throws UnsafePlanError when the plan is not quorum-safe. */
export function assertSafe(from: DesiredState, to: DesiredState, plan: MigrationPlan): void {
    const v = simulate(from, to, plan);
    if (v.length > 0) {
        throw new UnsafePlanError(plan.ensemble, v);
    }
}
