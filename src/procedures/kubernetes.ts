// Hosts to Kubernetes with no downtime (seed 000): wrap each server in a ClusterIP Service with
// manual Endpoints, move clients and then peers to the Service addresses, then replace each host
// by a pod with the same myid, one server per update. Why each phase comes where it does:
//   hosts     nothing changes: the preflight proves the hosts reach each other.
//   services  a Service without selector + manual Endpoints per server, to its host: the names
//             exist before anything uses them (the preflight proves the hosts resolve and reach them).
//   clients   the clients move to the Service names while the servers still run on hosts.
//   peers     the peers move too (rolling, leader last), with quorumListenOnAllIPs: a Service
//             address is virtual, and without it the election port fails to bind.
//   pods      one server per update: its host stops (and is disabled) before its pod, with the
//             same myid and server list, starts; the Service then selects the pod.
//   done      every server runs in a pod; the hosts are decommissioned.
import { isIP } from "node:net";
import { z } from "zod";
import { ensemblePath, type ConfigIssue } from "../config/errors";
import { absPath, chroot, hostOverrides, myid, phaseOf, resolveBase, serverSchema, type EnsembleBase, type HostDefaults, type ServerSpec } from "../config/schema";
import { endpointsKindFor, makeZooCfg } from "../kubernetes";
import { hostTarget, type ClientGroup, type Step } from "../steps";
import type { AppliedEnsemble, DesiredState, KubernetesServer, KubernetesState, Membership, ServerId, ServerState } from "../types";
import { duplicateIds, ensembleSizeIssue, groupHosts, hostMembership, leaderIssue, memberLines, serversConnect, unknownLeaderWarning } from "./common";
import { changedServers, closingSteps, hostSteps } from "./host-steps";
import { phaseIndexIn, type BackStep, type PlanContext, type Procedure, type RoomPlan } from "./procedure";

export const KUBERNETES_PHASES = ["hosts", "services", "clients", "peers", "pods", "done"] as const;
export type KubernetesPhase = (typeof KUBERNETES_PHASES)[number];

// ---------------------------------------------------------------------------------------------
// Config part

const kubernetesSettingsSchema = z.strictObject({
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "a Kubernetes namespace name").max(63).default("zookeeper"),
    /** Base name of the StatefulSet and of the per-server Services (`<name>-<myid>`); default: the ensemble name. */
    name: z.string().regex(/^[a-z]([-a-z0-9]*[a-z0-9])?$/, "a DNS label").max(40).optional(),
    image: z.string().min(1).default("zookeeper:3.9.3"),
    storageSize: z.string().regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/, "a Kubernetes quantity such as 10Gi").default("10Gi"),
    storageClassName: z.string().optional(),
    clusterDomain: z.string().default("cluster.local"),
    /** Container resources as Kubernetes takes them ({ requests, limits }). */
    resources: z.record(z.string(), z.unknown()).optional(),
    /** Extra zoo.cfg settings of the pods (tickTime, initLimit, ...). */
    settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
    /** dataDir inside the pods. */
    dataDir: absPath.default("/data"),
    /** sha256:<hex> of the image: the pods run <image repository>@<digest>. */
    imageDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/, "sha256:<64 hex digits>").optional(),
    /** A volume claim of this size for the transaction log (settings.dataLogDir, outside dataDir). */
    dataLogStorageSize: z.string().regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/, "a Kubernetes quantity such as 10Gi").optional(),
    /** Prometheus metrics on this port (ZooKeeper >= 3.6). */
    metricsPort: z.number().int().min(1).max(65535).optional(),
    /** Pod scheduling, passed through to the StatefulSet's pods. */
    scheduling: z
        .strictObject({
            nodeSelector: z.record(z.string(), z.string()).optional(),
            tolerations: z.array(z.record(z.string(), z.unknown())).optional(),
            topologySpreadConstraints: z.array(z.record(z.string(), z.unknown())).optional(),
            priorityClassName: z.string().optional(),
            /** `hard` (default): one server per node or Pending; `soft`: preferred (e.g. a single-node cluster). */
            podAntiAffinity: z.enum(["hard", "soft"]).optional(),
        })
        .optional(),
    terminationGracePeriodSeconds: z.number().int().min(6).optional(),
    /** How long `pulumi up` waits for the pods to be Ready (synced) before it stops with an error; default: the provider's 10 minutes. */
    readyTimeoutSeconds: z.number().int().min(30).max(86400).optional(),
    /** The cluster's Kubernetes version (e.g. v1.34.4): from 1.33 the manual endpoints are EndpointSlices. */
    clusterVersion: z.string().regex(/^v?\d+\.\d+/, "a version such as v1.34.4").optional(),
});

