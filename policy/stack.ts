// Stack policies: they judge resources together (a Service for each Endpoints, a PDB for each
// StatefulSet) and each ensemble's update as a whole: the restart chain, the firewall split, the
// cutover, and the quorum safety of the memberships the resources render (the model's own check).
import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import type { MigrationPlan } from "../src/steps";
import { simulate } from "../src/safety";
import type { ConnectString, DesiredState, FirewallSplit, KubernetesServer, Membership, ServerId, ServerState } from "../src/types";
import { dependencyClosure, readEnsembles, roleOf, type RenderedEnsemble } from "./ensembles";
import { chrootOf, known, knownString, parseConnect, parseMembership, read, UNKNOWN } from "./lib";
import { isZooKeeperStatefulSet, settings, type PolicyOptions } from "./resources";

function metaName(r: PolicyResource): string | undefined {
    return knownString(() => r.props.metadata?.name);
}

/** The namespace of a namespaced object; "default" when unset (as kubectl and the provider take it). */
function metaNamespace(r: PolicyResource): string | undefined {
    const ns = read(() => r.props.metadata?.namespace);
    if (ns === UNKNOWN) return undefined;
    return typeof ns === "string" && ns !== "" ? ns : "default";
}

/** Every Endpoints has a Service of the same name in its namespace (that is what binds them). */
export function zookeeperEndpointsHaveService(opts: PolicyOptions = {}): StackValidationPolicy {
    return {
        name: "zookeeper-endpoints-have-service",
        description: "Every Endpoints object has a Service of the same name in its namespace: the name is what binds manual Endpoints to a Service.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        validateStack: (args, report) => {
            const services = new Set<string>();
            let unknownService = false;
            for (const r of args.resources) {
                if (r.type !== "kubernetes:core/v1:Service") continue;
                const name = metaName(r);
                const ns = metaNamespace(r);
                if (name === undefined || ns === undefined) unknownService = true;
                else services.add(`${ns}/${name}`);
            }
            for (const r of args.resources) {
                if (r.type !== "kubernetes:core/v1:Endpoints") continue;
                const name = metaName(r);
                const ns = metaNamespace(r);
                if (name === undefined || ns === undefined || unknownService) continue; // unknown at preview
                if (!services.has(`${ns}/${name}`)) {
                    report(`Endpoints "${name}" in namespace "${ns}" has no Service of the same name: nothing routes to its addresses`, r.urn);
                }
            }
        },
    };
}

/** Whether `selector` (matchLabels) selects pods labelled `labels`. */
function selects(selector: Record<string, unknown>, labels: Record<string, unknown>): boolean {
    const keys = Object.keys(selector);
    return keys.length > 0 && keys.every((k) => labels[k] === selector[k]);
}

