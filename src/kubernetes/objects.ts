// The Kubernetes objects of the hosts-to-Kubernetes migration, as plain manifests: one pure
// builder per object (in the manner of the pravega zookeeper-operator's `Make*` functions).
// No Pulumi here: the component (components/kubernetes-ensemble.ts) hands these to
// @pulumi/kubernetes, and the tests read them as they are.
import { isIP } from "node:net";
import { FOUR_LETTER_WHITELIST, renderZooCfg, ZOO_CFG_BASE } from "../format/zoo-cfg";
import { serverLines } from "../scripts/config";
import { sh } from "../scripts/shell";
import type { KubernetesScheduling, KubernetesServer, KubernetesState, MemberLine, ServerId } from "../types";

// ---- Manifest shapes (only the fields these builders set). ----

export interface ObjectMeta {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
}

/** The names of the three ZooKeeper ports, the same in Services, Endpoints and containers. */
export type PortName = "client" | "peer" | "leader-election";
/** The container port of ZooKeeper's Prometheus metrics (zoo.cfg `metricsProvider.httpPort`). */
export type ContainerPortName = PortName | "metrics";

export interface ServicePort {
    name: PortName;
    protocol: "TCP";
    port: number;
    targetPort: number;
}

export interface ServiceManifest {
    apiVersion: "v1";
    kind: "Service";
    metadata: ObjectMeta;
    spec: {
        type: "ClusterIP";
        /** `None` on the headless governing Service only. */
        clusterIP?: "None";
        publishNotReadyAddresses: boolean;
        selector?: Record<string, string>;
        ports: ServicePort[];
    };
}

export interface EndpointPort {
    name: PortName;
    protocol: "TCP";
    port: number;
}

export interface EndpointsManifest {
    apiVersion: "v1";
    kind: "Endpoints";
    metadata: ObjectMeta;
    subsets: { addresses: { ip: string }[]; ports: EndpointPort[] }[];
}

/** discovery.k8s.io/v1 EndpointSlice: the manual endpoints of a server on a host, from Kubernetes 1.33 on. */
export interface EndpointSliceManifest {
    apiVersion: "discovery.k8s.io/v1";
    kind: "EndpointSlice";
    metadata: ObjectMeta;
    addressType: "IPv4" | "IPv6";
    endpoints: { addresses: string[]; conditions: { ready: boolean } }[];
    ports: EndpointPort[];
}

export interface ConfigMapManifest {
    apiVersion: "v1";
    kind: "ConfigMap";
    metadata: ObjectMeta;
    data: { "zoo.cfg": string; myids: string; "init.sh": string };
}

export interface ExecProbe {
    exec: { command: string[] };
    initialDelaySeconds: number;
    periodSeconds: number;
    timeoutSeconds: number;
    successThreshold: number;
    failureThreshold: number;
}

export interface EnvVar {
    name: string;
    value?: string;
    valueFrom?: { fieldRef: { fieldPath: string } };
}

export interface ContainerSecurityContext {
    runAsNonRoot: true;
    readOnlyRootFilesystem: true;
    allowPrivilegeEscalation: false;
    capabilities: { drop: ["ALL"] };
    seccompProfile: { type: "RuntimeDefault" };
}

export interface Container {
    name: string;
    image: string;
    command: string[];
    env: EnvVar[];
    ports?: { name: ContainerPortName; containerPort: number; protocol: "TCP" }[];
    readinessProbe?: ExecProbe;
    livenessProbe?: ExecProbe;
    lifecycle?: { preStop: { exec: { command: string[] } } };
    resources?: Record<string, unknown>;
    securityContext: ContainerSecurityContext;
    volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface LabelSelector {
    matchLabels: Record<string, string>;
}

export interface StatefulSetManifest {
    apiVersion: "apps/v1";
    kind: "StatefulSet";
    metadata: ObjectMeta;
    spec: {
        serviceName: string;
        replicas: number;
        podManagementPolicy: "OrderedReady";
        updateStrategy: { type: "OnDelete" };
        selector: LabelSelector;
        template: {
            metadata: { labels: Record<string, string> };
            spec: {
                securityContext: Record<string, unknown>;
                terminationGracePeriodSeconds: number;
                nodeSelector?: Record<string, string>;
                tolerations?: Record<string, unknown>[];
                topologySpreadConstraints?: Record<string, unknown>[];
                priorityClassName?: string;
                affinity: {
                    podAntiAffinity:
                        | { requiredDuringSchedulingIgnoredDuringExecution: { labelSelector: LabelSelector; topologyKey: string }[] }
                        | { preferredDuringSchedulingIgnoredDuringExecution: { weight: number; podAffinityTerm: { labelSelector: LabelSelector; topologyKey: string } }[] };
                };
                initContainers: Container[];
                containers: Container[];
                volumes: ({ name: string; configMap: { name: string } } | { name: string; emptyDir: Record<string, never> })[];
            };
        };
        volumeClaimTemplates: {
            metadata: { name: string; labels: Record<string, string> };
            spec: {
                accessModes: ["ReadWriteOnce"];
                storageClassName?: string;
                resources: { requests: { storage: string } };
            };
        }[];
    };
}

export interface PodDisruptionBudgetManifest {
    apiVersion: "policy/v1";
    kind: "PodDisruptionBudget";
    metadata: ObjectMeta;
    spec: { maxUnavailable: number; selector: LabelSelector };
}

// ---- Constants shared by the builders, the init script and the tests. ----

/** The label that carries a server's myid on its Service and Endpoints. */
export const MYID_LABEL = "zkmigrate/myid";
/** The label the StatefulSet controller puts on each pod: the pod's own name. */
export const POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name";

/** Where the pods see the ConfigMap (zoo.cfg, myids, init.sh): read by the init container. */
export const CONFIGMAP_MOUNT = "/config";
/** The emptyDir the init container fills and ZooKeeper reads its config from (ZOOCFGDIR). */
export const CONF_MOUNT = "/zkmigrate/conf";
/** The conf dir of the official `zookeeper` image, from which the logging configuration is copied. */
export const IMAGE_CONF_DIR = "/conf";
/** uid/gid of the `zookeeper` user of the official image. */
export const ZOOKEEPER_UID = 1000;

/** The 4lw commands the pods answer: the probes need srvr and ruok, zkmigrate's checks srvr. */
export { FOUR_LETTER_WHITELIST };

function fail(what: string): never {
    throw new Error(`zkmigrate kubernetes: ${what}`);
}

// ---- Names and validation. ----

const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Names derived from the base name: the StatefulSet, `-headless`, `-config`, `-pdb`, `-<ordinal>`. */
function checkBase(k: KubernetesState): void {
    // A StatefulSet's pods carry `controller-revision-hash: <name>-<hash>`, a label value of at
    // most 63 characters: longer names are accepted and then never get a pod.
    if (!DNS1035.test(k.name) || k.name.length > 52) fail(`name ${JSON.stringify(k.name)} must be a DNS-1035 label of at most 52 characters`);
    if (!DNS1123.test(k.namespace) || k.namespace.length > 63) fail(`namespace ${JSON.stringify(k.namespace)} must be a DNS-1123 label`);
    // The labels select the pods (StatefulSet, headless Service, PDB, anti-affinity): an empty
    // selector would match every pod of the namespace.
    if (Object.keys(k.labels).length === 0) fail("labels must not be empty: they select the ensemble's pods");
    for (const [name, port] of Object.entries(k.ports)) {
        if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`${name} port must be an integer in 1..65535, got ${port}`);
    }
}