export const kubernetesSchema = z.strictObject({
    name: z.string(),
    procedure: z.literal("kubernetes"),
    phase: phaseOf(KUBERNETES_PHASES, "kubernetes"),
    servers: z.array(serverSchema).min(1),
    /** Servers moved into pods, in cutover order; grows by at most one per update. */
    cutover: z.array(myid).default([]),
    leader: myid.optional(),
    allowSingleServer: z.boolean().default(false),
    clients: z.strictObject({ chroot: chroot.optional() }).prefault({}),
    kubernetes: kubernetesSettingsSchema.prefault({}),
    ...hostOverrides,
});
type KubernetesInput = z.output<typeof kubernetesSchema>;

export type KubernetesConfig = EnsembleBase &
    Pick<KubernetesInput, "servers" | "cutover"> & {
        procedure: "kubernetes";
        kubernetes: z.output<typeof kubernetesSettingsSchema> & { name: string };
    };

function resolve(e: KubernetesInput, index: number, d: HostDefaults): KubernetesConfig {
    return {
        ...resolveBase(e, index, d),
        chroot: e.clients.chroot,
        leader: e.leader,
        procedure: "kubernetes",
        servers: e.servers,
        cutover: e.cutover,
        kubernetes: { ...e.kubernetes, name: e.kubernetes.name ?? e.name },
    };
}

const groups = (e: KubernetesConfig): [string, ServerSpec[]][] => [["servers", e.servers]];
const idx = (p: string) => phaseIndexIn("kubernetes", KUBERNETES_PHASES, p);

function validate(e: KubernetesConfig): ConfigIssue[] {
    const issues = duplicateIds(e, groups(e));
    const size = ensembleSizeIssue(e, "servers", e.servers.length);
    if (size) issues.push(size);
    e.servers.forEach((s, i) => {
        if (isIP(s.host) === 0) {
            issues.push({ path: ensemblePath(e, `.servers[${i}].host`), reason: `"${s.host}" is not an IP address; the Service's manual Endpoints need the host's IP` });
        }
    });
    const ids = new Set(e.servers.map((s) => s.id));
    e.cutover.forEach((id, i) => {
        if (!ids.has(id)) issues.push({ path: ensemblePath(e, `.cutover[${i}]`), reason: `myid ${id} is not a server of this ensemble` });
    });
    if (new Set(e.cutover).size !== e.cutover.length) {
        issues.push({ path: ensemblePath(e, ".cutover"), reason: "a server is listed twice" });
    }
    if (e.cutover.length > 0 && idx(e.phase) < idx("pods")) {
        issues.push({
            path: ensemblePath(e, ".cutover"),
            reason: `servers move into pods only in phase "pods" (the peers must talk through the Services first); phase is "${e.phase}"`,
        });
    }
    if (e.phase === "done" && e.cutover.length !== e.servers.length) {
        const missing = e.servers.filter((s) => !e.cutover.includes(s.id)).map((s) => s.id);
        issues.push({ path: ensemblePath(e, ".phase"), reason: `"done" needs every server cut over; still on hosts: ${missing.join(", ")}` });
    }
    issues.push(...leaderIssue(e, e.servers));
    // The pods' zoo.cfg refuses settings that zkmigrate owns (membership, dataDir, ...): say so here.
    try {
        const members = e.servers.map((s) => ({ id: s.id, address: `${e.kubernetes.name}-${s.id}`, peerPort: e.ports.peer, electionPort: e.ports.election }));
        makeZooCfg({
            dataDir: e.kubernetes.dataDir,
            clientPort: e.ports.client,
            members,
            quorumListenOnAllIPs: true,
            settings: e.kubernetes.settings,
            separateDataLog: e.kubernetes.dataLogStorageSize !== undefined,
            metricsPort: e.kubernetes.metricsPort,
        });
    } catch (err) {
        issues.push({ path: ensemblePath(e, ".kubernetes.settings"), reason: (err as Error).message.replace(/^zkmigrate kubernetes: /, "") });
    }
    return issues;
}

