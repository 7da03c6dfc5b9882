// The Kubernetes manifests of the hosts-to-Kubernetes migration: per-server Services (selector
// only once cut over), manual Endpoints, the ConfigMap and its init script (run with bash), the
// StatefulSet and its probes (run with bash against a fake ZooKeeper), the PDB and zoo.cfg.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { KubernetesConfig } from "../../../src/config";
import {
    FOUR_LETTER_WHITELIST,
    INIT_SCRIPT,
    makeConfigMap,
    makeEndpoints,
    makeHeadlessService,
    makePodDisruptionBudget,
    makeService,
    makeStatefulSet,
    makeZooCfg,
    zooCfgValue,
} from "../../../src/kubernetes";
import { desiredState } from "../../../src/model";
import type { KubernetesServer, KubernetesState, MemberLine } from "../../../src/types";
import { devFleet } from "../../fixtures";

const PORTS = { client: 2181, peer: 2888, election: 3888 };
const LABELS = { "app.kubernetes.io/name": "zookeeper", "app.kubernetes.io/instance": "zk" };
const fqdn = (id: number) => `zk-${id}.zookeeper.svc.cluster.local`;
const MEMBERS: MemberLine[] = [12, 3, 7].map((id) => ({ id, address: fqdn(id), peerPort: 2888, electionPort: 3888 }));
const ZOO_CFG = makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true });

const server = (id: number, backend: "host" | "pod", ordinal?: number): KubernetesServer => ({
    id,
    host: `10.20.0.${id}`,
    serviceName: `zk-${id}`,
    serviceFqdn: fqdn(id),
    backend,
    ordinal,
});

/** Three servers with myids 3, 7, 12; cutover order [7, 3]: ordinal 0 -> 7, ordinal 1 -> 3; 12 still on its host. */
function state(): KubernetesState {
    return {
        namespace: "zookeeper",
        name: "zk",
        labels: { ...LABELS },
        ports: { ...PORTS },
        servers: [server(3, "pod", 1), server(7, "pod", 0), server(12, "host")],
        services: true,
        statefulSet: {
            replicas: 2,
            ordinalToMyid: { 0: 7, 1: 3 },
            image: "zookeeper:3.9.3",
            storageSize: "10Gi",
            storageClassName: "fast-ssd",
            zooCfg: ZOO_CFG,
            resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "1Gi" } },
        },
    };
}

/** The same ensemble before any cutover: every server on its host, no StatefulSet. */
function hostsOnly(): KubernetesState {
    const k = state();
    return { ...k, servers: [server(3, "host"), server(7, "host"), server(12, "host")], statefulSet: undefined };
}

const byId = (k: KubernetesState, id: number) => k.servers.find((s) => s.id === id)!;
const NAMED_PORTS = [
    { name: "client", protocol: "TCP", port: 2181 },
    { name: "peer", protocol: "TCP", port: 2888 },
    { name: "leader-election", protocol: "TCP", port: 3888 },
];