function checkServiceName(s: KubernetesServer): void {
    if (!DNS1035.test(s.serviceName) || s.serviceName.length > 63) {
        fail(`Service name ${JSON.stringify(s.serviceName)} of server ${s.id} must be a DNS-1035 label (at most 63 characters)`);
    }
}

type StatefulSetState = NonNullable<KubernetesState["statefulSet"]>;

/** The ordinal -> myid table, sorted by ordinal, after validating it against `replicas`. */
function ordinalTable(k: KubernetesState): [number, ServerId][] {
    const st = statefulSetOf(k);
    if (!Number.isInteger(st.replicas) || st.replicas < 0) fail(`replicas must be a non-negative integer, got ${st.replicas}`);
    const rows: [number, ServerId][] = Object.entries(st.ordinalToMyid).map(([o, id]) => {
        if (!/^(0|[1-9][0-9]*)$/.test(o)) fail(`ordinal ${JSON.stringify(o)} is not a non-negative integer`);
        if (!Number.isInteger(id) || id < 1 || id > 255) fail(`ordinal ${o} maps to myid ${id}, not an integer in 1..255`);
        return [Number(o), id];
    });
    rows.sort((a, b) => a[0] - b[0]);
    const seen = new Map<ServerId, number>();
    for (const [o, id] of rows) {
        if (seen.has(id)) fail(`myid ${id} is carried by ordinals ${seen.get(id)} and ${o}: two servers with one myid`);
        seen.set(id, o);
    }
    for (let o = 0; o < st.replicas; o++) {
        if (!rows.some((r) => r[0] === o)) fail(`ordinal ${o} (pod ${k.name}-${o}) has no myid in ordinalToMyid`);
    }
    return rows;
}

function statefulSetOf(k: KubernetesState): StatefulSetState {
    if (!k.statefulSet) fail(`ensemble ${k.name} has no StatefulSet in this phase (no server is cut over)`);
    return k.statefulSet;
}

/** The value of `key=` in a zoo.cfg (the last one wins, as java.util.Properties reads it). */
export function zooCfgValue(zooCfg: string, key: string): string | undefined {
    let value: string | undefined;
    for (const raw of zooCfg.split("\n")) {
        const line = raw.trim();
        if (line.startsWith("#")) continue;
        const eq = line.indexOf("=");
        if (eq > 0 && line.slice(0, eq).trim() === key) value = line.slice(eq + 1).trim();
    }
    return value;
}

function named<T>(k: KubernetesState, f: (name: PortName, port: number) => T): T[] {
    return [f("client", k.ports.client), f("peer", k.ports.peer), f("leader-election", k.ports.election)];
}

function servicePorts(k: KubernetesState): ServicePort[] {
    return named(k, (name, port) => ({ name, protocol: "TCP" as const, port, targetPort: port }));
}

function meta(k: KubernetesState, name: string, extra: Record<string, string> = {}): ObjectMeta {
    return { name, namespace: k.namespace, labels: { ...k.labels, ...extra } };
}

// ---- Builders. ----

/**
 * The per-server ClusterIP Service: a stable virtual address for one server, whoever backs it.
 *
 * - No selector while the server runs on its host (`backend: "host"`): its Endpoints are set by
 *   hand ({@link makeEndpoints}). Once cut over (`backend: "pod"`), the selector picks exactly the
 *   pod of its ordinal by `statefulset.kubernetes.io/pod-name`, and the endpoints controller takes
 *   the Endpoints object over.
 * - `publishNotReadyAddresses: true`: a pod becomes ready only once it has synced with its peers,
 *   and its peers reach it only through this Service; without it the new server could never join
 *   (the cutover deadlocks).
 * - Named ports: the names tie the Service ports to the Endpoints ports (a selector-less Service
 *   routes by port name), and `port` = `targetPort` so the hosts' and the pods' ports agree.
 */