/** Fields of the StatefulSet that Kubernetes cannot change in place. */
function statefulSetIdentity(e: KubernetesConfig): string {
    const k = e.kubernetes;
    return `${k.namespace}/${k.name} ${k.storageSize} ${k.storageClassName ?? "(default class)"}`;
}

function transitionIssues(e: KubernetesConfig, applied: AppliedEnsemble | undefined, current: AppliedEnsemble): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    if (applied?.statefulSet !== undefined && current.cutover.length > 0 && applied.statefulSet !== statefulSetIdentity(e)) {
        issues.push({
            path: ensemblePath(e, ".kubernetes"),
            reason:
                `namespace, name, storageSize and storageClassName cannot change while servers run in pods ` +
                `(applied: ${applied.statefulSet}; now: ${statefulSetIdentity(e)}): Kubernetes would replace the StatefulSet, every pod at once`,
        });
    }
    const prev = current.cutover;
    const prefix = e.cutover.slice(0, prev.length);
    if (prefix.length < prev.length || prefix.some((id, i) => id !== prev[i])) {
        issues.push({
            path: ensemblePath(e, ".cutover"),
            reason: `servers already in pods cannot leave or change order (applied cutover: [${prev.join(", ")}]); only append`,
        });
    } else if (e.cutover.length - prev.length > 1) {
        issues.push({
            path: ensemblePath(e, ".cutover"),
            reason: `${e.cutover.length - prev.length} servers added to the cutover in one update (applied: [${prev.join(", ")}]); move one server per update so the others keep a majority`,
        });
    }
    return issues;
}

// ---------------------------------------------------------------------------------------------
// The phase table (DESIGN.md "Procedure kubernetes"): per phase, the membership the servers write
// and run with (host addresses, or the Service names with quorumListenOnAllIPs), whether the
// per-server Services exist, whether servers in `cutover` run in pods, where clients point, and
// whether the preflight runs. Restarts are rolling, one at a time, the leader last.

interface KubernetesRow {
    membership: "hosts" | "services";
    services: boolean;
    pods: boolean;
    clients: "hosts" | "services";
    /** `hosts`: the hosts reach each other; `services`: they also resolve the Service names and reach them. */
    preflight: false | "hosts" | "services";
}

export const KUBERNETES_TABLE: Record<KubernetesPhase, KubernetesRow> = {
    hosts: { membership: "hosts", services: false, pods: false, clients: "hosts", preflight: "hosts" },
    services: { membership: "hosts", services: true, pods: false, clients: "hosts", preflight: "services" },
    clients: { membership: "hosts", services: true, pods: false, clients: "services", preflight: false },
    peers: { membership: "services", services: true, pods: false, clients: "services", preflight: false },
    pods: { membership: "services", services: true, pods: true, clients: "services", preflight: false },
    done: { membership: "services", services: true, pods: true, clients: "services", preflight: false },
};

/** Stepping back one phase (the key is the phase stepped back from). */
const BACK: Record<Exclude<KubernetesPhase, "hosts">, BackStep> = {
    services: { allowed: true, reason: "the Services go; nothing used them yet" },
    clients: { allowed: true, reason: "the clients return to the host addresses; both reach the same servers" },
    peers: { allowed: true, reason: "the peers return to the host addresses, rolling, the leader last" },
    pods: { allowed: true, reason: "the cutover list cannot shrink (servers in pods stay): only an empty cutover steps back" },
    done: { allowed: true, reason: "nothing runs differently in done" },
};

export function serviceNames(e: KubernetesConfig): Map<number, { name: string; fqdn: string }> {
    const k = e.kubernetes;
    return new Map(
        e.servers.map((s) => {
            const name = `${k.name}-${s.id}`;
            return [s.id, { name, fqdn: `${name}.${k.namespace}.svc.${k.clusterDomain}` }];
        }),
    );
}