/** A ZooKeeper StatefulSet has a PodDisruptionBudget with maxUnavailable 1 over its pods. */
export function zookeeperStatefulSetPdb(opts: PolicyOptions = {}): StackValidationPolicy {
    return {
        name: "zookeeper-statefulset-pdb",
        description:
            "A ZooKeeper StatefulSet has a PodDisruptionBudget in its namespace that selects its pods with maxUnavailable 1: a node drain takes one server at a time, never the quorum.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        validateStack: (args, report) => {
            const pdbs = args.resources.filter((r) => r.type === "kubernetes:policy/v1:PodDisruptionBudget" || r.type === "kubernetes:policy/v1beta1:PodDisruptionBudget");
            for (const st of args.resources) {
                if (st.type !== "kubernetes:apps/v1:StatefulSet" || !isZooKeeperStatefulSet(st.props)) continue;
                const name = metaName(st) ?? st.name;
                const ns = metaNamespace(st);
                const labels = known(() => ({ ...st.props.spec?.template?.metadata?.labels }));
                if (ns === undefined || labels === undefined) continue;
                let covering: PolicyResource | undefined;
                let unknown = false;
                for (const p of pdbs) {
                    const selector = known(() => ({ ...p.props.spec?.selector?.matchLabels }));
                    const pns = metaNamespace(p);
                    if (selector === undefined || pns === undefined) {
                        unknown = true;
                        continue;
                    }
                    if (pns === ns && selects(selector, labels)) covering = p;
                }
                if (!covering) {
                    if (!unknown) report(`ZooKeeper StatefulSet "${name}" has no PodDisruptionBudget selecting its pods: a node drain could evict several servers at once`, st.urn);
                    continue;
                }
                const max = read(() => covering!.props.spec?.maxUnavailable);
                if (max === UNKNOWN) continue;
                if (max !== 1 && max !== "1") {
                    const pdbName = metaName(covering) ?? covering.name;
                    const min = known(() => covering!.props.spec?.minAvailable);
                    const what = max !== undefined ? `maxUnavailable ${JSON.stringify(max)}` : min !== undefined ? `minAvailable ${JSON.stringify(min)} and no maxUnavailable` : "no maxUnavailable";
                    report(`PodDisruptionBudget "${pdbName}" of ZooKeeper StatefulSet "${name}" has ${what}: it must be maxUnavailable 1`, covering.urn);
                }
            }
        },
    };
}

const ids = (xs: Iterable<ServerId>) => [...xs].sort((a, b) => a - b).join(", ");

/**
 * Within an ensemble no two restarts run at once: each restart group of the update depends on the
 * previous one. The one exception is the planned restart of all targets at the split, behind the
 * firewall, where they must elect their own leader together.
 */
export function zookeeperRestartsOneAtATime(opts: PolicyOptions = {}): StackValidationPolicy {
    return {
        name: "zookeeper-restarts-one-at-a-time",
        description:
            "Within an ensemble no two restarts can run at once: each restart depends on the previous one, except the planned restart of all targets at the split.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        validateStack: (args, report) => {
            for (const e of readEnsembles(args.resources)) {
                const groups = e.restartOrder;
                if (!groups) {
                    // The program publishes each update's restart order (stack output
                    // ensembles.<name>.restartOrder); without it the chain cannot be judged.
                    if (e.restartOrderMissing === "absent" && [...e.servers.values()].some((s) => s.restart)) {
                        report(`ensemble "${e.name}": the stack publishes no restart order (output ensembles.${e.name}.restartOrder as "<myid>[+<myid>...]: <reason>"), so its restart chain cannot be checked`, e.component.urn);
                    }
                    continue; // unknown at preview, or no stack resource to read it from
                }
                const restart = (id: ServerId) => e.servers.get(id)?.restart;
                const missing = groups.flatMap((g) => g.ids).filter((id) => !restart(id));
                if (missing.length > 0) {
                    report(`ensemble "${e.name}": the restart order names ${ids(missing)}, which ${missing.length > 1 ? "have" : "has"} no restart resource`, e.component.urn);
                    continue;
                }
                groups.forEach((g, i) => {
                    if (g.ids.length > 1) {
                        const targets = [...e.servers.keys()].filter((id) => roleOf(e, id) === "target");
                        const firewalls = [...e.servers.values()].filter((s) => s.firewall).map((s) => s.firewall!);
                        const allTargets = e.traits.firewallSplit && targets.length > 0 && ids(g.ids) === ids(targets);
                        if (!allTargets || firewalls.length === 0) {
                            report(
                                `ensemble "${e.name}": restarts of ${ids(g.ids)} run at once; only the split's restart of all targets behind the firewall may (${g.ids.join("+")}: ${g.reason})`,
                                restart(g.ids[0])!.urn,
                            );
                        } else {
                            for (const id of g.ids) {
                                const deps = dependencyClosure(restart(id)!);
                                const open = firewalls.filter((f) => !deps.has(f.urn));
                                if (open.length > 0) {
                                    report(`ensemble "${e.name}": the split restart of ${id} does not wait for the firewall split (${open.map((f) => f.name).join(", ")})`, restart(id)!.urn);
                                }
                            }
                        }
                    }
                    if (i === 0) return;
                    for (const b of g.ids) {
                        const deps = dependencyClosure(restart(b)!);
                        for (const a of groups[i - 1].ids) {
                            if (!deps.has(restart(a)!.urn)) {
                                report(
                                    `ensemble "${e.name}": the restart of ${b} does not depend on the restart of ${a} before it (${restart(a)!.name}): the two can run at once`,
                                    restart(b)!.urn,
                                );
                            }
                        }
                    }
                });
            }
        },
    };
}

