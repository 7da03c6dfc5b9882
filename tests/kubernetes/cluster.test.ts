// The kubernetes procedure's objects against a real Kubernetes: a local single-node cluster
// (rehearsal/kubernetes/cluster.ts, v1.34.4 built from Go modules) beside a local fleet of three
// ZooKeeper hosts.
//
// - Every manifest src/kubernetes/objects.ts builds, for every phase of the dev stack's kubernetes
//   ensemble (Pulumi.dev.yaml, `shared`), passes the API server's own validation
//   (`kubectl apply --dry-run=server`), and the last step is applied for real.
// - A Service without selector plus its manual Endpoints (makeService/makeEndpoints for a fleet
//   host) reaches the ZooKeeper server on that host through its ClusterIP from another host, and
//   by its name through the cluster's DNS.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { linkNodeModules } from "../../rehearsal/engine";
import { checkPrerequisites, createFleet, destroyFleet, hostService, inNetns, runScript, waitServing, type LocalFleet } from "../../rehearsal/fleet";
import { checkClusterPrerequisites, destroyCluster, ensureVolumes, kubectl, kubectlMust, loadCluster, startCluster, type Cluster } from "../../rehearsal/kubernetes/cluster";
import { loadConfig, type KubernetesConfig } from "../../src/config";
import { serverLines } from "../../src/scripts/config";
import { makeConfigMap, makeEndpointSlice, makeEndpoints, makeHeadlessService, makePodDisruptionBudget, makeService, makeStatefulSet, makeZooCfg } from "../../src/kubernetes";
import { desiredState } from "../../src/model";
import { KUBERNETES_PHASES } from "../../src/procedures/kubernetes";
import type { KubernetesState } from "../../src/types";
import { PULUMI_HOME, useEngine } from "../helpers/engine";
import { TEST_SSH, devFleet } from "../fixtures";
import { assertFleetGone } from "../integration/helpers/fleet";

const NAME = "it-k8s";
let theFleet: LocalFleet | undefined;
let cluster: Cluster | undefined;
const fleet = () => {
    if (!theFleet) throw new Error(`fleet ${NAME} was not created`);
    return theFleet;
};
const c = () => {
    if (!cluster) throw new Error(`cluster ${NAME} did not start`);
    return cluster;
};

