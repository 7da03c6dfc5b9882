// The production-grade parts of the pods' objects (issue 14, point 4), compared with what the
// Bitnami chart and the pravega operator set: EndpointSlices by cluster version, the heap from the
// memory limit, autopurge, the containers' securityContext, a dataLog volume, the metrics port,
// scheduling pass-through, preStop and grace period, the image by digest.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
    CONTAINER_SECURITY,
    DEFAULT_GRACE_SECONDS,
    PRE_STOP_SECONDS,
    PROMETHEUS_PROVIDER,
    endpointsKindFor,
    heapMegabytes,
    imageReference,
    makeEndpointSlice,
    makeServerEndpoints,
    makeStatefulSet,
    makeZooCfg,
    quantityBytes,
    zooCfgValue,
} from "../../../src/kubernetes";
import type { KubernetesServer, KubernetesState, MemberLine } from "../../../src/types";

const LABELS = { "app.kubernetes.io/name": "zookeeper", "app.kubernetes.io/instance": "zk" };
const MEMBERS: MemberLine[] = [1, 2, 3].map((id) => ({ id, address: `zk-${id}.zookeeper.svc.cluster.local`, peerPort: 2888, electionPort: 3888 }));
const DIGEST = `sha256:${"ab".repeat(32)}`;

const server = (id: number, backend: "host" | "pod", ordinal?: number, host = `10.20.0.${id}`): KubernetesServer => ({
    id,
    host,
    serviceName: `zk-${id}`,
    serviceFqdn: `zk-${id}.zookeeper.svc.cluster.local`,
    backend,
    ordinal,
});

function state(edit: (st: NonNullable<KubernetesState["statefulSet"]>) => void = () => undefined, zoo: Partial<Parameters<typeof makeZooCfg>[0]> = {}): KubernetesState {
    const st: NonNullable<KubernetesState["statefulSet"]> = {
        replicas: 1,
        ordinalToMyid: { 0: 1 },
        image: "zookeeper:3.9.3",
        storageSize: "10Gi",
        zooCfg: makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, ...zoo }),
    };
    edit(st);
    return {
        namespace: "zookeeper",
        name: "zk",
        labels: { ...LABELS },
        ports: { client: 2181, peer: 2888, election: 3888 },
        servers: [server(1, "pod", 0), server(2, "host"), server(3, "host")],
        services: true,
        statefulSet: st,
    };
}
const pod = (k: KubernetesState) => makeStatefulSet(k).spec.template.spec;
const zkContainer = (k: KubernetesState) => pod(k).containers[0];

describe("EndpointSlices by cluster version", () => {
    const table: [string, "Endpoints" | "EndpointSlice"][] = [
        ["v1.28.15", "Endpoints"],
        ["1.32", "Endpoints"],
        ["v1.33.0", "EndpointSlice"],
        ["v1.33.2-eks-1234", "EndpointSlice"],
        ["v1.34.4", "EndpointSlice"],
        ["v2.0.0", "EndpointSlice"],
    ];
    for (const [version, kind] of table) {
        it(`${version} -> ${kind}`, () => assert.equal(endpointsKindFor(version), kind));
    }
    it("refuses what is not a version", () => {
        assert.throws(() => endpointsKindFor("latest"), /cannot read a Kubernetes version from "latest"/);
    });

    it("a slice bound to the Service by kubernetes.io/service-name, managed by zkmigrate, the host ready", () => {
        const k = state();
        assert.deepEqual(makeEndpointSlice(k, k.servers[1]), {
            apiVersion: "discovery.k8s.io/v1",
            kind: "EndpointSlice",
            metadata: {
                name: "zk-2-zkmigrate",
                namespace: "zookeeper",
                labels: { ...LABELS, "zkmigrate/myid": "2", "kubernetes.io/service-name": "zk-2", "endpointslice.kubernetes.io/managed-by": "zkmigrate.io" },
            },
            addressType: "IPv4",
            endpoints: [{ addresses: ["10.20.0.2"], conditions: { ready: true } }],
            ports: [
                { name: "client", protocol: "TCP", port: 2181 },
                { name: "peer", protocol: "TCP", port: 2888 },
                { name: "leader-election", protocol: "TCP", port: 3888 },
            ],
        });
    });
    it("IPv6 hosts give an IPv6 slice; names and pod-backed servers are refused as for Endpoints", () => {
        const k = state();
        assert.equal(makeEndpointSlice(k, server(2, "host", undefined, "fd00::2")).addressType, "IPv6");
        assert.throws(() => makeEndpointSlice(k, server(2, "host", undefined, "zk2.example")), /not an IP address/);
        assert.throws(() => makeEndpointSlice(k, k.servers[0]), /runs in a pod/);
    });
    it("makeServerEndpoints follows endpointsKind (default v1 Endpoints)", () => {
        const k = state();
        assert.equal(makeServerEndpoints(k, k.servers[1]).kind, "Endpoints");
        assert.equal(makeServerEndpoints({ ...k, endpointsKind: "EndpointSlice" }, k.servers[1]).kind, "EndpointSlice");
    });
});

