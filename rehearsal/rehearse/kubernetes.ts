// The kubernetes procedure in the rehearsal: a local single-node Kubernetes beside the fleet
// (rehearsal/kubernetes/cluster.ts), the stack's kubernetes ensemble for the fleet's three hosts,
// the Service names resolved for the stress clients through the cluster's DNS (as the hosts resolve
// them), and the `pods` phase: one `pulumi up` per cutover, every server, followers first and the
// leader last, with the figures of each cutover. The pod-fault scenario breaks the first cutover's
// volume: that `pulumi up` must stop at the StatefulSet with the host stopped but restorable and
// the ensemble serving on 2 of 3; after the repair a second `pulumi up` completes the cutover.
import { Resolver } from "node:dns/promises";
import { existsSync, readdirSync, rmSync } from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { fourLetterWord, parseMode } from "../../src/zk/four-letter";
import { hostService, runScript, type LocalFleet } from "../fleet";
import { CLUSTER_DOMAIN, KUBERNETES_VERSION, ensureVolumes, kubectl, kubectlMust, type Cluster } from "../kubernetes/cluster";
import type { CutoverFigures, PhaseReport } from "./report";
import type { Rehearsal } from "./scenarios";

/** The pods' namespace and the StatefulSet's and Services' base name (the ensemble's name in the runner). */
export const NAMESPACE = "zookeeper";
const BASE = "kafka";
/** A claim's size, and the hostPath volumes made for the claims (no provisioner in the local cluster), of a class bound when the pod is placed. */
const STORAGE = "1Gi";
const VOLUMES = 3;
const STORAGE_CLASS = "local";

/** How long `pulumi up` waits for a cutover's pod (generous: a 2-core machine shared with others), and for the pod that cannot start in pod-fault. */
export const READY_TIMEOUT_SECONDS = 300;
const FAULT_READY_TIMEOUT_SECONDS = 90;

/** The namespace and the volumes the StatefulSet's claims bind to. */
export async function prepareCluster(c: Cluster): Promise<void> {
    if ((await kubectl(c, ["get", "namespace", NAMESPACE])).code !== 0) await kubectlMust(c, ["create", "namespace", NAMESPACE]);
    await ensureVolumes(c, VOLUMES, { size: STORAGE, storageClass: STORAGE_CLASS });
}

/** The stack's kubernetes ensemble for the fleet's source hosts and the local cluster's image. */
export function kubernetesEntry(hosts: { id: number; address: string }[], c: Cluster, readyTimeoutSeconds = READY_TIMEOUT_SECONDS): Record<string, unknown> {
    const image = c.images.zookeeper;
    if (!image) throw new Error(`cluster ${c.name} has no ZooKeeper image`);
    return {
        procedure: "kubernetes",
        phase: "hosts",
        servers: hosts.map((h) => ({ id: h.id, host: h.address })),
        kubernetes: {
            namespace: NAMESPACE,
            name: BASE,
            image: image.name,
            imageDigest: image.digest,
            storageSize: STORAGE,
            storageClassName: STORAGE_CLASS,
            clusterVersion: KUBERNETES_VERSION,
            // The heap is 75 % of the limit: small pods on a shared 2-core machine.
            resources: { requests: { memory: "256Mi" }, limits: { memory: "512Mi" } },
            readyTimeoutSeconds,
            // One node: the servers share it (the default, one server per node, would leave the second pod Pending).
            scheduling: { podAntiAffinity: "soft" },
        },
    };
}

/** `<name>.<namespace>.svc.<domain>` -> ClusterIP through the cluster's DNS (dns.ts), the server the fleet's hosts use. */
async function resolveName(c: Cluster, name: string): Promise<string> {
    const r = new Resolver({ timeout: 2000, tries: 3 });
    r.setServers([c.address]);
    const deadline = Date.now() + 30_000;
    for (;;) {
        try {
            const [ip] = await r.resolve4(name);
            if (ip) return ip;
        } catch (e) {
            if (Date.now() > deadline) throw new Error(`${name} does not resolve through the cluster's DNS ${c.address}: ${(e as Error).message}`);
        }
        await new Promise((res) => setTimeout(res, 500));
    }
}

/**
 * A published connect string with its cluster-domain names resolved through the cluster's DNS: the
 * rehearsal's clients run in the machine's own namespace, whose resolver does not know the cluster
 * domain (the fleet's hosts and the pods ask the cluster's DNS directly).
 */
