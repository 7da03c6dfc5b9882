// The ensembles of a stack as its resources render them: per server the config write, the restart
// (and what it leaves running), the firewall split, the decommission of its host, its Service and
// Endpoints; per ensemble the StatefulSet, its ConfigMap and PDB, the restart order the program
// published, and what the previous update applied (the program's StackReference to itself).
//
// Names follow components/: children of the component `<ensemble>` are `<ensemble>-<role>-<myid>`
// and `<ensemble>-statefulset|configmap|headless|pdb`.
import type { PolicyResource } from "@pulumi/policy";
import type { Membership, ProcedureName, ServerId } from "../src/types";
import { known, knownArray, knownString, read, restartOutcome, scriptParams, UNKNOWN, writtenMembership } from "./lib";

/** What the pack knows of an ensemble component's resources, by the component's type. */
export interface EnsembleTraits {
    procedure: ProcedureName;
    /** Its phases may split the targets off the sources with a firewall (the split's restart of all targets at once). */
    firewallSplit: boolean;
    /** Its servers move into pods behind per-server Services, a bounded number per update. */
    pods: boolean;
    /** The address each server lists for itself in its membership is its host's. */
    hostAddressInMembership: boolean;
}

export const ENSEMBLE_TYPES: Record<string, EnsembleTraits> = {
    "zkmigrate:mitosis:Ensemble": { procedure: "mitosis", firewallSplit: true, pods: false, hostAddressInMembership: true },
    "zkmigrate:kubernetes:Ensemble": { procedure: "kubernetes", firewallSplit: false, pods: true, hostAddressInMembership: false },
};

export interface RenderedServer {
    id: ServerId;
    config?: PolicyResource;
    restart?: PolicyResource;
    firewall?: PolicyResource;
    decommission?: PolicyResource;
    service?: PolicyResource;
    endpoints?: PolicyResource;
    /** The membership its config write puts on disk (undefined: no config write, or unknown). */
    written?: Membership;
    /** What its restart leaves running: "unknown" when the script is unknown at preview. */
    outcome?: { running: boolean; membership?: Membership } | "unknown";
    /** The addresses the firewall split on its host cuts off. */
    firewallPeers?: string[];
    /** The address of the host (connection.host), when known. */
    sshHost?: string;
}

export interface RestartGroup {
    ids: ServerId[];
    reason: string;
}

export interface RenderedEnsemble {
    name: string;
    traits: EnsembleTraits;
    component: PolicyResource;
    servers: Map<ServerId, RenderedServer>;
    /** The restart order of this update as the program published it (stack output), if readable. */
    restartOrder?: RestartGroup[];
    /** Why there is no restart order: the stack output lacks it, or it is unknown at preview. */
    restartOrderMissing?: "absent" | "unknown";
    /** Roles and addresses the program published (stack output `ensembles.<name>.servers`). */
    published: Map<ServerId, { role?: string; address?: string; location?: string }>;
    /** Connect strings the program published: `connect` (now) and `oldConnect`. */
    connect?: string;
    oldConnect?: string;
    /** What the last successful update applied: undefined when nothing was, "unknown" when unreadable at preview. */
    previous?: { phase?: string; cutover: ServerId[] } | "unknown";
    statefulSet?: PolicyResource;
    configMap?: PolicyResource;
    pdb?: PolicyResource;
}

const CHILD = /^(.*)-(config|restart|firewall|preflight|decommission|service|endpoints)-(\d+)$/;

function childOf(r: PolicyResource, comp: PolicyResource): boolean {
    if (r.parent) return r.parent.urn === comp.urn;
    return r.name.startsWith(`${comp.name}-`);
}

/** `1+2: reason` entries of the published restart order. */
export function parseRestartOrder(entries: unknown[]): RestartGroup[] | undefined {
    const out: RestartGroup[] = [];
    for (const e of entries) {
        if (typeof e !== "string") return undefined;
        const m = /^(\d+(?:\+\d+)*): ?(.*)$/.exec(e);
        if (!m) return undefined;
        out.push({ ids: m[1].split("+").map(Number), reason: m[2] });
    }
    return out;
}

function stackOutputs(resources: PolicyResource[]): Record<string, any> | undefined {
    const stack = resources.find((r) => r.type === "pulumi:pulumi:Stack");
    return stack ? stack.props : undefined;
}

/** What the previous update applied, from the program's StackReference to its own stack. */
function previousApplied(resources: PolicyResource[]): Record<string, any> | typeof UNKNOWN | undefined {
    for (const r of resources) {
        if (r.type !== "pulumi:pulumi:StackReference") continue;
        const applied = read(() => r.props.outputs?.applied);
        if (applied === UNKNOWN) return UNKNOWN;
        if (applied && typeof applied === "object") return applied as Record<string, any>;
    }
    return undefined;
}