export function makeService(k: KubernetesState, s: KubernetesServer): ServiceManifest {
    checkBase(k);
    checkServiceName(s);
    let selector: Record<string, string> | undefined;
    if (s.backend === "pod") {
        if (s.ordinal === undefined) fail(`server ${s.id} runs in a pod but has no StatefulSet ordinal`);
        const table = ordinalTable(k);
        const st = statefulSetOf(k);
        if (s.ordinal >= st.replicas) fail(`server ${s.id} is at ordinal ${s.ordinal}, but the StatefulSet has ${st.replicas} replicas`);
        const carried = table.find((r) => r[0] === s.ordinal)?.[1];
        // The Service of server N must never reach the pod of another myid.
        if (carried !== s.id) fail(`server ${s.id} is at ordinal ${s.ordinal}, but that ordinal carries myid ${carried}`);
        selector = { [POD_NAME_LABEL]: `${k.name}-${s.ordinal}` };
    }
    return {
        apiVersion: "v1",
        kind: "Service",
        metadata: meta(k, s.serviceName, { [MYID_LABEL]: String(s.id) }),
        spec: {
            type: "ClusterIP",
            publishNotReadyAddresses: true,
            ...(selector ? { selector } : {}),
            ports: servicePorts(k),
        },
    };
}

/** 127.0.0.0/8, ::1, link-local and unspecified addresses: the API server refuses them in Endpoints. */
function refusedEndpointIp(ip: string): string | undefined {
    if (isIP(ip) === 4) {
        const [a, b] = ip.split(".").map(Number);
        if (a === 127) return "a loopback address";
        if (a === 169 && b === 254) return "a link-local address";
        if (ip === "0.0.0.0") return "the unspecified address";
        if (a >= 224 && a <= 239) return "a multicast address";
        return undefined;
    }
    const v6 = ip.toLowerCase();
    if (v6 === "::1" || v6 === "0:0:0:0:0:0:0:1") return "a loopback address";
    if (v6 === "::" || v6 === "0:0:0:0:0:0:0:0") return "the unspecified address";
    if (/^fe[89ab][0-9a-f]:/.test(v6)) return "a link-local address";
    if (v6.startsWith("ff")) return "a multicast address";
    return undefined;
}

/**
 * The manual Endpoints of a server that still runs on its host: same name as its Service (that is
 * what binds them), one subset with the host's IP and the Service's named ports.
 *
 * Only for `backend: "host"`: once the Service has a selector, the endpoints controller owns this
 * object, and a manual one would fight it. Endpoints take IP addresses, never names: a host name
 * is refused here rather than by the API server in the middle of an update.
 */
export function makeEndpoints(k: KubernetesState, s: KubernetesServer): EndpointsManifest {
    checkBase(k);
    checkServiceName(s);
    if (s.backend !== "host") fail(`server ${s.id} runs in a pod: its Service selects the pod, it gets no manual Endpoints`);
    if (isIP(s.host) === 0) fail(`server ${s.id}: host ${JSON.stringify(s.host)} is not an IP address (Endpoints take IP addresses, not names)`);
    const refused = refusedEndpointIp(s.host);
    if (refused) fail(`server ${s.id}: host ${s.host} is ${refused}, which Endpoints do not accept`);
    return {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: meta(k, s.serviceName, { [MYID_LABEL]: String(s.id) }),
        subsets: [
            {
                addresses: [{ ip: s.host }],
                ports: named(k, (name, port) => ({ name, protocol: "TCP" as const, port })),
            },
        ],
    };
}

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
/**
 * Who manages the slices zkmigrate writes: the cluster's endpointslice controllers leave them alone.
 * A label value (no `/`; the API server refuses one), as the controller's own `endpointslice-controller.k8s.io`.
 */
export const SLICE_MANAGER = "zkmigrate.io";

/**
 * The Kubernetes release from which the manual endpoints are an EndpointSlice rather than a v1
 * Endpoints: 1.33 deprecates v1 Endpoints (the API server answers every write with a warning).
 * Before it, the v1 Endpoints object is what the cluster mirrors into an EndpointSlice itself.
 */
export const ENDPOINT_SLICES_FROM = { major: 1, minor: 33 };

/**
 * `Endpoints` or `EndpointSlice` for a cluster of `version` (`v1.34.4`, `1.32`, `v1.33.0-eks-1`,
 * as `kubectl version` or the API server's /version give it).
 */
export function endpointsKindFor(version: string): "Endpoints" | "EndpointSlice" {
    const m = /^v?(\d+)\.(\d+)/.exec(version.trim());
    if (!m) fail(`cannot read a Kubernetes version from ${JSON.stringify(version)} (expected e.g. v1.33.2)`);
    const [major, minor] = [Number(m[1]), Number(m[2])];
    const slices = major > ENDPOINT_SLICES_FROM.major || (major === ENDPOINT_SLICES_FROM.major && minor >= ENDPOINT_SLICES_FROM.minor);
    return slices ? "EndpointSlice" : "Endpoints";
}

/**
 * The EndpointSlice `<service>-zkmigrate` of a server that still runs on its host: label
 * `kubernetes.io/service-name` binds it to the Service (no selector), `managed-by` keeps the
 * cluster's controllers off it, one endpoint (the host, ready) and the Service's named ports.
 * Same checks as {@link makeEndpoints}.
 */
export function makeEndpointSlice(k: KubernetesState, s: KubernetesServer): EndpointSliceManifest {
    const e = makeEndpoints(k, s);
    return {
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
            ...e.metadata,
            name: `${s.serviceName}-zkmigrate`,
            labels: { ...e.metadata.labels, [SERVICE_NAME_LABEL]: s.serviceName, "endpointslice.kubernetes.io/managed-by": SLICE_MANAGER },
        },
        addressType: isIP(s.host) === 6 ? "IPv6" : "IPv4",
        endpoints: [{ addresses: [s.host], conditions: { ready: true } }],
        ports: e.subsets[0].ports,
    };
}

/** The manual endpoints of a server on its host, as the ensemble's `endpointsKind` says (default v1 Endpoints). */
export function makeServerEndpoints(k: KubernetesState, s: KubernetesServer): EndpointsManifest | EndpointSliceManifest {
    return k.endpointsKind === "EndpointSlice" ? makeEndpointSlice(k, s) : makeEndpoints(k, s);
}