describe("JVM heap from the memory limit", () => {
    const bytes: [string | number, number][] = [
        ["1Gi", 2 ** 30],
        ["512Mi", 512 * 2 ** 20],
        ["1500M", 1.5e9],
        ["2G", 2e9],
        ["1073741824", 2 ** 30],
        [1073741824, 2 ** 30],
        ["1e9", 1e9],
        ["1.5Gi", 1.5 * 2 ** 30],
    ];
    for (const [q, b] of bytes) it(`quantity ${q} = ${b} bytes`, () => assert.equal(quantityBytes(q), b));
    it("refuses what is not a quantity", () => assert.throws(() => quantityBytes("1 GB"), /not a Kubernetes quantity/));

    const heaps: [string, number][] = [
        ["1Gi", 768],
        ["2Gi", 1536],
        ["4Gi", 3072],
        ["256Mi", 192],
    ];
    for (const [limit, heap] of heaps) it(`limit ${limit} -> ZK_SERVER_HEAP ${heap}`, () => assert.equal(heapMegabytes(limit), heap));
    it("refuses a limit below 256Mi", () => assert.throws(() => heapMegabytes("200Mi"), /below 256Mi/));

    it("the container gets ZK_SERVER_HEAP only with a memory limit", () => {
        assert.equal(zkContainer(state()).env.find((e) => e.name === "ZK_SERVER_HEAP"), undefined);
        const k = state((st) => (st.resources = { limits: { memory: "2Gi" } }));
        assert.deepEqual(zkContainer(k).env.find((e) => e.name === "ZK_SERVER_HEAP"), { name: "ZK_SERVER_HEAP", value: "1536" });
    });
});

describe("zoo.cfg: autopurge and metrics", () => {
    it("purges hourly, keeping 3 snapshots; a setting overrides it", () => {
        const cfg = makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true });
        assert.equal(zooCfgValue(cfg, "autopurge.snapRetainCount"), "3");
        assert.equal(zooCfgValue(cfg, "autopurge.purgeInterval"), "1");
        const daily = makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, settings: { "autopurge.purgeInterval": 24 } });
        assert.equal(zooCfgValue(daily, "autopurge.purgeInterval"), "24");
    });
    it("metricsPort turns on the Prometheus provider, and the pods name the port", () => {
        const k = state(undefined, { metricsPort: 7000 });
        const cfg = k.statefulSet!.zooCfg;
        assert.equal(zooCfgValue(cfg, "metricsProvider.className"), PROMETHEUS_PROVIDER);
        assert.equal(zooCfgValue(cfg, "metricsProvider.httpPort"), "7000");
        assert.deepEqual(zkContainer(k).ports?.at(-1), { name: "metrics", containerPort: 7000, protocol: "TCP" });
        assert.equal(zkContainer(state()).ports?.some((p) => p.name === "metrics"), false);
    });
    it("refuses a metrics port that is not a port or is the client port", () => {
        assert.throws(() => makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, metricsPort: 70000 }), /metricsPort must be an integer/);
        assert.throws(() => makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, metricsPort: 2181 }), /is the client port/);
    });
});

describe("securityContext, preStop and grace period", () => {
    it("every container: non-root, read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp", () => {
        const p = pod(state());
        for (const c of [...p.initContainers, ...p.containers]) {
            assert.deepEqual(c.securityContext, {
                runAsNonRoot: true,
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
                seccompProfile: { type: "RuntimeDefault" },
            });
        }
        assert.deepEqual(CONTAINER_SECURITY.capabilities, { drop: ["ALL"] });
        assert.deepEqual(p.securityContext.seccompProfile, { type: "RuntimeDefault" });
        // The read-only root needs writable scratch directories.
        assert.deepEqual(
            p.containers[0].volumeMounts.filter((m) => m.name === "tmp" || m.name === "logs").map((m) => m.mountPath),
            ["/tmp", "/logs"],
        );
    });
    it("waits PRE_STOP_SECONDS before SIGTERM, within a grace period of 60 s by default", () => {
        const k = state();
        assert.deepEqual(zkContainer(k).lifecycle, { preStop: { exec: { command: ["sleep", String(PRE_STOP_SECONDS)] } } });
        assert.equal(pod(k).terminationGracePeriodSeconds, DEFAULT_GRACE_SECONDS);
        assert.equal(pod(state((st) => (st.terminationGracePeriodSeconds = 120))).terminationGracePeriodSeconds, 120);
    });
    it("refuses a grace period not above the preStop wait", () => {
        assert.throws(() => makeStatefulSet(state((st) => (st.terminationGracePeriodSeconds = PRE_STOP_SECONDS))), /above the preStop wait/);
    });
});