export function readEnsembles(resources: PolicyResource[]): RenderedEnsemble[] {
    const outputs = stackOutputs(resources);
    const applied = previousApplied(resources);
    const out: RenderedEnsemble[] = [];
    for (const comp of resources) {
        const traits = ENSEMBLE_TYPES[comp.type];
        if (!traits) continue;
        const e: RenderedEnsemble = { name: comp.name, traits, component: comp, servers: new Map(), published: new Map() };
        const server = (id: ServerId): RenderedServer => {
            let s = e.servers.get(id);
            if (!s) e.servers.set(id, (s = { id }));
            return s;
        };
        for (const r of resources) {
            if (r === comp || !childOf(r, comp)) continue;
            const rest = r.name.slice(comp.name.length);
            if (rest === "-statefulset" && r.type === "kubernetes:apps/v1:StatefulSet") e.statefulSet = r;
            else if (rest === "-configmap" && r.type === "kubernetes:core/v1:ConfigMap") e.configMap = r;
            else if (rest === "-pdb" && r.type === "kubernetes:policy/v1:PodDisruptionBudget") e.pdb = r;
            const m = CHILD.exec(r.name);
            if (!m || m[1] !== comp.name) continue;
            const s = server(Number(m[3]));
            switch (m[2]) {
                case "config": {
                    s.config = r;
                    const script = knownString(() => r.props.create);
                    s.written = script === undefined ? undefined : writtenMembership(scriptParams(script));
                    s.sshHost ??= knownString(() => r.props.connection?.host);
                    break;
                }
                case "restart": {
                    s.restart = r;
                    const script = read(() => r.props.update);
                    s.outcome = script === UNKNOWN ? "unknown" : typeof script === "string" ? restartOutcome(scriptParams(script)) : undefined;
                    // The restart step writes the config right before it restarts (no config step).
                    if (typeof script === "string") s.written ??= writtenMembership(scriptParams(script));
                    s.sshHost ??= knownString(() => r.props.connection?.host);
                    break;
                }
                case "firewall": {
                    s.firewall = r;
                    const script = knownString(() => r.props.create);
                    if (script !== undefined) {
                        const params = scriptParams(script);
                        const v4 = params.get("PEERS_V4");
                        const v6 = params.get("PEERS_V6");
                        s.firewallPeers = [...(Array.isArray(v4) ? v4 : []), ...(Array.isArray(v6) ? v6 : [])];
                    }
                    break;
                }
                case "decommission":
                    s.decommission = r;
                    break;
                case "service":
                    s.service = r;
                    break;
                case "endpoints":
                    s.endpoints = r;
                    break;
            }
        }
        const published = outputs === undefined ? undefined : read(() => outputs.ensembles?.[comp.name]);
        if (outputs !== undefined) e.restartOrderMissing = published === UNKNOWN ? "unknown" : "absent";
        if (published && published !== UNKNOWN && typeof published === "object") {
            const p = published as Record<string, any>;
            const order = read(() => p.restartOrder);
            if (order === UNKNOWN) e.restartOrderMissing = "unknown";
            else if (Array.isArray(order)) {
                e.restartOrder = parseRestartOrder(knownArray(() => order));
                if (e.restartOrder) e.restartOrderMissing = undefined;
            }
            for (const s of knownArray<Record<string, any>>(() => p.servers)) {
                const id = known(() => s.myid);
                if (typeof id === "number") {
                    e.published.set(id, { role: knownString(() => s.role), address: knownString(() => s.address), location: knownString(() => s.location) });
                }
            }
            e.connect = knownString(() => p.connect);
            e.oldConnect = knownString(() => p.oldConnect);
        }
        const prev = applied === UNKNOWN ? UNKNOWN : read(() => applied?.[comp.name]);
        if (prev === UNKNOWN) {
            e.previous = "unknown";
        } else if (prev && typeof prev === "object") {
            const p = prev as Record<string, any>;
            e.previous = { phase: knownString(() => p.phase), cutover: knownArray<number>(() => p.cutover).filter((x) => typeof x === "number") };
        }
        out.push(e);
    }
    return out;
}

/** Every resource `r` depends on, directly or through others (dependsOn and property dependencies). */
export function dependencyClosure(r: PolicyResource): Set<string> {
    const seen = new Set<string>();
    const stack = [r];
    while (stack.length > 0) {
        const x = stack.pop()!;
        const deps = [...(x.dependencies ?? []), ...Object.values(x.propertyDependencies ?? {}).flat()];
        for (const d of deps) {
            if (d && !seen.has(d.urn)) {
                seen.add(d.urn);
                stack.push(d);
            }
        }
    }
    return seen;
}

/** The role of a server: as published, else mitosis targets are the hosts that carry a firewall split. */
export function roleOf(e: RenderedEnsemble, id: ServerId): string | undefined {
    return e.published.get(id)?.role ?? (!e.traits.firewallSplit ? "server" : e.servers.get(id)?.firewall ? "target" : undefined);
}