export async function resolveConnect(c: Cluster, connect: string): Promise<string> {
    const slash = connect.indexOf("/");
    const hosts = slash < 0 ? connect : connect.slice(0, slash);
    const chroot = slash < 0 ? "" : connect.slice(slash);
    const out = await Promise.all(
        hosts.split(",").map(async (hp) => {
            const i = hp.lastIndexOf(":");
            const [h, port] = i < 0 ? [hp, ""] : [hp.slice(0, i), hp.slice(i)];
            return h.endsWith(`.${CLUSTER_DOMAIN}`) ? `${await resolveName(c, h)}${port}` : hp;
        }),
    );
    return `${out.join(",")}${chroot}`;
}

const fqdn = (id: number) => `${BASE}-${id}.${NAMESPACE}.svc.${CLUSTER_DOMAIN}`;

/** After `services`: the mode monitor polls each server at its Service's ClusterIP (host or pod behind it). */
export async function kubernetesAfterPhase(r: Rehearsal, phase: string): Promise<void> {
    if (phase !== "services") return;
    const c = r.cluster!;
    for (const h of r.sources) {
        const ip = await resolveName(c, fqdn(h.id));
        r.monitor.setAddress(h.id, ip);
        r.say(`rehearse: kubernetes: server ${h.id} polled at its Service ${fqdn(h.id)} (${ip})`);
    }
}

/** Servers in cutover order: followers first, the leader last (one election, at the end). */
function cutoverOrder(r: Rehearsal): number[] {
    const leaders = new Set(r.monitor.leadersAt(Date.now()));
    return r.sources.map((h) => h.id).sort((a, b) => (leaders.has(a) ? 1 : 0) - (leaders.has(b) ? 1 : 0) || a - b);
}

const stepOf = (rep: PhaseReport, suffix: string) => rep.steps.find((s) => s.name.endsWith(suffix));

/** The `pods` phase: one `pulumi up` per server moved into a pod. */
export async function podsPhase(r: Rehearsal, phase: string): Promise<void> {
    await cutovers(r, phase, false);
}

/** The pod-fault scenario's `pods` phase: the first cutover's volume unusable, then repaired. */
export async function podsPhaseWithFault(r: Rehearsal, phase: string): Promise<void> {
    await cutovers(r, phase, true);
}

async function cutovers(r: Rehearsal, phase: string, fault: boolean): Promise<void> {
    const c = r.cluster!;
    const k8s = r.result.kubernetes!;
    const order = cutoverOrder(r);
    r.say(`rehearse: kubernetes: cutover order ${order.join(", ")} (followers first, the leader last)`);
    for (let n = 0; n < order.length; n++) {
        const id = order[n];
        const wasLeader = r.monitor.leadersAt(Date.now()).includes(id);
        const step = `${n + 1}`;
        const setCutover = () => r.setConfig(`zkmigrate:ensembles[0].cutover[${n}]`, String(id));
        const reports: PhaseReport[] = [];
        let repairedAt: number | undefined;
        if (fault && n === 0) {
            // The failing update waits less for its pod (the provider's default is 10 minutes).
            await r.setConfig("zkmigrate:ensembles[0].kubernetes.readyTimeoutSeconds", String(FAULT_READY_TIMEOUT_SECONDS));
            const broken = await breakVolumes(c);
            r.say(`rehearse: pod-fault: the volumes' directories are gone (${broken.join(", ")}): the pod of server ${id} cannot mount its data`);
            const first = await r.runPhase(phase, 1, setCutover, step);
            reports.push(first);
            await checkStopped(r, first, id);
            await repair(r, c);
            repairedAt = Date.now();
            await r.setConfig("zkmigrate:ensembles[0].kubernetes.readyTimeoutSeconds", String(READY_TIMEOUT_SECONDS));
            const second = await r.runPhase(phase, 2, undefined, step);
            reports.push(second);
            if (second.result !== "succeeded") throw new Error(`pods (cutover of server ${id}) after the repair: ${await podDiagnostics(c)}\n${second.error}`);
        } else {
            const rep = await r.runPhase(phase, 1, setCutover, step);
            reports.push(rep);
            if (rep.result !== "succeeded") throw new Error(`pods (cutover of server ${id}) failed: ${await podDiagnostics(c)}\n${rep.error}`);
        }
        const fig = cutoverFigures(r, id, n + 1, wasLeader, reports, repairedAt);
        k8s.cutovers.push(fig);
        r.say(
            `rehearse: kubernetes: server ${id}${wasLeader ? " (the leader)" : ""} in its pod: host stopped in ${(fig.hostStopMs / 1000).toFixed(1)} s, Pulumi's wait for the pod ${(fig.podReadyMs / 1000).toFixed(1)} s, serving ${(fig.podServingMs / 1000).toFixed(1)} s after the ${fig.servingFrom === "repair" ? "repair" : "StatefulSet's apply"}, ${(fig.serverAbsentMs / 1000).toFixed(1)} s without server ${id}; longest write gap ${fig.maxGapMs} ms (load ${fig.load1.toFixed(1)})`,
        );
    }
}