describe("scheduling pass-through", () => {
    it("nodeSelector, tolerations, topology spread and priority class reach the pod spec as given", () => {
        const scheduling = {
            nodeSelector: { "node.kubernetes.io/pool": "zookeeper" },
            tolerations: [{ key: "dedicated", operator: "Equal", value: "zookeeper", effect: "NoSchedule" }],
            topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: LABELS } }],
            priorityClassName: "zookeeper-critical",
        };
        const p = pod(state((st) => (st.scheduling = scheduling)));
        assert.deepEqual(p.nodeSelector, scheduling.nodeSelector);
        assert.deepEqual(p.tolerations, scheduling.tolerations);
        assert.deepEqual(p.topologySpreadConstraints, scheduling.topologySpreadConstraints);
        assert.equal(p.priorityClassName, "zookeeper-critical");
    });
    it("sets none of them when none is given (no empty keys)", () => {
        const p = pod(state());
        for (const key of ["nodeSelector", "tolerations", "topologySpreadConstraints", "priorityClassName"]) assert.equal(key in p, false, key);
    });
    it("podAntiAffinity: required by node unless `soft` (preferred, weight 100: a cluster with fewer nodes than servers)", () => {
        const term = { labelSelector: { matchLabels: LABELS }, topologyKey: "kubernetes.io/hostname" };
        assert.deepEqual(pod(state()).affinity, { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } });
        assert.deepEqual(pod(state((st) => (st.scheduling = { podAntiAffinity: "hard" }))).affinity, { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } });
        assert.deepEqual(pod(state((st) => (st.scheduling = { podAntiAffinity: "soft" }))).affinity, {
            podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] },
        });
    });
    it("refuses a bad priority class name", () => {
        assert.throws(() => makeStatefulSet(state((st) => (st.scheduling = { priorityClassName: "Not_A_Name" }))), /priorityClassName/);
    });
});

describe("dataLog volume", () => {
    const withLog = (dir: string, size = "5Gi") =>
        state(
            (st) => (st.dataLogStorageSize = size),
            { separateDataLog: true, settings: { dataLogDir: dir } },
        );
    it("a second claim `datalog` mounted at dataLogDir in both containers", () => {
        const sts = makeStatefulSet(withLog("/datalog"));
        assert.deepEqual(
            sts.spec.volumeClaimTemplates.map((t) => [t.metadata.name, t.spec.resources.requests.storage]),
            [
                ["data", "10Gi"],
                ["datalog", "5Gi"],
            ],
        );
        for (const c of [...sts.spec.template.spec.initContainers, ...sts.spec.template.spec.containers]) {
            assert.ok(c.volumeMounts.some((m) => m.name === "datalog" && m.mountPath === "/datalog"), c.name);
        }
    });
    it("without it, dataLogDir must stay inside dataDir", () => {
        assert.throws(() => makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, settings: { dataLogDir: "/datalog" } }), /must be inside dataDir/);
    });
    it("refuses a dataLog volume overlapping dataDir, without a dataLogDir, or of a bad size", () => {
        assert.throws(() => makeStatefulSet(withLog("/data/log")), /overlaps dataDir/);
        assert.throws(() => makeStatefulSet(state((st) => (st.dataLogStorageSize = "5Gi"))), /has no absolute dataLogDir/);
        assert.throws(() => makeStatefulSet(withLog("/datalog", "lots")), /dataLogStorageSize "lots" is not a Kubernetes quantity/);
    });
});

describe("image by digest", () => {
    const table: [string, string][] = [
        ["zookeeper:3.9.3", `zookeeper@${DIGEST}`],
        ["zookeeper", `zookeeper@${DIGEST}`],
        ["registry.local:5000/zk/zookeeper:3.9.3", `registry.local:5000/zk/zookeeper@${DIGEST}`],
        [`zookeeper@sha256:${"cd".repeat(32)}`, `zookeeper@${DIGEST}`],
    ];
    for (const [image, ref] of table) it(`${image} -> ${ref}`, () => assert.equal(imageReference(image, DIGEST), ref));
    it("no digest: the image as given", () => assert.equal(imageReference("zookeeper:3.9.3"), "zookeeper:3.9.3"));
    it("refuses a digest that is not sha256:<64 hex>", () => assert.throws(() => imageReference("zookeeper", "sha256:abc"), /not sha256:<64 hex digits>/));
    it("both containers run the pinned image", () => {
        const p = pod(state((st) => (st.imageDigest = DIGEST)));
        assert.deepEqual([p.initContainers[0].image, p.containers[0].image], [`zookeeper@${DIGEST}`, `zookeeper@${DIGEST}`]);
    });
});