/**
 * The init script of the pods (ConfigMap key `init.sh`, run by bash in the init container).
 * Paths come from the environment so that it runs anywhere (tests set them to a temp dir):
 * CONFIG_DIR (the ConfigMap, default /config), DATA_DIR (dataDir on the volume claim, default
 * /data), CONF_DIR (ZooKeeper's config dir, default /zkmigrate/conf), IMAGE_CONF_DIR (the image's
 * conf dir, default /conf), POD_NAME or else HOSTNAME (`<statefulset>-<ordinal>`).
 */
export const INIT_SCRIPT = sh`#!/bin/bash
# zkmigrate init container: gives this pod the myid its StatefulSet ordinal carries (myids need not
# be contiguous: the operator's cutover order decides) and installs zoo.cfg for ZooKeeper.
set -euo pipefail
CONFIG_DIR="\${CONFIG_DIR:-/config}"
DATA_DIR="\${DATA_DIR:-/data}"
CONF_DIR="\${CONF_DIR:-/zkmigrate/conf}"
IMAGE_CONF_DIR="\${IMAGE_CONF_DIR:-/conf}"

die() { printf 'zkmigrate init: %s\n' "$*" >&2; exit 1; }
say() { printf 'zkmigrate init: %s\n' "$*"; }

pod="\${POD_NAME:-\${HOSTNAME:-}}"
[[ -n "$pod" ]] || die "neither POD_NAME nor HOSTNAME is set: cannot tell this pod's StatefulSet ordinal"
ordinal="\${pod##*-}"
[[ "$ordinal" =~ ^[0-9]+$ ]] || die "pod name '$pod' does not end in -<ordinal>"
ordinal="$((10#$ordinal))"

[[ -r "$CONFIG_DIR/myids" ]] || die "$CONFIG_DIR/myids is not readable (is the ConfigMap mounted?)"
myid=""
while read -r o id _ || [[ -n "\${o:-}" ]]; do
    if [[ "\${o:-}" == "$ordinal" ]]; then
        myid="\${id:-}"
        break
    fi
    o=""
done <"$CONFIG_DIR/myids"
# Never guess: two servers with one myid corrupt the ensemble. The kubelet may still hold an older
# ConfigMap for a moment; failing here makes it retry the init container.
[[ -n "$myid" ]] || die "ordinal $ordinal (pod $pod) has no myid in $CONFIG_DIR/myids: refusing to start"
[[ "$myid" =~ ^[0-9]+$ ]] || die "ordinal $ordinal maps to '$myid' in $CONFIG_DIR/myids, not a number"
myid="$((10#$myid))"
((myid >= 1 && myid <= 255)) || die "ordinal $ordinal maps to myid $myid, outside 1..255"

[[ -r "$CONFIG_DIR/zoo.cfg" ]] || die "$CONFIG_DIR/zoo.cfg is not readable (is the ConfigMap mounted?)"
member=""
while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" == "server.$myid="* ]]; then
        member=yes
        break
    fi
    line=""
done <"$CONFIG_DIR/zoo.cfg"
[[ -n "$member" ]] || die "zoo.cfg has no line server.$myid=: ZooKeeper would refuse to start as myid $myid"

mkdir -p -- "$DATA_DIR" "$CONF_DIR"
if [[ -f "$DATA_DIR/myid" ]]; then
    current="$(<"$DATA_DIR/myid")"
    current="\${current//[[:space:]]/}"
    # A volume claim belongs to its ordinal: if the ordinal now carries another myid (the cutover
    # order was changed after this claim was used), its data is another server's history.
    if [[ -n "$current" && "$current" != "$myid" ]]; then
        die "$DATA_DIR/myid holds $current, but ordinal $ordinal carries myid $myid: this volume holds the data of server $current; refusing to run it as server $myid"
    fi
fi
printf '%s\n' "$myid" >"$DATA_DIR/myid.zkmigrate-tmp"
mv -f -- "$DATA_DIR/myid.zkmigrate-tmp" "$DATA_DIR/myid"

# zkServer.sh puts ZOOCFGDIR on the classpath: keep the image's logging configuration there.
for f in logback.xml log4j.properties; do
    if [[ -f "$IMAGE_CONF_DIR/$f" ]]; then
        cp -f -- "$IMAGE_CONF_DIR/$f" "$CONF_DIR/$f"
    fi
done
cp -f -- "$CONFIG_DIR/zoo.cfg" "$CONF_DIR/zoo.cfg.zkmigrate-tmp"
mv -f -- "$CONF_DIR/zoo.cfg.zkmigrate-tmp" "$CONF_DIR/zoo.cfg"
say "pod $pod: ordinal $ordinal, myid $myid written to $DATA_DIR/myid, zoo.cfg installed in $CONF_DIR"
`;

/**
 * The ConfigMap `<name>-config`: `zoo.cfg` of the pods, `myids` (one line `<ordinal> <myid>` per
 * ordinal, sorted: the StatefulSet's ordinals follow the cutover order, not the myids) and
 * `init.sh` ({@link INIT_SCRIPT}). The table grows by one line per cut-over server; existing lines
 * never change, so a pod always finds the myid it had.
 */
export function makeConfigMap(k: KubernetesState): ConfigMapManifest {
    checkBase(k);
    const st = statefulSetOf(k);
    const rows = ordinalTable(k);
    return {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: meta(k, `${k.name}-config`),
        data: {
            "zoo.cfg": st.zooCfg,
            myids: rows.map(([o, id]) => `${o} ${id}\n`).join(""),
            "init.sh": INIT_SCRIPT,
        },
    };
}

/**
 * The governing Service of the StatefulSet (`spec.serviceName`), `<name>-headless`: it gives the
 * pods their DNS identity. Peers never use it (they use the per-server Services).
 * `clusterIP: None` makes it headless; `publishNotReadyAddresses` publishes pods before they are
 * ready, for the same reason as on the per-server Services.
 */