/** The figures of one cutover from its update(s): the host's stop, the StatefulSet's wait, the monitor's first serving sample. */
function cutoverFigures(r: Rehearsal, id: number, update: number, wasLeader: boolean, reports: PhaseReport[], repairedAt?: number): CutoverFigures {
    const abs = (rep: PhaseReport, s: { startMs: number; ms: number }) => ({ start: Date.parse(rep.startedAt) + s.startMs, end: Date.parse(rep.startedAt) + s.startMs + s.ms });
    let stop: { start: number; end: number } | undefined;
    let sts: { start: number; end: number } | undefined;
    for (const rep of reports) {
        const d = stepOf(rep, `-decommission-${id}`);
        if (d && !d.failed) stop = abs(rep, d);
        const s = stepOf(rep, "-statefulset");
        // The update that completed it: its own wait (a failed attempt's wait ended in the fault).
        if (s && !s.failed) sts = abs(rep, s);
    }
    if (!stop || !sts) throw new Error(`cutover of server ${id}: the decommission and StatefulSet steps are not in the reports (${reports.map((x) => x.steps.map((s) => s.name).join(" ")).join(" | ")})`);
    const serving = r.monitor.firstServing([id], stop.end);
    if (serving === undefined) throw new Error(`cutover of server ${id}: its Service never answered srvr with a Mode after the host stopped`);
    return {
        server: id,
        update,
        attempts: reports.length,
        wasLeader,
        hostStopMs: stop.end - stop.start,
        podReadyMs: sts.end - sts.start,
        // After a repair the pod may serve before the second update reaches the StatefulSet: from the repair.
        podServingMs: Math.max(0, serving - (repairedAt ?? sts.start)),
        servingFrom: repairedAt !== undefined ? "repair" : "apply",
        serverAbsentMs: serving - stop.start,
        maxGapMs: Math.max(...reports.map((x) => Math.max(...Object.values(x.clients).map((g) => g.maxGapMs)))),
        load1: Number(os.loadavg()[0].toFixed(2)),
    };
}