export function kubernetesDesired(e: KubernetesConfig, phase: string = e.phase, cutoverNow: ServerId[] = e.cutover): DesiredState {
    idx(phase);
    const row = KUBERNETES_TABLE[phase as KubernetesPhase];
    const names = serviceNames(e);
    const cutover = row.pods ? cutoverNow : [];
    // Service addresses are virtual (not bound on any host or pod): without quorumListenOnAllIPs
    // the election port fails to bind (BindException, no ensemble).
    const services: Membership = {
        members: memberLines(e.servers.map((s) => ({ id: s.id, address: names.get(s.id)!.fqdn })), e.ports),
        quorumListenOnAllIPs: true,
    };
    const membership = row.membership === "services" ? services : hostMembership(e.servers, e.ports, false);

    const servers: ServerState[] = e.servers.map((s) => {
        const inPod = cutover.includes(s.id);
        return {
            id: s.id,
            role: "server",
            host: s.host,
            sshHost: s.sshHost,
            hostKey: s.hostKey,
            location: inPod ? "pod" : "host",
            running: true,
            written: membership,
            runningWith: membership,
            dormant: false,
            wipeDataOnStart: false,
            decommissioned: inPod,
        };
    });

    const k = e.kubernetes;
    const kservers: KubernetesServer[] = e.servers.map((s) => {
        const ordinal = cutover.indexOf(s.id);
        return {
            id: s.id,
            host: s.host,
            serviceName: names.get(s.id)!.name,
            serviceFqdn: names.get(s.id)!.fqdn,
            backend: ordinal >= 0 ? "pod" : "host",
            ordinal: ordinal >= 0 ? ordinal : undefined,
        };
    });
    const kubernetes: KubernetesState = {
        namespace: k.namespace,
        name: k.name,
        labels: { "app.kubernetes.io/name": "zookeeper", "app.kubernetes.io/instance": k.name, "app.kubernetes.io/managed-by": "zkmigrate" },
        ports: e.ports,
        servers: kservers,
        services: row.services,
        statefulSet:
            cutover.length > 0
                ? {
                      replicas: cutover.length,
                      ordinalToMyid: Object.fromEntries(cutover.map((id, i) => [i, id])),
                      image: k.image,
                      storageSize: k.storageSize,
                      storageClassName: k.storageClassName,
                      zooCfg: makeZooCfg({
                          dataDir: k.dataDir,
                          clientPort: e.ports.client,
                          members: services.members,
                          quorumListenOnAllIPs: true,
                          settings: k.settings,
                          separateDataLog: k.dataLogStorageSize !== undefined,
                          metricsPort: k.metricsPort,
                      }),
                      resources: k.resources,
                      imageDigest: k.imageDigest,
                      dataLogStorageSize: k.dataLogStorageSize,
                      scheduling: k.scheduling,
                      terminationGracePeriodSeconds: k.terminationGracePeriodSeconds,
                      readyTimeoutSeconds: k.readyTimeoutSeconds,
                  }
                : undefined,
        endpointsKind: k.clusterVersion ? endpointsKindFor(k.clusterVersion) : "Endpoints",
    };

    const old = serversConnect(e.servers, e.ports.client, e.chroot);
    const next = serversConnect(e.servers.map((s) => ({ id: s.id, host: names.get(s.id)!.fqdn })), e.ports.client, e.chroot);
    return {
        ensemble: e.name,
        procedure: "kubernetes",
        phase,
        servers,
        firewall: [],
        clients: { old, next, current: row.clients === "services" ? next : old },
        kubernetes,
        preflight: row.preflight !== false,
    };
}

const clientGroups = (d: DesiredState): ClientGroup[] => [{ name: "clients", connect: d.clients.current }];

// ---------------------------------------------------------------------------------------------
// Planning one step