export function makeHeadlessService(k: KubernetesState): ServiceManifest {
    checkBase(k);
    return {
        apiVersion: "v1",
        kind: "Service",
        metadata: meta(k, `${k.name}-headless`),
        spec: {
            type: "ClusterIP",
            clusterIP: "None",
            publishNotReadyAddresses: true,
            selector: { ...k.labels },
            ports: servicePorts(k),
        },
    };
}

/**
 * The readiness check (bash, for `bash -c`): `srvr` on the client port must answer with a
 * `Mode:` line, which ZooKeeper gives only once the server serves (it has joined the quorum and
 * synced with the leader). Pure bash (/dev/tcp), no nc needed; the read is bounded.
 */
export function readinessScript(clientPort: number): string {
    return [
        `exec 3<>/dev/tcp/127.0.0.1/${clientPort} || exit 1`,
        "printf srvr >&3",
        `answer=""`,
        `IFS= read -r -d '' -t 4 answer <&3 || true`,
        `case $'\\n'"$answer" in *$'\\n''Mode: '*) exit 0 ;; esac`,
        `printf 'srvr on 127.0.0.1:${clientPort} answered without a Mode line (not serving): %s\\n' "\${answer:0:200}" >&2`,
        "exit 1",
    ].join("; ");
}

/**
 * The liveness check (bash, for `bash -c`): `ruok` must answer `imok`. ZooKeeper answers it as
 * soon as the process runs, also while it elects or syncs a large snapshot: a slow sync never
 * gets the server killed, a hung process does.
 */
export function livenessScript(clientPort: number): string {
    return [
        `exec 3<>/dev/tcp/127.0.0.1/${clientPort} || exit 1`,
        "printf ruok >&3",
        `answer=""`,
        `IFS= read -r -d '' -t 4 answer <&3 || true`,
        `[[ "$answer" == imok ]] && exit 0`,
        `printf 'ruok on 127.0.0.1:${clientPort} answered %q, not imok\\n' "$answer" >&2`,
        "exit 1",
    ].join("; ");
}

const QUANTITY_UNITS: Record<string, number> = {
    "": 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
};