/** The running membership of a server: from its restart, or undefined (stopped, unknown, none). */
function runningMembership(e: RenderedEnsemble, id: ServerId): Membership | undefined | typeof UNKNOWN {
    const o = e.servers.get(id)?.outcome;
    if (o === "unknown") return UNKNOWN;
    return o?.running ? o.membership : undefined;
}

/**
 * Firewall-split resources exist only in the phases that need them: in a mitosis ensemble once the
 * targets run a membership of their own (the split), and there they must exist on every running
 * target, cutting off every source, for as long as a source still lists the targets. Never in a
 * kubernetes ensemble.
 */
export function zookeeperFirewallOnlyWhenSplit(opts: PolicyOptions = {}): StackValidationPolicy {
    return {
        name: "zookeeper-firewall-only-when-split",
        description:
            "Firewall-split resources exist only in the phases that need them: from the split (targets run their own membership) while sources still list the targets; never before the split, never in a kubernetes ensemble.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        validateStack: (args, report) => {
            for (const e of readEnsembles(args.resources)) {
                const firewalls = [...e.servers.values()].filter((s) => s.firewall);
                if (!e.traits.firewallSplit) {
                    for (const s of firewalls) report(`ensemble "${e.name}" (${e.traits.procedure}) has a firewall split on ${s.id}: no phase of the ${e.traits.procedure} procedure cuts servers apart`, s.firewall!.urn);
                    continue;
                }
                const all = [...e.servers.keys()];
                const targets = all.filter((id) => roleOf(e, id) === "target");
                const sources = all.filter((id) => roleOf(e, id) === "source");
                if (targets.length === 0 || sources.length === 0) continue; // roles not published
                const running = new Map<ServerId, Membership | undefined | typeof UNKNOWN>(all.map((id) => [id, runningMembership(e, id)]));
                if ([...running.values()].some((m) => m === UNKNOWN)) continue; // unknown at preview
                const members = (id: ServerId) => {
                    const m = running.get(id);
                    return m && m !== UNKNOWN ? m.members.map((l) => l.id) : undefined;
                };
                const separated = targets.filter((t) => {
                    const m = members(t);
                    return m !== undefined && !m.some((id) => sources.includes(id));
                });
                if (separated.length === 0) {
                    for (const s of firewalls) {
                        report(
                            `ensemble "${e.name}": firewall split on ${s.id} exists before the split (no target runs without the sources yet): it would cut the joint ensemble apart`,
                            s.firewall!.urn,
                        );
                    }
                    continue;
                }
                const listing = sources.filter((s) => (members(s) ?? []).some((id) => targets.includes(id)));
                if (listing.length === 0) continue; // sources on their own: the firewall may go
                for (const t of targets.filter((id) => members(id) !== undefined)) {
                    const s = e.servers.get(t)!;
                    if (!s.firewall) {
                        report(
                            `ensemble "${e.name}" is split (targets ${ids(separated)} run their own membership) while sources ${ids(listing)} still list targets, but target ${t} has no firewall split`,
                            e.component.urn,
                        );
                        continue;
                    }
                    if (!s.firewallPeers) continue; // unknown at preview
                    for (const src of sources) {
                        const address = sourceAddress(e, src);
                        if (address !== undefined && !s.firewallPeers.includes(address)) {
                            report(`ensemble "${e.name}": the firewall split on target ${t} does not cut off source ${src} (${address})`, s.firewall.urn);
                        }
                    }
                }
            }
        },
    };
}