describe("per-server Service", () => {
    const table: [string, () => KubernetesState, number, Record<string, string> | undefined][] = [
        ["host backend (no StatefulSet yet)", hostsOnly, 3, undefined],
        ["host backend (others cut over)", state, 12, undefined],
        ["pod backend, ordinal 0 carries myid 7", state, 7, { "statefulset.kubernetes.io/pod-name": "zk-0" }],
        ["pod backend, ordinal 1 carries myid 3", state, 3, { "statefulset.kubernetes.io/pod-name": "zk-1" }],
    ];
    for (const [name, mk, id, selector] of table) {
        it(name, () => {
            const k = mk();
            const svc = makeService(k, byId(k, id));
            assert.equal(svc.apiVersion, "v1");
            assert.equal(svc.kind, "Service");
            assert.deepEqual(svc.metadata, { name: `zk-${id}`, namespace: "zookeeper", labels: { ...LABELS, "zkmigrate/myid": String(id) } });
            assert.equal(svc.spec.type, "ClusterIP");
            assert.equal(svc.spec.clusterIP, undefined);
            assert.equal(svc.spec.publishNotReadyAddresses, true);
            assert.deepEqual(svc.spec.selector, selector);
            assert.equal("selector" in svc.spec, selector !== undefined, "a host-backed Service has no selector key at all");
            assert.deepEqual(
                svc.spec.ports,
                NAMED_PORTS.map((p) => ({ ...p, targetPort: p.port })),
            );
        });
    }

    it("refuses a pod backend without an ordinal, or at an ordinal that carries another myid", () => {
        const k = state();
        assert.throws(() => makeService(k, { ...byId(k, 3), ordinal: undefined }), /server 3 runs in a pod but has no StatefulSet ordinal/);
        assert.throws(() => makeService(k, { ...byId(k, 3), ordinal: 0 }), /server 3 is at ordinal 0, but that ordinal carries myid 7/);
        assert.throws(() => makeService(k, { ...byId(k, 3), ordinal: 2 }), /StatefulSet has 2 replicas/);
        assert.throws(() => makeService(hostsOnly(), server(3, "pod", 0)), /no StatefulSet in this phase/);
    });

    it("refuses empty labels (they would select every pod of the namespace)", () => {
        assert.throws(() => makeService({ ...state(), labels: {} }, server(12, "host")), /labels must not be empty/);
    });
});

describe("manual Endpoints", () => {
    it("point the Service of a host-backed server at the host IP with the named ports", () => {
        const k = state();
        const ep = makeEndpoints(k, byId(k, 12));
        assert.equal(ep.apiVersion, "v1");
        assert.equal(ep.kind, "Endpoints");
        assert.deepEqual(ep.metadata, { name: "zk-12", namespace: "zookeeper", labels: { ...LABELS, "zkmigrate/myid": "12" } });
        assert.equal(ep.metadata.name, makeService(k, byId(k, 12)).metadata.name, "Endpoints bind to the Service by name");
        assert.deepEqual(ep.subsets, [{ addresses: [{ ip: "10.20.0.12" }], ports: NAMED_PORTS }]);
        assert.deepEqual(makeEndpoints(k, { ...byId(k, 12), host: "2001:db8::12" }).subsets[0].addresses, [{ ip: "2001:db8::12" }]);
    });

    const refused: [string, string, RegExp][] = [
        ["a host name", "zk12.example.com", /server 12: host "zk12\.example\.com" is not an IP address \(Endpoints take IP addresses, not names\)/],
        ["an IP with a port", "10.20.0.12:2181", /server 12: .* is not an IP address/],
        ["a loopback address", "127.0.0.1", /server 12: host 127\.0\.0\.1 is a loopback address/],
        ["a link-local address", "169.254.1.1", /server 12: .* link-local/],
        ["an IPv6 link-local address", "fe80::1", /server 12: .* link-local/],
    ];
    for (const [name, host, re] of refused) {
        it(`refuse ${name}`, () => {
            const k = state();
            assert.throws(() => makeEndpoints(k, { ...byId(k, 12), host }), re);
        });
    }

    it("are not made for a pod-backed server (the endpoints controller owns them)", () => {
        const k = state();
        assert.throws(() => makeEndpoints(k, byId(k, 7)), /server 7 runs in a pod/);
    });
});

/** Runs init.sh with bash in a temp dir; returns the exit status, output and the dirs. */
function runInit(hostname: string, prepare?: (d: { config: string; data: string; conf: string; image: string }) => void) {
    const root = mkdtempSync(join(tmpdir(), "zkmigrate-init-"));
    const d = { config: join(root, "config"), data: join(root, "data"), conf: join(root, "conf"), image: join(root, "image-conf") };
    mkdirSync(d.config);
    mkdirSync(d.image);
    const cm = makeConfigMap(state());
    for (const [name, text] of Object.entries(cm.data)) writeFileSync(join(d.config, name), text);
    writeFileSync(join(d.image, "logback.xml"), "<configuration/>\n");
    prepare?.(d);
    const r = spawnSync("bash", [join(d.config, "init.sh")], {
        env: { PATH: process.env.PATH, HOSTNAME: hostname, CONFIG_DIR: d.config, DATA_DIR: d.data, CONF_DIR: d.conf, IMAGE_CONF_DIR: d.image },
        encoding: "utf8",
        timeout: 10_000,
        killSignal: "SIGKILL",
    });
    const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : undefined);
    const out = { status: r.status, stdout: r.stdout, stderr: r.stderr, myid: read(join(d.data, "myid")), zooCfg: read(join(d.conf, "zoo.cfg")), logback: read(join(d.conf, "logback.xml")) };
    rmSync(root, { recursive: true, force: true });
    return out;
}