/** Bytes of a Kubernetes memory quantity (`2Gi`, `1500M`, `1073741824`, `1e9`). */
export function quantityBytes(q: string | number): number {
    const m = /^([0-9]+(?:\.[0-9]+)?)(?:e([0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(String(q).trim());
    if (!m) fail(`memory ${JSON.stringify(q)} is not a Kubernetes quantity (e.g. 2Gi)`);
    return Number(m[1]) * 10 ** Number(m[2] ?? 0) * QUANTITY_UNITS[m[3] ?? ""];
}

/** The share of the memory limit given to the heap: the rest is the JVM's own (metaspace, threads, direct buffers) and the page cache ZooKeeper's snapshots pass through. */
export const HEAP_SHARE = 0.75;

/**
 * The JVM heap in MiB for a container memory limit: {@link HEAP_SHARE} of it, refused below
 * 256Mi (a heap under 192 MiB cannot hold a real ensemble's tree and sessions).
 */
export function heapMegabytes(memoryLimit: string | number): number {
    const bytes = quantityBytes(memoryLimit);
    if (bytes < 256 * 2 ** 20) fail(`memory limit ${memoryLimit} is below 256Mi: too small for a ZooKeeper server`);
    return Math.floor((bytes * HEAP_SHARE) / 2 ** 20);
}

/** `<repository>@<digest>`: the image pinned by digest (a tag or an earlier digest dropped). */
export function imageReference(image: string, digest?: string): string {
    if (digest === undefined) return image;
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) fail(`imageDigest ${JSON.stringify(digest)} is not sha256:<64 hex digits>`);
    let repo = image.split("@")[0];
    const slash = repo.lastIndexOf("/");
    const colon = repo.lastIndexOf(":");
    if (colon > slash) repo = repo.slice(0, colon);
    return `${repo}@${digest}`;
}

function checkScheduling(sc: KubernetesScheduling | undefined): void {
    if (!sc) return;
    for (const [key, value] of Object.entries(sc.nodeSelector ?? {})) {
        if (typeof value !== "string") fail(`scheduling.nodeSelector.${key} must be a string`);
    }
    if (sc.priorityClassName !== undefined && !DNS1123.test(sc.priorityClassName.replace(/\./g, "-"))) {
        fail(`scheduling.priorityClassName ${JSON.stringify(sc.priorityClassName)} is not a DNS-1123 name`);
    }
}

/** The securityContext of every container: no root, nothing written outside the volumes, no privilege. */
export const CONTAINER_SECURITY: ContainerSecurityContext = {
    runAsNonRoot: true,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
};

/**
 * Seconds the preStop hook waits before ZooKeeper gets SIGTERM: the time for the API server to
 * mark the pod terminating and for kube-proxy on every node to take it out of the Services, so
 * that clients that reconnect meanwhile go to another server rather than to this one.
 */
export const PRE_STOP_SECONDS = 5;
/** Default terminationGracePeriodSeconds: the preStop wait plus ZooKeeper's own shutdown (a snapshot flush). */
export const DEFAULT_GRACE_SECONDS = 60;

/** Whether `dir` is `base` or inside it (both absolute, normalized enough for config paths). */
function within(dir: string, base: string): boolean {
    const b = base.replace(/\/+$/, "");
    return dir.replace(/\/+$/, "") === b || dir.startsWith(`${b}/`);
}

/**
 * The StatefulSet `<name>`: one pod per cut-over server, ordinal k carrying myid
 * `ordinalToMyid[k]`. Throws when the phase has no StatefulSet.
 *
 * - `podManagementPolicy: OrderedReady`: pod k+1 is created only once pod k is ready (synced), so
 *   at most one new server is catching up at a time, as the procedure wants.
 * - `updateStrategy: OnDelete`: a template change (image, resources) must never roll all
 *   servers at once; the migration restarts servers itself, one at a time.
 * - The init container (same image) runs `init.sh` from the ConfigMap: it reads the ordinal from
 *   the pod name, writes the myid into dataDir and copies zoo.cfg into the `conf` emptyDir.
 * - The main container runs `zkServer.sh start-foreground` (bypassing the image's entrypoint,
 *   which would generate its own zoo.cfg and myid) with `ZOOCFGDIR` on that emptyDir.
 * - `securityContext`: uid/gid 1000 is the `zookeeper` user of the official image (the entrypoint
 *   that would switch to it is bypassed); `fsGroup` makes the volume claim writable for it,
 *   `OnRootMismatch` skips a recursive chown of a large dataDir on every start.
 * - Probes: see {@link readinessScript} and {@link livenessScript}.
 * - `podAntiAffinity` required on `kubernetes.io/hostname`: two servers on one node would be lost
 *   together; with few nodes a pod stays Pending rather than doubling up. `scheduling.podAntiAffinity:
 *   soft` makes it preferred (a cluster with fewer nodes than servers, such as a single-node one).
 * - `volumeClaimTemplates` `data` (ReadWriteOnce) mounted at zoo.cfg's dataDir: the data (and
 *   the myid) outlive the pod.
 */
export function makeStatefulSet(k: KubernetesState): StatefulSetManifest {
    checkBase(k);
    const st = statefulSetOf(k);
    const rows = ordinalTable(k);

    // zoo.cfg is the source of truth for where the data lives and which ports ZooKeeper uses:
    // check it against the volumes, probes and Services before a pod finds out.
    const dataDir = zooCfgValue(st.zooCfg, "dataDir");
    if (!dataDir || !dataDir.startsWith("/")) fail("zoo.cfg of the pods has no absolute dataDir");
    if (within(dataDir, CONF_MOUNT) || within(dataDir, CONFIGMAP_MOUNT) || within(CONF_MOUNT, dataDir) || within(CONFIGMAP_MOUNT, dataDir)) {
        fail(`dataDir ${dataDir} overlaps ${CONF_MOUNT} or ${CONFIGMAP_MOUNT}`);
    }
    const dataLogDir = zooCfgValue(st.zooCfg, "dataLogDir");
    if (st.dataLogStorageSize !== undefined) {
        // The transaction log on a claim of its own (a faster disk, as ZooKeeper's admin guide advises).
        if (!dataLogDir || !dataLogDir.startsWith("/")) fail("dataLogStorageSize is set, but zoo.cfg of the pods has no absolute dataLogDir");
        if (within(dataLogDir, dataDir) || within(dataDir, dataLogDir)) fail(`dataLogDir ${dataLogDir} overlaps dataDir ${dataDir}: a volume of its own needs a directory of its own`);
        if (within(dataLogDir, CONF_MOUNT) || within(dataLogDir, CONFIGMAP_MOUNT)) fail(`dataLogDir ${dataLogDir} overlaps ${CONF_MOUNT} or ${CONFIGMAP_MOUNT}`);
        if (!/^[0-9]+(\.[0-9]+)?([EPTGMK]i?|[mk])?$/.test(st.dataLogStorageSize)) fail(`dataLogStorageSize ${JSON.stringify(st.dataLogStorageSize)} is not a Kubernetes quantity`);
    } else if (dataLogDir !== undefined && !within(dataLogDir, dataDir)) {
        fail(`dataLogDir ${dataLogDir} is outside dataDir ${dataDir}: the transaction log would not be on the volume claim (or give it one: dataLogStorageSize)`);
    }
    const metricsPort = zooCfgValue(st.zooCfg, "metricsProvider.httpPort");
    if (metricsPort !== undefined && !(Number.isInteger(Number(metricsPort)) && Number(metricsPort) >= 1 && Number(metricsPort) <= 65535)) {
        fail(`zoo.cfg has metricsProvider.httpPort=${metricsPort}, not a port`);
    }
    checkScheduling(st.scheduling);
    const grace = st.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
    if (!Number.isInteger(grace) || grace <= PRE_STOP_SECONDS) fail(`terminationGracePeriodSeconds must be an integer above the preStop wait (${PRE_STOP_SECONDS} s), got ${grace}`);
    const limits = (st.resources?.limits ?? {}) as Record<string, string | number>;
    const heap = limits.memory !== undefined ? heapMegabytes(limits.memory) : undefined;
    const clientPort = zooCfgValue(st.zooCfg, "clientPort");
    if (clientPort !== String(k.ports.client)) fail(`zoo.cfg has clientPort=${clientPort}, but the client port is ${k.ports.client}`);
    for (const [o, id] of rows) {
        const line = zooCfgValue(st.zooCfg, `server.${id}`);
        if (line === undefined) fail(`zoo.cfg has no server.${id} line, but ordinal ${o} carries myid ${id}`);
        const ports = /:(\d+):(\d+)(?::(?:participant|observer))?(?:;.*)?$/.exec(line);
        if (!ports || Number(ports[1]) !== k.ports.peer || Number(ports[2]) !== k.ports.election) {
            fail(`zoo.cfg has server.${id}=${line}, but the peer/election ports are ${k.ports.peer}/${k.ports.election}`);
        }
    }
    if (!st.image || /\s/.test(st.image)) fail(`image ${JSON.stringify(st.image)} is not an image reference`);
    const image = imageReference(st.image, st.imageDigest);
    if (!/^[0-9]+(\.[0-9]+)?([EPTGMK]i?|[mk])?$/.test(st.storageSize)) fail(`storageSize ${JSON.stringify(st.storageSize)} is not a Kubernetes quantity`);

    const selector: LabelSelector = { matchLabels: { ...k.labels } };
    const dataMount = { name: "data", mountPath: dataDir };
    const confMount = { name: "conf", mountPath: CONF_MOUNT };
    const dataLogMount = st.dataLogStorageSize !== undefined ? [{ name: "datalog", mountPath: dataLogDir! }] : [];
    // The root filesystem is read-only: the JVM's and the image's scratch directories are emptyDirs.
    const scratchMounts = [
        { name: "tmp", mountPath: "/tmp" },
        { name: "logs", mountPath: "/logs" },
    ];
    const probe = (script: string, p: Omit<ExecProbe, "exec">): ExecProbe => ({ exec: { command: ["bash", "-c", script] }, ...p });

    const init: Container = {
        name: "init-myid",
        image,
        command: ["bash", `${CONFIGMAP_MOUNT}/init.sh`],
        env: [
            { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            { name: "CONFIG_DIR", value: CONFIGMAP_MOUNT },
            { name: "DATA_DIR", value: dataDir },
            { name: "CONF_DIR", value: CONF_MOUNT },
            { name: "IMAGE_CONF_DIR", value: IMAGE_CONF_DIR },
        ],
        securityContext: CONTAINER_SECURITY,
        volumeMounts: [{ name: "configmap", mountPath: CONFIGMAP_MOUNT, readOnly: true }, confMount, dataMount, ...dataLogMount],
    };
    const zookeeper: Container = {
        name: "zookeeper",
        image,
        command: ["zkServer.sh", "start-foreground"],
        // ZK_SERVER_HEAP (MiB) is what the release's zkEnv.sh turns into -Xmx.
        env: [{ name: "ZOOCFGDIR", value: CONF_MOUNT }, ...(heap !== undefined ? [{ name: "ZK_SERVER_HEAP", value: String(heap) }] : [])],
        ports: [
            ...named(k, (name, port) => ({ name, containerPort: port, protocol: "TCP" as const })),
            ...(metricsPort !== undefined ? [{ name: "metrics" as const, containerPort: Number(metricsPort), protocol: "TCP" as const }] : []),
        ],
        readinessProbe: probe(readinessScript(k.ports.client), {
            initialDelaySeconds: 5,
            periodSeconds: 5,
            timeoutSeconds: 5,
            successThreshold: 1,
            failureThreshold: 3,
        }),
        livenessProbe: probe(livenessScript(k.ports.client), {
            initialDelaySeconds: 30,
            periodSeconds: 10,
            timeoutSeconds: 5,
            successThreshold: 1,
            failureThreshold: 6,
        }),
        lifecycle: { preStop: { exec: { command: ["sleep", String(PRE_STOP_SECONDS)] } } },
        ...(st.resources ? { resources: st.resources } : {}),
        securityContext: CONTAINER_SECURITY,
        volumeMounts: [confMount, dataMount, ...dataLogMount, ...scratchMounts],
    };

    return {
        apiVersion: "apps/v1",
        kind: "StatefulSet",
        metadata: meta(k, k.name),
        spec: {
            serviceName: `${k.name}-headless`,
            replicas: st.replicas,
            podManagementPolicy: "OrderedReady",
            updateStrategy: { type: "OnDelete" },
            selector,
            template: {
                metadata: { labels: { ...k.labels } },
                spec: {
                    securityContext: {
                        runAsUser: ZOOKEEPER_UID,
                        runAsGroup: ZOOKEEPER_UID,
                        runAsNonRoot: true,
                        fsGroup: ZOOKEEPER_UID,
                        fsGroupChangePolicy: "OnRootMismatch",
                        seccompProfile: { type: "RuntimeDefault" },
                    },
                    terminationGracePeriodSeconds: grace,
                    ...(st.scheduling?.nodeSelector ? { nodeSelector: { ...st.scheduling.nodeSelector } } : {}),
                    ...(st.scheduling?.tolerations ? { tolerations: [...st.scheduling.tolerations] } : {}),
                    ...(st.scheduling?.topologySpreadConstraints ? { topologySpreadConstraints: [...st.scheduling.topologySpreadConstraints] } : {}),
                    ...(st.scheduling?.priorityClassName ? { priorityClassName: st.scheduling.priorityClassName } : {}),
                    affinity: {
                        podAntiAffinity:
                            st.scheduling?.podAntiAffinity === "soft"
                                ? { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { labelSelector: selector, topologyKey: "kubernetes.io/hostname" } }] }
                                : { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: selector, topologyKey: "kubernetes.io/hostname" }] },
                    },
                    initContainers: [init],
                    containers: [zookeeper],
                    volumes: [
                        { name: "configmap", configMap: { name: `${k.name}-config` } },
                        { name: "conf", emptyDir: {} },
                        { name: "tmp", emptyDir: {} },
                        { name: "logs", emptyDir: {} },
                    ],
                },
            },
            volumeClaimTemplates: [
                {
                    metadata: { name: "data", labels: { ...k.labels } },
                    spec: {
                        accessModes: ["ReadWriteOnce"],
                        ...(st.storageClassName ? { storageClassName: st.storageClassName } : {}),
                        resources: { requests: { storage: st.storageSize } },
                    },
                },
                ...(st.dataLogStorageSize !== undefined
                    ? [
                          {
                              metadata: { name: "datalog", labels: { ...k.labels } },
                              spec: {
                                  accessModes: ["ReadWriteOnce"] as ["ReadWriteOnce"],
                                  ...(st.storageClassName ? { storageClassName: st.storageClassName } : {}),
                                  resources: { requests: { storage: st.dataLogStorageSize } },
                              },
                          },
                      ]
                    : []),
            ],
        },
    };
}