/** A server's host address: as published, else its own line in the membership it is written or runs with. */
function sourceAddress(e: RenderedEnsemble, id: ServerId): string | undefined {
    const published = e.published.get(id)?.address;
    if (published) return published;
    const s = e.servers.get(id);
    const m = s?.written ?? (s?.outcome && s.outcome !== "unknown" ? s.outcome.membership : undefined);
    return m?.members.find((l) => l.id === id)?.address ?? s?.sshHost;
}

/** At most one server of a kubernetes ensemble is cut over into a pod per update. */
export function zookeeperOneCutoverPerUpdate(opts: PolicyOptions = {}): StackValidationPolicy {
    const defaults = { maxCutoversPerUpdate: 1 };
    return {
        name: "zookeeper-one-cutover-per-update",
        description:
            "At most one server is cut over per update: the hosts named in one update stop before their pods start, so two at once take two servers down together.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        configSchema: { properties: { maxCutoversPerUpdate: { type: "integer", minimum: 1, default: 1 } } },
        validateStack: (args, report) => {
            const c = settings(args, defaults);
            for (const e of readEnsembles(args.resources)) {
                if (!e.traits.pods || e.previous === "unknown") continue;
                const before = new Set(e.previous?.cutover ?? []);
                const now = [...e.servers.values()].filter((s) => s.decommission).map((s) => s.id);
                const fresh = now.filter((id) => !before.has(id));
                if (fresh.length > c.maxCutoversPerUpdate) {
                    report(
                        `ensemble "${e.name}" cuts over ${fresh.length} servers in one update (${ids(fresh)}; applied before: ${before.size > 0 ? ids(before) : "none"}): move at most ${c.maxCutoversPerUpdate} per update`,
                        e.component.urn,
                    );
                }
            }
        },
    };
}

const EMPTY: Membership = { members: [], quorumListenOnAllIPs: false };