function plan(ctx: PlanContext<KubernetesConfig>): RoomPlan {
    const { e, from, to, leader } = ctx;
    const warnings: string[] = [];
    // Rolling, one at a time, the leader last (one election instead of two).
    const changed = changedServers(from, to);
    const leaders = new Set(leader.leaders);
    if (changed.length > 0 && !leader.known) warnings.push(unknownLeaderWarning(e, leader));
    const restartOrder = [...changed]
        .sort((a, b) => (leaders.has(a.id) ? 1 : 0) - (leaders.has(b.id) ? 1 : 0) || a.id - b.id)
        .map((s) => ({ ids: [s.id], reason: leaders.has(s.id) ? "leader last" : leader.known ? "follower" : "fixed order" }));

    const k = to.kubernetes!;
    const steps: Step[] = [];
    // A host whose server moves into a pod is stopped and disabled first: two servers with one
    // myid must never run at once. All hosts named in one update stop before their pods start.
    const podsBefore = new Set(from.servers.filter((s) => s.location === "pod").map((s) => s.id));
    const newPods = to.servers.filter((s) => s.location === "pod" && !podsBefore.has(s.id)).map((s) => s.id);
    const cutover = newPods.length > 0 ? ({ kind: "cutover", ids: newPods } as const) : undefined;
    for (const s of to.servers.filter((x) => x.decommissioned)) {
        steps.push({
            id: `decommission-${s.id}`,
            kind: "decommission",
            after: [],
            target: hostTarget(s),
            server: s.id,
            settings: e.host,
            ...(newPods.includes(s.id) ? { effect: cutover } : {}),
        });
    }
    const servicesIds: string[] = [];
    if (k.services) {
        const created = from.kubernetes?.services ? undefined : ({ kind: "services-create" } as const);
        for (const s of k.servers) {
            // The Service switches to the pod selector only after its host stopped.
            const decommission = to.servers.find((x) => x.id === s.id)!.decommissioned ? [`decommission-${s.id}`] : [];
            steps.push({ id: `service-${s.id}`, kind: "k8s-service", after: decommission, k8s: k, server: s, ...(created ? { effect: created } : {}) });
            servicesIds.push(`service-${s.id}`);
            if (s.backend === "host") {
                steps.push({ id: `endpoints-${s.id}`, kind: "k8s-endpoints", after: [], k8s: k, server: s, ...(created ? { effect: created } : {}) });
                servicesIds.push(`endpoints-${s.id}`);
            }
        }
    }
    // Peers restart onto the Service names only once the Services exist; the preflight of
    // `services` checks them.
    steps.push(
        ...hostSteps({
            ensemble: e.name,
            settings: e.host,
            spacingSeconds: e.spacingSeconds,
            from,
            to,
            groups: restartOrder,
            firewallWindows: [],
            groupWindows: () => [],
            preflight: (s) => ({
                reach: [
                    ...e.servers.filter((o) => o.id !== s.id).map((o) => ({ address: o.host, port: e.ports.client })),
                    ...(k.services ? k.servers.map((o) => ({ address: o.serviceFqdn, port: e.ports.client })) : []),
                ],
                resolveNames: k.services ? k.servers.map((o) => o.serviceFqdn) : [],
                // The Services were created moments before: the cluster's DNS and kube-proxy follow shortly.
                ...(k.services ? { settleSeconds: 60 } : {}),
                requireCommands: ["timeout", "getent"],
                // The peers move to the Service names by rolling restart (ZOOKEEPER-3829/3830).
                versionGuard: true,
            }),
            after: servicesIds,
        }),
    );
    if (k.statefulSet) {
        // Pulumi waits until the StatefulSet's pods are ready: ready means `srvr` answers with a
        // Mode, which ZooKeeper does only once the new server has synced with the leader.
        steps.push({ id: "configmap", kind: "k8s-configmap", after: [], k8s: k });
        steps.push({ id: "headless", kind: "k8s-headless", after: [], k8s: k });
        steps.push({ id: "pdb", kind: "k8s-pdb", after: [], k8s: k });
        const decommissions = steps.filter((s) => s.kind === "decommission").map((s) => s.id);
        steps.push({ id: "statefulset", kind: "k8s-statefulset", after: ["configmap", "headless", ...decommissions, ...servicesIds.filter((i) => i.startsWith("service-"))], k8s: k });
    }
    steps.push(...closingSteps(from, to, clientGroups));
    return { steps, restartOrder, windows: [], warnings };
}

export const kubernetes: Procedure<KubernetesConfig> = {
    name: "kubernetes",
    phases: KUBERNETES_PHASES,
    componentType: "zkmigrate:kubernetes:Ensemble",
    schema: kubernetesSchema,
    managesServers: true,
    back: BACK,
    removal: { phases: ["hosts"], otherwise: "its resources' deletes would remove the Services the servers use as their addresses, and from `pods` on the StatefulSet that runs them: step it back to `hosts` (one phase per update) before removing it, or keep it in the config after `done` (hand-off: README, after done)" },
    resolve: resolve as Procedure<KubernetesConfig>["resolve"],
    validate,
    groups,
    sshHosts: (e) => groupHosts(groups(e)),
    desired: (e, at) => kubernetesDesired(e, at.phase, at.cutover ?? e.cutover),
    clientGroups,
    transitionIssues,
    appliedExtra: (e) => ({ cutover: [...e.cutover], statefulSet: statefulSetIdentity(e) }),
    plan,
};