describe("a local Kubernetes beside a fleet of three ZooKeeper hosts", () => {
    before(
        async () => {
            // A missing package or an unbuilt binary fails here, naming what to install or run.
            checkPrerequisites();
            checkClusterPrerequisites();
            await destroyCluster(NAME);
            await destroyFleet(NAME);
            theFleet = await createFleet({ name: NAME, ensembles: [{ name: "zk", servers: 3 }] });
            const t0 = Date.now();
            cluster = await startCluster(NAME, { fleet: fleet(), log: (l) => process.env.ZKMIGRATE_IT_VERBOSE && console.log(`  cluster: ${l}`) });
            console.log(`  local Kubernetes ${NAME} Ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        },
        { timeout: 900_000 },
    );

    after(
        async () => {
            // The cluster first (it is attached to the fleet's bridge and hosts), then the fleet.
            try {
                await destroyCluster(NAME);
                assert.equal(loadCluster(NAME), undefined, "the cluster's state is gone");
                if (theFleet) {
                    const routes = await inNetns(fleet(), fleet().hosts[0], ["ip", "route", "show"]);
                    assert.doesNotMatch(routes.stdout, / via \S+\.254 /, "the hosts' routes to the cluster are gone");
                }
            } finally {
                await destroyFleet(NAME);
                assertFleetGone(NAME);
            }
        },
        { timeout: 300_000 },
    );

    /** Every object of one step, as kubectl reads them (a v1 List). */
    function objectsOf(k: KubernetesState): unknown[] {
        const out: unknown[] = [];
        for (const s of k.services ? k.servers : []) {
            out.push(makeService(k, s));
            if (s.backend === "host") out.push(k.endpointsKind === "EndpointSlice" ? makeEndpointSlice(k, s) : makeEndpoints(k, s));
        }
        if (k.statefulSet) out.push(makeConfigMap(k), makeHeadlessService(k), makePodDisruptionBudget(k), makeStatefulSet(k));
        return out;
    }

    const asList = (items: unknown[]) => JSON.stringify({ apiVersion: "v1", kind: "List", items });

    describe("the objects of every phase (dev stack, ensemble shared) pass the API server's validation", () => {
        const kube = devFleet().ensembles.find((e) => e.procedure === "kubernetes") as KubernetesConfig;
        const steps: [string, number[]][] = [];
        for (const phase of KUBERNETES_PHASES) {
            if (phase === "pods") {
                // One cutover per update: 1, 2, then all servers in pods.
                for (let n = 1; n <= kube.servers.length; n++) steps.push([phase, kube.servers.slice(0, n).map((s) => s.id)]);
            } else {
                steps.push([phase, phase === "done" ? kube.servers.map((s) => s.id) : []]);
            }
        }

        before(async () => {
            await kubectlMust(c(), ["create", "namespace", kube.kubernetes.namespace]);
        });

        // The same with clusterVersion v1.34.4: the manual endpoints as EndpointSlices.
        const sliced = { ...kube, kubernetes: { ...kube.kubernetes, clusterVersion: "v1.34.4" } } as KubernetesConfig;
        for (const [phase, cutover, e] of [...steps.map(([p, c]) => [p, c, kube] as const), ...steps.filter(([p]) => p !== "hosts").map(([p, c]) => [p, c, sliced] as const)]) {
            it(`${phase} [${cutover.join(",")}]${e === sliced ? " (EndpointSlices)" : ""}: kubectl apply --dry-run=server`, async () => {
                const k = desiredState(e, phase, cutover).kubernetes;
                assert.ok(k, `phase ${phase} has a kubernetes state`);
                const items = objectsOf(k);
                if (!k.services) {
                    assert.equal(items.length, 0, "no object before the services phase");
                    return;
                }
                assert.ok(items.length >= kube.servers.length, "one Service per server at least");
                const r = await kubectl(c(), ["apply", "--dry-run=server", "-o", "name", "-f", "-"], { input: asList(items) });
                assert.equal(r.code, 0, `the API server refused an object of ${phase}: ${r.stderr}`);
                assert.equal(r.stdout.trim().split("\n").length, items.length, r.stdout);
            });
        }

        it("the last step applies for real: the StatefulSet, its Services and the PDB exist", async () => {
            const [phase, cutover] = steps[steps.length - 1];
            const k = desiredState(kube, phase, cutover).kubernetes!;
            await kubectlMust(c(), ["apply", "-f", "-"], { input: asList(objectsOf(k)) });
            const sts = JSON.parse(await kubectlMust(c(), ["get", "statefulset", k.name, "-n", k.namespace, "-o", "json"]));
            assert.equal(sts.spec.replicas, kube.servers.length);
            const svcs = JSON.parse(await kubectlMust(c(), ["get", "services", "-n", k.namespace, "-o", "json"])).items as { metadata: { name: string } }[];
            for (const s of k.servers) assert.ok(svcs.some((x) => x.metadata.name === s.serviceName), `Service ${s.serviceName}`);
            await kubectlMust(c(), ["delete", "namespace", kube.kubernetes.namespace, "--wait=false"]);
        });

        it("the API server refuses a broken manifest (the validation can fail)", async () => {
            const k = desiredState(kube, "services", []).kubernetes!;
            const svc = makeService(k, k.servers[0]) as unknown as { spec: { ports: { port: number }[] } };
            svc.spec.ports[0].port = 70000;
            const r = await kubectl(c(), ["apply", "--dry-run=server", "-f", "-"], { input: asList([svc]) });
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, /port/i);
        });
    });

    describe("a Service without selector and manual Endpoints in front of a fleet host", () => {
        it("reaches the host's ZooKeeper through the ClusterIP and the Service name from another host", async () => {
            const f = fleet();
            const [h1, h2] = f.hosts;
            const k: KubernetesState = {
                name: "zk",
                namespace: "default",
                labels: { app: "zk-it" },
                services: true,
                ports: { client: 2181, peer: 2888, election: 3888 },
                servers: [{ id: h1.id, host: h1.address, serviceName: "zk-it-1", serviceFqdn: "zk-it-1.default.svc.cluster.local", backend: "host" }],
            };
            await kubectlMust(c(), ["apply", "-f", "-"], { input: asList([makeService(k, k.servers[0]), makeEndpoints(k, k.servers[0])]) });
            const ip = (await kubectlMust(c(), ["get", "service", "zk-it-1", "-o", "jsonpath={.spec.clusterIP}"])).trim();
            assert.match(ip, /^10\.\d+\.\d+\.\d+$/);

            // From host 2's network namespace to the ClusterIP (routed through the node, where kube-proxy's rules are).
            const srvr = `for i in $(seq 1 40); do if exec 3<>/dev/tcp/$0/2181; then printf srvr >&3; cat <&3; exit 0; fi; sleep 0.5; done; exit 1`;
            const byIp = await inNetns(f, h2, ["bash", "-c", srvr, ip], 60_000);
            assert.equal(byIp.code, 0, byIp.stderr);
            assert.match(byIp.stdout, /Mode: (leader|follower)/);

            // By name over SSH (the host's own resolv.conf points at the cluster's DNS).
            const byName = await runScript(f, h2, `set -e\ngetent hosts zk-it-1.default.svc.cluster.local\nbash -c '${srvr}' zk-it-1.default.svc.cluster.local\n`, { timeoutMs: 60_000 });
            assert.equal(byName.code, 0, byName.stderr);
            assert.match(byName.stdout, new RegExp(`^${ip.replace(/\./g, "\\.")}\\s+zk-it-1`, "m"));
            assert.match(byName.stdout, /Mode: (leader|follower)/);

            // Without its Endpoints the ClusterIP leads nowhere (once the mirrored EndpointSlice is
            // gone and kube-proxy has synced): the Endpoints are what routed it to that host.
            await kubectlMust(c(), ["delete", "endpoints", "zk-it-1"]);
            const probe = `exec 3<>/dev/tcp/$0/2181 && printf srvr >&3 && timeout 3 cat <&3`;
            let answered = true;
            for (const deadline = Date.now() + 60_000; answered && Date.now() < deadline; ) {
                answered = /Mode:/.test((await inNetns(f, h2, ["timeout", "5", "bash", "-c", probe, ip], 10_000)).stdout);
                if (answered) await new Promise((r) => setTimeout(r, 1000));
            }
            assert.equal(answered, false, "the ClusterIP still answers 60 s after its Endpoints were deleted");
        });
    });
    describe("the kubernetes provider plugin in the engine (tools/pulumi/kubernetes-provider.sh)", () => {
        const K8S_VERSION: string = require("@pulumi/kubernetes/package.json").version;
        const need = useEngine({
            label: "zkmigrate-k8s-engine",
            installHint: "run tools/pulumi/install.sh (it also builds the kubernetes provider plugin)",
            check: () => {
                const plugin = path.join(PULUMI_HOME, "plugins", `resource-kubernetes-v${K8S_VERSION}`, "pulumi-resource-kubernetes");
                assert.ok(fs.existsSync(plugin), `the kubernetes provider plugin ${K8S_VERSION} is not installed (${plugin} is missing): run tools/pulumi/kubernetes-provider.sh`);
            },
        });

        it("pulumi up creates the services phase's Service and Endpoints in the cluster, destroy removes them", { timeout: 600_000 }, async () => {
            const e = need();
            const kube = devFleet().ensembles.find((x) => x.procedure === "kubernetes") as KubernetesConfig;
            // A namespace of its own: the validation suite's is still being deleted.
            const k = { ...desiredState(kube, "services", []).kubernetes!, namespace: "zk-engine" };
            const s = k.servers[0];
            const dir = path.join(e.tmp, "k8s");
            fs.mkdirSync(dir, { recursive: true });
            fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: k8s-provider\nruntime: nodejs\n");
            fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "k8s-provider", private: true, main: "index.js" }));
            fs.writeFileSync(
                path.join(dir, "index.js"),
                [
                    `const k8s = require("@pulumi/kubernetes");`,
                    `const provider = new k8s.Provider("local", { kubeconfig: ${JSON.stringify(fs.readFileSync(c().kubeconfig, "utf8"))} });`,
                    `const o = { provider };`,
                    `const ns = new k8s.core.v1.Namespace("ns", { metadata: { name: ${JSON.stringify(k.namespace)} } }, o);`,
                    `const svc = new k8s.core.v1.Service("svc", ${JSON.stringify(makeService(k, s))}, { provider, dependsOn: [ns] });`,
                    `new k8s.core.v1.Endpoints("ep", ${JSON.stringify(makeEndpoints(k, s))}, { provider, dependsOn: [ns] });`,
                    `exports.clusterIP = svc.spec.clusterIP;`,
                    ``,
                ].join("\n"),
            );
            linkNodeModules(dir);
            const stack = await LocalWorkspace.createStack({ stackName: "dev", workDir: dir }, { pulumiCommand: e.command, envVars: e.env });
            try {
                const t0 = Date.now();
                const up = await stack.up();
                assert.equal(up.summary.result, "succeeded", up.stdout);
                const ip = (await kubectlMust(c(), ["get", "service", s.serviceName, "-n", k.namespace, "-o", "jsonpath={.spec.clusterIP}"])).trim();
                assert.equal(up.outputs.clusterIP.value, ip);
                const ep = JSON.parse(await kubectlMust(c(), ["get", "endpoints", s.serviceName, "-n", k.namespace, "-o", "json"]));
                assert.equal(ep.subsets[0].addresses[0].ip, s.host);
                console.log(`  pulumi up with the kubernetes provider ${K8S_VERSION}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
                const down = await stack.destroy();
                assert.equal(down.summary.result, "succeeded", down.stdout);
                const gone = await kubectl(c(), ["get", "service", s.serviceName, "-n", k.namespace]);
                assert.notEqual(gone.code, 0, "the Service is gone after destroy");
            } finally {
                await stack.workspace.removeStack("dev", { force: true }).catch(() => undefined);
            }
        });
    });
    describe("peers addressed by their Services' names (the peers phase, on real objects)", () => {
        /**
         * Every host's zoo.cfg with the membership the procedure's `peers` phase writes (its desired
         * state for these hosts: server lines by Service name), with quorumListenOnAllIPs as given
         * (the phase itself always sets it); all restarted.
         */
        async function restartByName(listenOnAll: boolean): Promise<void> {
            const f = fleet();
            const e = loadConfig({
                ...TEST_SSH,
                ensembles: [{ name: "zk-peer", procedure: "kubernetes", phase: "peers", servers: f.hosts.map((h) => ({ id: h.id, host: h.address })), kubernetes: { namespace: "default" } }],
            }).ensembles[0];
            const written = desiredState(e, "peers", []).servers[0].written;
            assert.equal(written.quorumListenOnAllIPs, true, "the peers phase sets quorumListenOnAllIPs");
            const members = serverLines(written);
            assert.match(members[0], /^server\.\d+=zk-peer-\d\.default\.svc\.cluster\.local:2888:3888/);
            for (const h of f.hosts) {
                const file = path.join(h.dir, "conf", "zoo.cfg");
                const kept = fs
                    .readFileSync(file, "utf8")
                    .split("\n")
                    .filter((l) => l && !/^server\.\d+=/.test(l) && !l.startsWith("quorumListenOnAllIPs="));
                fs.writeFileSync(file, [...kept, ...members, `quorumListenOnAllIPs=${listenOnAll}`, ""].join("\n"));
            }
            for (const h of f.hosts) {
                const r = await hostService(f, h, "restart");
                assert.ok(r.code === 0 || !listenOnAll, `restart of ${h.name}: ${r.stdout}${r.stderr}`);
            }
        }

        before(async () => {
            const f = fleet();
            const k: KubernetesState = {
                name: "zk-peer",
                namespace: "default",
                labels: { app: "zk-peer" },
                ports: { client: 2181, peer: 2888, election: 3888 },
                services: true,
                servers: f.hosts.map((h) => ({ id: h.id, host: h.address, serviceName: `zk-peer-${h.id}`, serviceFqdn: `zk-peer-${h.id}.default.svc.cluster.local`, backend: "host" as const })),
            };
            await kubectlMust(c(), ["apply", "-f", "-"], { input: asList(k.servers.flatMap((s) => [makeService(k, s), makeEndpoints(k, s)])) });
        });

        it("without quorumListenOnAllIPs the election port cannot bind the ClusterIP: no ensemble", { timeout: 300_000 }, async () => {
            await restartByName(false);
            await assert.rejects(waitServing(fleet(), fleet().hosts, 40_000), /not serving after 40 s/);
            const logs = fleet().hosts.map((h) => fs.readFileSync(path.join(h.dir, "logs", "zookeeper.log"), "utf8")).join("\n");
            assert.match(logs, /Cannot assign requested address|BindException/);
        });

        it("with quorumListenOnAllIPs=true the same membership forms the ensemble through the ClusterIPs", { timeout: 300_000 }, async () => {
            await restartByName(true);
            const modes = Object.values(await waitServing(fleet(), fleet().hosts, 120_000)).sort();
            assert.deepEqual(modes, ["follower", "follower", "leader"]);
        });

        it("a cutover: host 1 stops, its Service selects the StatefulSet's pod (myid 1, local image), which joins the ensemble", { timeout: 400_000 }, async () => {
            const f = fleet();
            const [h1, h2, h3] = f.hosts;
            const members = f.hosts.map((h) => ({ id: h.id, address: `zk-peer-${h.id}.default.svc.cluster.local`, peerPort: 2888, electionPort: 3888 }));
            const k: KubernetesState = {
                name: "zk-peer",
                namespace: "default",
                labels: { app: "zk-peer" },
                ports: { client: 2181, peer: 2888, election: 3888 },
                services: true,
                servers: f.hosts.map((h) => ({
                    id: h.id,
                    host: h.address,
                    serviceName: `zk-peer-${h.id}`,
                    serviceFqdn: `zk-peer-${h.id}.default.svc.cluster.local`,
                    backend: h.id === h1.id ? ("pod" as const) : ("host" as const),
                    ordinal: h.id === h1.id ? 0 : undefined,
                })),
                statefulSet: {
                    replicas: 1,
                    ordinalToMyid: { 0: h1.id },
                    image: c().images.zookeeper.name,
                    imageDigest: c().images.zookeeper.digest,
                    storageSize: "1Gi",
                    zooCfg: makeZooCfg({ dataDir: "/data", clientPort: 2181, members, quorumListenOnAllIPs: true }),
                    resources: { limits: { memory: "512Mi" } },
                },
            };
            await ensureVolumes(c(), 1);
            const stopped = await hostService(f, h1, "stop");
            assert.equal(stopped.code, 0, stopped.stderr);
            const t0 = Date.now();
            const server1 = k.servers.find((s) => s.id === h1.id)!;
            await kubectlMust(c(), ["apply", "-f", "-"], { input: asList([makeService(k, server1), makeConfigMap(k), makeHeadlessService(k), makeStatefulSet(k)]) });
            const ready = await kubectl(c(), ["wait", "--for=condition=Ready", "pod/zk-peer-0", "--timeout=240s"], { timeoutMs: 260_000 });
            const why = ready.code === 0 ? "" : (await kubectl(c(), ["describe", "pod", "zk-peer-0"])).stdout.slice(-2000) + (await kubectl(c(), ["logs", "zk-peer-0", "--tail=30"])).stdout;
            assert.equal(ready.code, 0, `pod zk-peer-0 not Ready: ${ready.stderr}\n${why}`);
            console.log(`  cutover of server ${h1.id}: pod Ready (synced) ${((Date.now() - t0) / 1000).toFixed(1)} s after the apply`);
            // The pod is server 1 (its srvr through the ClusterIP of zk-peer-1, from host 2), in the ensemble.
            const ip = (await kubectlMust(c(), ["get", "service", "zk-peer-1", "-o", "jsonpath={.spec.clusterIP}"])).trim();
            const srvr = await inNetns(f, h2, ["bash", "-c", "exec 3<>/dev/tcp/$0/2181 && printf srvr >&3 && timeout 5 cat <&3", ip], 20_000);
            assert.match(srvr.stdout, /Mode: (leader|follower)/, srvr.stdout + srvr.stderr);
            const myid = await kubectl(c(), ["exec", "zk-peer-0", "-c", "zookeeper", "--", "cat", "/data/myid"]);
            assert.equal(myid.stdout.trim(), String(h1.id), myid.stderr);
            const modes = Object.values(await waitServing(f, [h2, h3], 60_000));
            assert.equal(modes.length, 2);
        });
    });
});