/** The memberships the ensemble's resources render, as the model's desired state; undefined when unknown. */
export function renderedState(e: RenderedEnsemble): DesiredState | undefined {
    const podMembership = (() => {
        if (!e.configMap) return undefined;
        const cfg = read(() => e.configMap!.props.data?.["zoo.cfg"]);
        return typeof cfg === "string" ? parseMembership(cfg.split("\n")) : cfg === UNKNOWN ? UNKNOWN : undefined;
    })();
    const namespace = e.statefulSet ? metaNamespace(e.statefulSet) : undefined;
    const kservers: KubernetesServer[] = [];
    const servers: ServerState[] = [];
    const firewall: FirewallSplit[] = [];
    const allMemberships: Membership[] = [];
    for (const s of [...e.servers.values()].sort((a, b) => a.id - b.id)) {
        let location: "host" | "pod" = "host";
        let running: boolean;
        let membership: Membership;
        if (s.decommission) {
            if (podMembership === UNKNOWN) return undefined;
            location = "pod";
            running = podMembership !== undefined;
            membership = podMembership ?? EMPTY;
        } else if (s.outcome === "unknown") {
            return undefined;
        } else if (s.outcome) {
            running = s.outcome.running;
            membership = s.outcome.membership ?? s.written ?? EMPTY;
        } else {
            continue; // no restart resource: not a server this update runs
        }
        allMemberships.push(membership);
        const own = membership.members.find((l) => l.id === s.id)?.address;
        const endpointIp = s.endpoints ? knownString(() => s.endpoints!.props.subsets?.[0]?.addresses?.[0]?.ip) : undefined;
        const host = endpointIp ?? e.published.get(s.id)?.address ?? (e.traits.hostAddressInMembership ? own : undefined) ?? s.sshHost ?? own ?? `server-${s.id}`;
        servers.push({
            id: s.id,
            role: (roleOf(e, s.id) as ServerState["role"]) ?? "server",
            host,
            location,
            running,
            written: s.written ?? membership,
            runningWith: membership,
            dormant: false,
            wipeDataOnStart: false,
            decommissioned: location === "pod",
        });
        if (s.firewall) {
            if (!s.firewallPeers) return undefined;
            firewall.push({ id: s.id, host, peers: s.firewallPeers });
        }
        if (s.service) {
            const name = metaName(s.service);
            const ns = metaNamespace(s.service) ?? namespace ?? "default";
            const selector = read(() => s.service!.props.spec?.selector);
            if (name === undefined || selector === UNKNOWN) return undefined;
            kservers.push({ id: s.id, host, serviceName: name, serviceFqdn: `${name}.${ns}.svc.cluster.local`, backend: selector && Object.keys(selector).length > 0 ? "pod" : "host" });
        }
    }
    // The Service FQDN as the memberships spell it (the cluster domain is the operator's).
    for (const k of kservers) {
        const prefix = k.serviceFqdn.replace(/cluster\.local$/, "");
        const spelled = allMemberships.flatMap((m) => m.members).find((l) => l.id === k.id && l.address.startsWith(prefix))?.address;
        if (spelled) k.serviceFqdn = spelled;
    }
    const byAddress = new Map<string, ServerId>();
    for (const s of servers) byAddress.set(s.host, s.id);
    for (const k of kservers) byAddress.set(k.serviceFqdn, k.id);
    for (const m of allMemberships) for (const l of m.members) if (!byAddress.has(l.address)) byAddress.set(l.address, l.id);
    const connectOf = (text: string | undefined, fallback: ServerState[]): ConnectString => {
        if (text !== undefined) {
            const servers = parseConnect(text).flatMap((a) => {
                const id = byAddress.get(a.address);
                return id === undefined ? [] : [{ id, host: a.address, port: a.port }];
            });
            if (servers.length > 0) return { servers, chroot: chrootOf(text) };
        }
        return { servers: fallback.map((s) => ({ id: s.id, host: s.host, port: 2181 })) };
    };
    const current = connectOf(e.connect, servers);
    const old = connectOf(e.oldConnect, servers.filter((s) => s.role !== "target"));
    const services = kservers.length > 0;
    return {
        ensemble: e.name,
        procedure: e.traits.procedure,
        phase: "rendered",
        servers,
        firewall,
        clients: { current, old, next: current },
        kubernetes:
            e.traits.pods
                ? { namespace: namespace ?? "default", name: e.name, labels: {}, ports: { client: 2181, peer: 2888, election: 3888 }, servers: kservers, services }
                : undefined,
        preflight: false,
    };
}

/**
 * The memberships rendered for each server (what its restart leaves running, the pods' zoo.cfg,
 * the firewall splits, the Services) pass the model's quorum-safety check: every client group
 * reaches a server in a working quorum, and no two disjoint quorums can reach each other.
 */
export function zookeeperQuorumSafeMemberships(opts: PolicyOptions = {}): StackValidationPolicy {
    return {
        name: "zookeeper-quorum-safe-memberships",
        description:
            "The memberships rendered for each server pass the model's quorum-safety check (src/safety.ts): clients reach a working quorum, and no two disjoint quorums can reach each other.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        validateStack: (args, report) => {
            for (const e of readEnsembles(args.resources)) {
                const d = renderedState(e);
                if (!d || d.servers.length === 0) continue;
                const plan: MigrationPlan = { ensemble: e.name, from: d.phase, to: d.phase, steps: [], restartOrder: [], configChanges: [], windows: [], warnings: [] };
                for (const v of simulate(d, d, plan)) {
                    report(`ensemble "${e.name}": the memberships its resources render are not quorum-safe: ${v.reason}`, e.component.urn);
                }
            }
        },
    };
}