describe("ConfigMap and init script", () => {
    it("holds zoo.cfg, the ordinal -> myid table in ordinal order, and init.sh", () => {
        const cm = makeConfigMap(state());
        assert.equal(cm.kind, "ConfigMap");
        assert.deepEqual(cm.metadata, { name: "zk-config", namespace: "zookeeper", labels: LABELS });
        assert.equal(cm.data["zoo.cfg"], ZOO_CFG);
        assert.equal(cm.data.myids, "0 7\n1 3\n");
        assert.equal(cm.data["init.sh"], INIT_SCRIPT);
        assert.match(INIT_SCRIPT, /^#!\/bin\/bash\n/);
        assert.doesNotMatch(INIT_SCRIPT, /\\\$\{/, "no TypeScript escapes left in the script");
    });

    it("throws without a StatefulSet, and on a broken ordinal table", () => {
        assert.throws(() => makeConfigMap(hostsOnly()), /no StatefulSet in this phase/);
        const k = state();
        assert.throws(() => makeConfigMap({ ...k, statefulSet: { ...k.statefulSet!, ordinalToMyid: { 0: 7, 1: 7 } } }), /myid 7 is carried by ordinals 0 and 1/);
        assert.throws(() => makeConfigMap({ ...k, statefulSet: { ...k.statefulSet!, ordinalToMyid: { 0: 7 } } }), /ordinal 1 \(pod zk-1\) has no myid/);
    });

    it("init.sh: pod zk-1 (ordinal 1) gets myid 3 and zoo.cfg", () => {
        const r = runInit("zk-1");
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.myid, "3\n");
        assert.equal(r.zooCfg, ZOO_CFG);
        assert.equal(r.logback, "<configuration/>\n", "the image's logging configuration is kept next to zoo.cfg");
        assert.match(r.stdout, /pod zk-1: ordinal 1, myid 3/);
    });

    it("init.sh: pod zk-0 gets myid 7 (ordinals follow the cutover order, not the myids)", () => {
        const r = runInit("zk-0");
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.myid, "7\n");
    });

    it("init.sh: an ordinal without a myid fails loudly and writes nothing", () => {
        const r = runInit("zk-5");
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /ordinal 5 \(pod zk-5\) has no myid in .*myids: refusing to start/);
        assert.equal(r.myid, undefined);
        assert.equal(r.zooCfg, undefined);
    });

    it("init.sh: a hostname without an ordinal fails", () => {
        const r = runInit("zookeeper");
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /does not end in -<ordinal>/);
    });

    it("init.sh: refuses a volume that holds another server's myid", () => {
        const r = runInit("zk-1", (d) => {
            mkdirSync(d.data);
            writeFileSync(join(d.data, "myid"), "7\n");
        });
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /myid holds 7, but ordinal 1 carries myid 3/);
        assert.equal(r.myid, "7\n", "left as it was");
    });

    it("init.sh: keeps a volume that already holds this server's myid", () => {
        const r = runInit("zk-1", (d) => {
            mkdirSync(d.data);
            writeFileSync(join(d.data, "myid"), "3");
        });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.myid, "3\n");
    });

    it("init.sh: refuses a zoo.cfg without the server's own line", () => {
        const r = runInit("zk-1", (d) => writeFileSync(join(d.config, "zoo.cfg"), ZOO_CFG.replace(/^server\.3=.*\n/m, "")));
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /zoo\.cfg has no line server\.3=/);
    });
});