/** What the cluster says about the pods of a failed update: pods, claims, the namespace's last events, the logs of pods not Ready. */
async function podDiagnostics(c: Cluster): Promise<string> {
    const out: string[] = [];
    out.push((await kubectl(c, ["get", "pods,pvc", "-n", NAMESPACE, "-o", "wide"])).stdout.trim());
    out.push((await kubectl(c, ["get", "pv", "-o", "wide"])).stdout.trim());
    const ev = (await kubectl(c, ["get", "events", "-n", NAMESPACE, "--sort-by=.lastTimestamp"])).stdout.trim().split("\n");
    out.push(ev.slice(-15).join("\n"));
    const pods = await kubectl(c, ["get", "pods", "-n", NAMESPACE, "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}`]);
    for (const line of pods.stdout.trim().split("\n")) {
        const [name, ready] = line.split(" ");
        if (name && ready !== "True") out.push(`logs of ${name}:\n${(await kubectl(c, ["logs", "-n", NAMESPACE, name, "-c", "zookeeper", "--tail=25"])).stdout.trim()}`);
    }
    return `the cluster:\n${out.join("\n")}`;
}

// ---------------------------------------------------------------------------------------------
// The pod fault

/** Removes the hostPath directories of the local cluster's volumes: a pod bound to one cannot mount its data. */
async function breakVolumes(c: Cluster): Promise<string[]> {
    const dir = join(c.dir, "volumes");
    const gone: string[] = [];
    for (const v of existsSync(dir) ? readdirSync(dir) : []) {
        rmSync(join(dir, v), { recursive: true, force: true });
        gone.push(v);
    }
    if (gone.length === 0) throw new Error(`pod-fault: no volume directory under ${dir}`);
    return gone;
}

/** The repair: the volumes' directories back, and the stuck pod deleted (its StatefulSet makes it again at once, no back-off). */
async function repair(r: Rehearsal, c: Cluster): Promise<void> {
    await ensureVolumes(c, VOLUMES, { size: STORAGE, storageClass: STORAGE_CLASS });
    const pods = JSON.parse(await kubectlMust(c, ["get", "pods", "-n", NAMESPACE, "-o", "json"])) as { items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[] };
    const stuck = pods.items.filter((p) => !p.status.conditions?.some((x) => x.type === "Ready" && x.status === "True")).map((p) => p.metadata.name);
    if (stuck.length > 0) await kubectlMust(c, ["delete", "pod", "-n", NAMESPACE, "--wait=false", ...stuck]);
    r.say(`rehearse: pod-fault: repaired: the volumes' directories are back; stuck pod(s) ${stuck.join(", ") || "none"} deleted for their StatefulSet to make again`);
}

/**
 * After the failed update: it stopped at the StatefulSet (its pod never Ready); the host of the
 * server is stopped, disabled and restorable (its myid and data kept); the other two serve.
 */
async function checkStopped(r: Rehearsal, first: PhaseReport, id: number): Promise<void> {
    const f: LocalFleet = r.fleet;
    const c = r.cluster!;
    const problems: string[] = [];
    if (first.result !== "failed") problems.push("the first pulumi up of the cutover succeeded although its pod cannot mount its volume");
    const failed = first.steps.filter((s) => s.failed).map((s) => s.name);
    if (failed.length !== 1 || !failed[0].endsWith("-statefulset")) problems.push(`expected the StatefulSet alone to fail, got: ${failed.join(", ") || "none"}`);
    const dec = stepOf(first, `-decommission-${id}`);
    if (!dec || dec.failed) problems.push(`the host of server ${id} was not stopped before its pod (decommission step: ${dec ? "failed" : "missing"})`);
    const others = first.steps.filter((s) => /-decommission-\d+$/.test(s.name) && !s.name.endsWith(`-${id}`)).map((s) => s.name);
    if (others.length > 0) problems.push(`other hosts stopped: ${others.join(", ")}`);
    // The pod: not Ready, and why (kubelet's event).
    const podName = `${BASE}-0`;
    const pod = await kubectl(c, ["get", "pod", podName, "-n", NAMESPACE, "-o", `jsonpath={.status.phase} {.status.conditions[?(@.type=="Ready")].status}`]);
    const events = await kubectl(c, ["get", "events", "-n", NAMESPACE, "--field-selector", `involvedObject.name=${podName}`, "-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}"]);
    const why = events.stdout.trim().split("\n").filter((l) => /Failed/.test(l)).pop() ?? "";
    if (/True$/.test(pod.stdout.trim())) problems.push(`pod ${podName} is Ready`);
    // The host: stopped, disabled, its myid and data in place (a `zk-service enable` + `start` restores it).
    const h = r.sources.find((x) => x.id === id)!;
    const status = await hostService(f, h, "status");
    if (status.code === 0) problems.push(`ZooKeeper still runs on ${h.name}`);
    const dataDir = f.hostSettings.paths.dataDir;
    const data = await runScript(f, h, `set -e\ncat '${f.hostSettings.paths.myidFile}'\nls '${dataDir}/version-2' | grep -c -E '^(log|snapshot)\\.'\ntest -e '${f.mountPoint}/run/disabled' && echo disabled\n`, { timeoutMs: 30_000 });
    const [myid, files, disabled] = data.stdout.trim().split("\n");
    if (data.code !== 0 || myid !== String(id) || !(Number(files) > 0) || disabled !== "disabled") {
        problems.push(`${h.name} is not stopped-but-restorable (myid ${myid ?? "?"}, ${files ?? "?"} data files, ${disabled ?? "not disabled"}): ${data.stderr.trim()}`);
    }
    // The ensemble: the other two serve, through their Services.
    const modes: Record<number, string> = {};
    for (const o of r.sources.filter((x) => x.id !== id)) {
        const ip = await resolveName(c, fqdn(o.id));
        modes[o.id] = parseMode(await fourLetterWord(ip, 2181, "srvr", 3000).catch(() => "")) ?? "down";
    }
    const serving = Object.values(modes).filter((m) => m === "leader" || m === "follower").length;
    if (serving !== 2) problems.push(`the ensemble does not serve on 2 of 3: ${JSON.stringify(modes)}`);
    if (problems.length > 0) throw new Error(`pod-fault: ${problems.join("; ")}`);
    const line = `pulumi up stopped at the StatefulSet (pod ${podName} ${pod.stdout.trim()}${why ? `; ${why.slice(0, 160)}` : ""}); ${h.name} stopped, disabled, myid ${myid} and ${files} data files kept; servers ${Object.entries(modes).map(([i, m]) => `${i} ${m}`).join(", ")}`;
    r.result.kubernetes!.faults.push(line);
    r.say(`rehearse: pod-fault: ${line}`);
}