/**
 * The PodDisruptionBudget `<name>-pdb` (policy/v1): voluntary disruptions (node drains) take at
 * most one pod at a time, so a drain never costs the quorum. Note that it counts pods only: a
 * server down on a host is not known to it.
 */
export function makePodDisruptionBudget(k: KubernetesState): PodDisruptionBudgetManifest {
    checkBase(k);
    return {
        apiVersion: "policy/v1",
        kind: "PodDisruptionBudget",
        metadata: meta(k, `${k.name}-pdb`),
        spec: { maxUnavailable: 1, selector: { matchLabels: { ...k.labels } } },
    };
}

export interface ZooCfgArgs {
    dataDir: string;
    clientPort: number;
    members: MemberLine[];
    quorumListenOnAllIPs: boolean;
    /** Extra or overriding settings (tickTime, initLimit, autopurge...). */
    settings?: Record<string, string | number | boolean>;
    /** The transaction log has a volume of its own: dataLogDir may then be outside dataDir. */
    separateDataLog?: boolean;
    /** Serve Prometheus metrics on this port (ZooKeeper >= 3.6's PrometheusMetricsProvider). */
    metricsPort?: number;
}

/** ZooKeeper's Prometheus metrics provider (3.6 and later). */
export const PROMETHEUS_PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/** Settings that `settings` may not set, and why. */
const RESERVED: [RegExp, string][] = [
    [/^dataDir$/, "dataDir has its own field (the volume claim is mounted there)"],
    [/^clientPort$/, "clientPort comes from the ensemble's ports (Services and probes use it)"],
    [/^server\.\d+$/, "the membership comes from the servers"],
    [/^(group|weight)\.\d+$/, "hierarchical quorums would change what a majority is during the migration"],
    [/^quorumListenOnAllIPs$/, "quorumListenOnAllIPs comes from the membership"],
    [/^dynamicConfigFile$/, "the pods keep the membership in zoo.cfg"],
    [/^reconfigEnabled$/, "the migration changes the membership by rolling restarts, not by reconfig"],
    [/^standaloneEnabled$/, "a pod must never start as a standalone server"],
];