describe("StatefulSet", () => {
    const sts = makeStatefulSet(state());
    const pod = sts.spec.template.spec;
    const zk = pod.containers[0];
    const init = pod.initContainers[0];

    it("grows by cutover, one pod at a time, never rolls by itself", () => {
        assert.equal(sts.apiVersion, "apps/v1");
        assert.deepEqual(sts.metadata, { name: "zk", namespace: "zookeeper", labels: LABELS });
        assert.equal(sts.spec.replicas, 2);
        assert.equal(sts.spec.serviceName, "zk-headless");
        assert.equal(sts.spec.podManagementPolicy, "OrderedReady");
        assert.deepEqual(sts.spec.updateStrategy, { type: "OnDelete" });
        assert.deepEqual(sts.spec.selector, { matchLabels: LABELS });
        assert.deepEqual(sts.spec.template.metadata.labels, LABELS);
    });

    it("spreads the pods over nodes", () => {
        assert.deepEqual((pod.affinity.podAntiAffinity as { requiredDuringSchedulingIgnoredDuringExecution: unknown }).requiredDuringSchedulingIgnoredDuringExecution, [
            { labelSelector: { matchLabels: LABELS }, topologyKey: "kubernetes.io/hostname" },
        ]);
    });

    it("runs init.sh from the ConfigMap, then zkServer.sh on the copied config", () => {
        assert.equal(init.image, "zookeeper:3.9.3");
        assert.deepEqual(init.command, ["bash", "/config/init.sh"]);
        const env = Object.fromEntries(init.env.map((e) => [e.name, e.value ?? e.valueFrom]));
        assert.deepEqual(env, {
            POD_NAME: { fieldRef: { fieldPath: "metadata.name" } },
            CONFIG_DIR: "/config",
            DATA_DIR: "/data",
            CONF_DIR: "/zkmigrate/conf",
            IMAGE_CONF_DIR: "/conf",
        });
        assert.deepEqual(init.volumeMounts, [
            { name: "configmap", mountPath: "/config", readOnly: true },
            { name: "conf", mountPath: "/zkmigrate/conf" },
            { name: "data", mountPath: "/data" },
        ]);
        assert.equal(zk.image, "zookeeper:3.9.3");
        assert.deepEqual(zk.command, ["zkServer.sh", "start-foreground"]);
        // The 1Gi memory limit gives a heap of 768 MiB (75 %).
        assert.deepEqual(zk.env, [
            { name: "ZOOCFGDIR", value: "/zkmigrate/conf" },
            { name: "ZK_SERVER_HEAP", value: "768" },
        ]);
        assert.deepEqual(zk.volumeMounts, [
            { name: "conf", mountPath: "/zkmigrate/conf" },
            { name: "data", mountPath: "/data" },
            { name: "tmp", mountPath: "/tmp" },
            { name: "logs", mountPath: "/logs" },
        ]);
        assert.deepEqual(pod.volumes, [
            { name: "configmap", configMap: { name: "zk-config" } },
            { name: "conf", emptyDir: {} },
            { name: "tmp", emptyDir: {} },
            { name: "logs", emptyDir: {} },
        ]);
        assert.equal(pod.securityContext.fsGroup, 1000);
    });

    it("names the container ports as the Service does, and passes resources through", () => {
        assert.deepEqual(zk.ports, [
            { name: "client", containerPort: 2181, protocol: "TCP" },
            { name: "peer", containerPort: 2888, protocol: "TCP" },
            { name: "leader-election", containerPort: 3888, protocol: "TCP" },
        ]);
        assert.deepEqual(zk.resources, { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "1Gi" } });
        const k = state();
        delete k.statefulSet!.resources;
        assert.equal("resources" in makeStatefulSet(k).spec.template.spec.containers[0], false);
    });

    it("probes srvr (a Mode line) for readiness and ruok for liveness", () => {
        assert.deepEqual(zk.readinessProbe!.exec.command.slice(0, 2), ["bash", "-c"]);
        assert.match(zk.readinessProbe!.exec.command[2], /\/dev\/tcp\/127\.0\.0\.1\/2181/);
        assert.match(zk.readinessProbe!.exec.command[2], /srvr/);
        assert.match(zk.readinessProbe!.exec.command[2], /Mode: /);
        assert.match(zk.livenessProbe!.exec.command[2], /ruok/);
        assert.match(zk.livenessProbe!.exec.command[2], /imok/);
        assert.ok(zk.livenessProbe!.failureThreshold * zk.livenessProbe!.periodSeconds >= 60, "liveness is lenient");
    });

    it("claims a ReadWriteOnce volume per pod", () => {
        assert.deepEqual(sts.spec.volumeClaimTemplates, [
            {
                metadata: { name: "data", labels: LABELS },
                spec: { accessModes: ["ReadWriteOnce"], storageClassName: "fast-ssd", resources: { requests: { storage: "10Gi" } } },
            },
        ]);
        const k = state();
        delete k.statefulSet!.storageClassName;
        assert.equal("storageClassName" in makeStatefulSet(k).spec.volumeClaimTemplates[0].spec, false, "the cluster's default class");
    });

    it("mounts the volume at zoo.cfg's dataDir", () => {
        const k = state();
        k.statefulSet!.zooCfg = makeZooCfg({ dataDir: "/var/lib/zookeeper", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true });
        const s = makeStatefulSet(k).spec.template.spec;
        assert.deepEqual(s.containers[0].volumeMounts[1], { name: "data", mountPath: "/var/lib/zookeeper" });
        assert.equal(s.initContainers[0].env.find((e) => e.name === "DATA_DIR")!.value, "/var/lib/zookeeper");
    });

    const refusals: [string, (k: KubernetesState) => void, RegExp][] = [
        ["no StatefulSet in this phase", (k) => (k.statefulSet = undefined), /no StatefulSet in this phase/],
        ["zoo.cfg on another client port", (k) => (k.ports.client = 2182), /clientPort=2181, but the client port is 2182/],
        ["zoo.cfg on other peer ports", (k) => (k.ports.peer = 2889), /server\.\d+=.*peer\/election ports are 2889\/3888/],
        ["a myid missing from zoo.cfg", (k) => (k.statefulSet!.ordinalToMyid = { 0: 7, 1: 4 }), /no server\.4 line/],
        ["a base name too long for pod labels", (k) => (k.name = "z".repeat(53)), /at most 52 characters/],
        ["a bad storage size", (k) => (k.statefulSet!.storageSize = "10 GB"), /not a Kubernetes quantity/],
    ];
    for (const [name, edit, re] of refusals) {
        it(`refuses ${name}`, () => {
            const k = state();
            edit(k);
            assert.throws(() => makeStatefulSet(k), re);
        });
    }
});

/** A fake ZooKeeper client port on 127.0.0.1: answers each 4lw from `answers`, then closes. */
function fakeZooKeeper(answers: Record<string, string>): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
    const sockets = new Set<Socket>();
    const server = createServer((sock) => {
        sockets.add(sock);
        sock.on("close", () => sockets.delete(sock));
        sock.setTimeout(5_000, () => sock.destroy());
        let got = "";
        sock.on("data", (b) => {
            got += b.toString("latin1");
            if (got.length >= 4) sock.end(answers[got.slice(0, 4)] ?? "");
        });
        sock.on("error", () => sock.destroy());
    });
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port, sockets }));
    });
}

/** Runs a probe's `bash -c` text with the client port replaced; bounded by a kill after 10 s. */
function runProbe(command: string[], port: number): Promise<{ code: number; stderr: string }> {
    const args = command.slice(1).map((a) => a.replaceAll("/2181", `/${port}`).replaceAll(":2181", `:${port}`));
    return new Promise((resolve) => {
        execFile(command[0], args, { timeout: 10_000, killSignal: "SIGKILL", encoding: "utf8" }, (err, _stdout, stderr) => {
            const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
            resolve({ code, stderr });
        });
    });
}

describe("probes against a fake ZooKeeper", () => {
    const zk = makeStatefulSet(state()).spec.template.spec.containers[0];
    const SERVING = "Zookeeper version: 3.9.3\nLatency min/avg/max: 0/0.0/0\nReceived: 10\nSent: 9\nConnections: 1\nOutstanding: 0\nZxid: 0x100000002\nMode: follower\nNode count: 5\n";
    const fakes: { server: Server; sockets: Set<Socket> }[] = [];
    let serving: number;
    let syncing: number;
    let closed: number;

    before(async () => {
        const a = await fakeZooKeeper({ srvr: SERVING, ruok: "imok" });
        const b = await fakeZooKeeper({ srvr: "This ZooKeeper instance is not currently serving requests\n", ruok: "" });
        const c = await fakeZooKeeper({});
        fakes.push(a, b, c);
        serving = a.port;
        syncing = b.port;
        // A port that nothing listens on: bound, then closed.
        closed = c.port;
        await new Promise<void>((r) => c.server.close(() => r()));
    });
    after(async () => {
        for (const f of fakes) {
            for (const s of f.sockets) s.destroy();
            await new Promise<void>((r) => (f.server.listening ? f.server.close(() => r()) : r()));
        }
    });

    it("readiness passes when srvr answers with a Mode line", async () => {
        const r = await runProbe(zk.readinessProbe!.exec.command, serving);
        assert.equal(r.code, 0, r.stderr);
    });
    it("readiness fails while the server does not serve (no Mode line)", async () => {
        const r = await runProbe(zk.readinessProbe!.exec.command, syncing);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${syncing} answered without a Mode line`));
    });
    it("readiness fails when nothing listens", async () => {
        const r = await runProbe(zk.readinessProbe!.exec.command, closed);
        assert.notEqual(r.code, 0);
    });
    it("liveness passes on imok and fails otherwise", async () => {
        assert.equal((await runProbe(zk.livenessProbe!.exec.command, serving)).code, 0);
        assert.equal((await runProbe(zk.livenessProbe!.exec.command, syncing)).code, 1);
        assert.notEqual((await runProbe(zk.livenessProbe!.exec.command, closed)).code, 0);
    });
});

describe("headless Service and PodDisruptionBudget", () => {
    it("headless governing Service selects the ensemble's pods, ready or not", () => {
        const h = makeHeadlessService(state());
        assert.equal(h.metadata.name, "zk-headless");
        assert.equal(h.spec.clusterIP, "None");
        assert.equal(h.spec.publishNotReadyAddresses, true);
        assert.deepEqual(h.spec.selector, LABELS);
    });
    it("PDB allows one pod down at a time", () => {
        assert.deepEqual(makePodDisruptionBudget(state()), {
            apiVersion: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: { name: "zk-pdb", namespace: "zookeeper", labels: LABELS },
            spec: { maxUnavailable: 1, selector: { matchLabels: LABELS } },
        });
    });
});

describe("zoo.cfg of the pods", () => {
    it("defaults, then the membership sorted by id", () => {
        assert.equal(
            ZOO_CFG,
            [
                "# zoo.cfg of the ZooKeeper pods, written by zkmigrate (edits are overwritten).",
                "tickTime=2000",
                "initLimit=10",
                "syncLimit=5",
                "dataDir=/data",
                "clientPort=2181",
                "4lw.commands.whitelist=srvr,mntr,conf,ruok",
                "admin.enableServer=false",
                "standaloneEnabled=false",
                "reconfigEnabled=false",
                "autopurge.snapRetainCount=3",
                "autopurge.purgeInterval=1",
                "# BEGIN zkmigrate membership",
                `server.3=${fqdn(3)}:2888:3888`,
                `server.7=${fqdn(7)}:2888:3888`,
                `server.12=${fqdn(12)}:2888:3888`,
                "quorumListenOnAllIPs=true",
                "# END zkmigrate membership",
                "",
            ].join("\n"),
        );
    });

    it("settings replace defaults in place and add new keys before the membership", () => {
        const cfg = makeZooCfg({
            dataDir: "/data",
            clientPort: 2181,
            members: MEMBERS,
            quorumListenOnAllIPs: false,
            settings: { tickTime: 3000, "autopurge.purgeInterval": 1, "4lw.commands.whitelist": "srvr,ruok,stat", "sslQuorum": false },
        });
        const lines = cfg.split("\n");
        assert.equal(lines.filter((l) => l.startsWith("tickTime=")).length, 1);
        assert.equal(lines[1], "tickTime=3000");
        assert.equal(zooCfgValue(cfg, "4lw.commands.whitelist"), "srvr,ruok,stat");
        assert.ok(lines.indexOf("autopurge.purgeInterval=1") < lines.indexOf("# BEGIN zkmigrate membership"));
        assert.equal(zooCfgValue(cfg, "sslQuorum"), "false");
        assert.equal(zooCfgValue(cfg, "quorumListenOnAllIPs"), "false");
    });

    it("the 4lw whitelist is never *", () => {
        assert.equal(zooCfgValue(ZOO_CFG, "4lw.commands.whitelist"), FOUR_LETTER_WHITELIST);
        assert.doesNotMatch(ZOO_CFG, /4lw\.commands\.whitelist=.*\*/);
        for (const w of ["*", "srvr,ruok,*", " * "]) {
            assert.throws(
                () => makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, settings: { "4lw.commands.whitelist": w } }),
                /must never be \*/,
            );
        }
        assert.throws(
            () => makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, settings: { "4lw.commands.whitelist": "srvr,mntr" } }),
            /must include ruok/,
        );
    });

    const reserved: [Record<string, string | number | boolean>, RegExp][] = [
        [{ dataDir: "/elsewhere" }, /dataDir has its own field/],
        [{ clientPort: 2182 }, /clientPort comes from/],
        [{ "server.9": "x:1:2" }, /membership comes from the servers/],
        [{ quorumListenOnAllIPs: false }, /quorumListenOnAllIPs comes from/],
        [{ standaloneEnabled: true }, /standalone/],
        [{ reconfigEnabled: true }, /rolling restarts/],
        [{ dynamicConfigFile: "/conf/zoo.cfg.dynamic" }, /membership in zoo.cfg/],
        [{ dataLogDir: "/datalog" }, /dataLogDir \/datalog must be inside dataDir/],
        [{ "bad key": 1 }, /not a property name/],
        [{ maxClientCnxns: "60\nserver.99=evil:1:2" }, /on one line/],
    ];
    for (const [settings, re] of reserved) {
        it(`refuses settings ${JSON.stringify(settings)}`, () => {
            assert.throws(() => makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, settings }), re);
        });
    }
    it("accepts a dataLogDir inside dataDir", () => {
        const cfg = makeZooCfg({ dataDir: "/data", clientPort: 2181, members: MEMBERS, quorumListenOnAllIPs: true, settings: { dataLogDir: "/data/txnlog" } });
        assert.equal(zooCfgValue(cfg, "dataLogDir"), "/data/txnlog");
    });
});

describe("with the procedure's desired state (Pulumi.dev.yaml, ensemble shared)", () => {
    const kube = devFleet().ensembles.find((e) => e.procedure === "kubernetes") as KubernetesConfig;
    const steps: [string, number[]][] = [
        ["services", []],
        ["peers", []],
        ["pods", [13]],
        ["pods", [13, 11]],
        ["done", [13, 11, 12]],
    ];
    for (const [phase, cutover] of steps) {
        it(`${phase} [${cutover}]: every object builds`, () => {
            const k = desiredState(kube, phase, cutover).kubernetes!;
            for (const s of k.servers) {
                const svc = makeService(k, s);
                if (s.backend === "host") {
                    assert.equal(svc.spec.selector, undefined);
                    assert.equal(makeEndpoints(k, s).subsets[0].addresses[0].ip, s.host);
                } else {
                    assert.deepEqual(svc.spec.selector, { "statefulset.kubernetes.io/pod-name": `${k.name}-${cutover.indexOf(s.id)}` });
                }
            }
            if (cutover.length === 0) {
                assert.equal(k.statefulSet, undefined);
                return;
            }
            assert.equal(makeConfigMap(k).data.myids, cutover.map((id, i) => `${i} ${id}\n`).join(""));
            assert.equal(makeStatefulSet(k).spec.replicas, cutover.length);
            makeHeadlessService(k);
            makePodDisruptionBudget(k);
        });
    }
});