/**
 * zoo.cfg of the pods. Defaults, then `settings` (a setting replaces a default in place, new
 * ones follow), then the membership block (`server.<id>=<address>:<peer>:<election>` sorted by
 * id, and `quorumListenOnAllIPs`) between the same markers the host scripts use.
 *
 * - `4lw.commands.whitelist=srvr,mntr,conf,ruok`: the probes need srvr and ruok, zkmigrate's
 *   checks srvr; never `*` (that would enable commands such as `wchp`, `dump` and `crst`).
 * - `admin.enableServer=false`: the AdminServer (port 8080) is not needed and not exposed.
 * - `standaloneEnabled=false`: a pod that sees only itself must not serve as a one-server
 *   ensemble with its own history.
 * - `reconfigEnabled=false`: the membership is static, changed by restarts.
 * - `quorumListenOnAllIPs`: true when members are addressed by Service (virtual) IPs, which no
 *   pod owns: otherwise the election port fails to bind.
 * - `dataLogDir` may only point inside dataDir (the volume claim).
 */
export function makeZooCfg(a: ZooCfgArgs): string {
    if (!a.dataDir.startsWith("/") || /[\s\0]/.test(a.dataDir)) fail(`dataDir must be an absolute path without spaces, got ${JSON.stringify(a.dataDir)}`);
    if (!Number.isInteger(a.clientPort) || a.clientPort < 1 || a.clientPort > 65535) fail(`clientPort must be an integer in 1..65535, got ${a.clientPort}`);
    const entries = new Map<string, string>([
        ...ZOO_CFG_BASE,
        ["dataDir", a.dataDir],
        ["clientPort", String(a.clientPort)],
        ["4lw.commands.whitelist", FOUR_LETTER_WHITELIST],
        ["admin.enableServer", "false"],
        ["standaloneEnabled", "false"],
        ["reconfigEnabled", "false"],
        // Old snapshots and logs purged hourly, the newest 3 kept (ZooKeeper keeps all by default
        // and fills the volume claim).
        ["autopurge.snapRetainCount", "3"],
        ["autopurge.purgeInterval", "1"],
    ]);
    if (a.metricsPort !== undefined) {
        if (!Number.isInteger(a.metricsPort) || a.metricsPort < 1 || a.metricsPort > 65535) fail(`metricsPort must be an integer in 1..65535, got ${a.metricsPort}`);
        if (a.metricsPort === a.clientPort) fail(`metricsPort ${a.metricsPort} is the client port`);
        entries.set("metricsProvider.className", PROMETHEUS_PROVIDER);
        entries.set("metricsProvider.httpPort", String(a.metricsPort));
        entries.set("metricsProvider.exportJvmInfo", "true");
    }
    for (const [key, raw] of Object.entries(a.settings ?? {})) {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(key)) fail(`zoo.cfg setting ${JSON.stringify(key)} is not a property name`);
        const reserved = RESERVED.find(([re]) => re.test(key));
        if (reserved) fail(`zoo.cfg setting ${key} cannot be set: ${reserved[1]}`);
        if (typeof raw === "number" && !Number.isFinite(raw)) fail(`zoo.cfg setting ${key} is not a finite number`);
        const value = String(raw).trim();
        if (/[\n\r\0]/.test(value)) fail(`zoo.cfg setting ${key} must be on one line`);
        if (key === "4lw.commands.whitelist") {
            const words = value.split(",").map((w) => w.trim());
            if (words.some((w) => w.includes("*"))) fail("4lw.commands.whitelist must never be *: list the commands");
            for (const need of ["srvr", "ruok"]) {
                if (!words.includes(need)) fail(`4lw.commands.whitelist must include ${need} (the pods' probes use it)`);
            }
        }
        if (key === "dataLogDir" && !a.separateDataLog && !within(value, a.dataDir)) {
            fail(`dataLogDir ${value} must be inside dataDir ${a.dataDir} (only dataDir is on the volume claim)`);
        }
        entries.set(key, value);
    }
    const members = serverLines({ members: a.members, quorumListenOnAllIPs: a.quorumListenOnAllIPs });
    return renderZooCfg({
        comments: ["zoo.cfg of the ZooKeeper pods, written by zkmigrate (edits are overwritten)."],
        settings: entries,
        serverLines: members,
        quorumListenOnAllIPs: a.quorumListenOnAllIPs,
    });
}
