// A local single-node Kubernetes beside a local fleet (rehearsal/fleet.ts), for the kubernetes
// tests and rehearsal: no Docker, no systemd, no registry.
//
// - The node is a network namespace `zkk.<cluster>.node` attached to the fleet's bridge at
//   `<fleet prefix>.254`: etcd (Debian etcd-server), kube-apiserver, kube-controller-manager,
//   kube-scheduler, containerd (Debian) + kubelet (cgroupfs driver, cgroup v1) + the CNI bridge
//   plugin (Debian containernetworking-plugins) + kube-proxy (iptables mode) run there, started
//   with `nsenter --net` only: they keep the machine's mount namespace, so kubelet's volume
//   mounts are the ones runc sees. Every loopback port they use is the node's own loopback.
// - The Kubernetes binaries come from build.sh (Go modules, cached); the images (pause, ZooKeeper
//   from the fleet's jars and this machine's JRE) from image.ts, imported with `ctr images import`.
// - Service and pod ranges are derived from the cluster name (10.100-149.0.0/16 and
//   10.150-199.0.0/16); the fleet's hosts and the root namespace route both to the node, where
//   kube-proxy's rules are. dns.ts answers `<service>.<namespace>.svc.cluster.local` on the node's
//   address for the pods (kubelet's clusterDNS) and the fleet's hosts (their resolv.conf).
// - Kubelet's cgroups live under `/zkk.<cluster>` in every controller (its cgroupRoot), so the
//   cluster's pods are found and removed by that path; the kernel settings kubelet changes for the
//   whole machine (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops) are saved at start
//   and restored at stop.
//
// State: `<run root>/<cluster>.k8s/cluster.json` (run root as the fleet's: $ZKMIGRATE_RUN_DIR or
// /run/zkmigrate; a fleet name has no dot, so the two never collide). `stop` ends the cluster's
// processes by their recorded pids (checked against their command lines), its containers, mounts
// and cgroups, and keeps its data; `destroy` also removes the namespace, routes, the hosts'
// resolv.conf changes and the files, also after a failed start.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LocalFleet } from "../fleet";
import { killPids, pidAlive } from "../fleet/processes";
import { cacheDir, findCommand, sleep } from "../zookeeper";
import { pauseImage, zookeeperImage, type OciImage } from "./image";

export const KUBERNETES_VERSION = "v1.34.4";
export const CLUSTER_DOMAIN = "cluster.local";

export interface Cluster {
    name: string;
    fleet: string;
    dir: string;
    netns: string;
    /** The root-namespace end of the node's veth, a port of the fleet's bridge. */
    veth: string;
    /** The node's address on the fleet's network (API server, DNS, kubelet, route target). */
    address: string;
    serviceCidr: string;
    podCidr: string;
    /** `https://<address>:6443`. */
    server: string;
    kubeconfig: string;
    nodeName: string;
    cgroupRoot: string;
    /** Recorded pids by component. */
    pids: Record<string, number>;
    /** The machine-wide sysctls kubelet changes, as they were before the first start. */
    savedSysctls: Record<string, string>;
    /** Hosts' resolv.conf files changed at start, with their previous contents. */
    resolvConfs: Record<string, string>;
    /** `ip netns` of fleet hosts that got routes to the service and pod ranges. */
    hostRoutes: string[];
    /** Whether the root namespace got those routes. */
    rootRoutes: boolean;
    images: Record<string, OciImage>;
    createdAt: string;
}

const NAME = /^[a-z][a-z0-9-]{0,15}$/;
const SYSCTLS = ["vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops", "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes"];
/** Components in start order; stopped in reverse. */
const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet", "kube-proxy", "dns"] as const;
type Component = (typeof COMPONENTS)[number];

/** What each command comes from, for the message when it is missing. */
const PACKAGES: Record<string, string> = {
    etcd: "etcd-server",
    containerd: "containerd",
    ctr: "containerd",
    "containerd-shim-runc-v2": "containerd",
    runc: "runc",
    conntrack: "conntrack",
    iptables: "iptables",
    ip: "iproute2",
    nsenter: "util-linux",
    openssl: "openssl",
    findmnt: "util-linux",
    tar: "tar",
    ldd: "libc-bin",
};
const CNI_DIR = "/usr/lib/cni";
const CNI_PLUGINS = ["bridge", "host-local", "loopback", "portmap"];

function fail(what: string): never {
    throw new Error(`zkmigrate kubernetes cluster: ${what}`);
}

function runRoot(): string {
    const env = process.env.ZKMIGRATE_RUN_DIR;
    return env && env.length > 0 ? env : "/run/zkmigrate";
}

export function clusterDir(name: string): string {
    if (!NAME.test(name)) fail(`name ${JSON.stringify(name)} must match ${NAME} (it names a namespace and devices)`);
    return join(runRoot(), `${name}.k8s`);
}

/** The Kubernetes binaries built by build.sh. */
export function binDir(): string {
    return join(cacheDir(), "kubernetes", KUBERNETES_VERSION, "bin");
}

/** Service range, pod range and device names derived from the cluster name. */
export function clusterNetwork(name: string): { serviceCidr: string; podCidr: string; nodePodCidr: string; veth: string } {
    const h = createHash("sha256").update(`zkmigrate-kubernetes:${name}`).digest();
    const s = 100 + (h.readUInt16BE(0) % 50);
    const p = 150 + (h.readUInt16BE(2) % 50);
    return { serviceCidr: `10.${s}.0.0/16`, podCidr: `10.${p}.0.0/16`, nodePodCidr: `10.${p}.0.0/24`, veth: `zkk-${h.toString("hex").slice(0, 8)}` };
}

/** The first address of a range: the API server's ClusterIP (`kubernetes.default`). */
function firstAddress(cidr: string): string {
    const [a, b, c] = cidr.split("/")[0].split(".");
    return `${a}.${b}.${c}.1`;
}

// ---------------------------------------------------------------------------------------------
// Prerequisites

/** Everything the cluster needs; one error naming each missing piece and where it comes from. */
export function checkClusterPrerequisites(): Record<string, string> {
    const problems: string[] = [];
    if (typeof process.getuid === "function" && process.getuid() !== 0) problems.push("not root: namespaces, cgroups, mounts and iptables need root");
    const found: Record<string, string> = {};
    const missing = new Map<string, string[]>();
    for (const cmd of Object.keys(PACKAGES)) {
        const p = findCommand(cmd);
        if (p) found[cmd] = p;
        else missing.set(PACKAGES[cmd], [...(missing.get(PACKAGES[cmd]) ?? []), cmd]);
    }
    for (const plugin of CNI_PLUGINS) {
        if (!existsSync(join(CNI_DIR, plugin))) missing.set("containernetworking-plugins", [...(missing.get("containernetworking-plugins") ?? []), `${CNI_DIR}/${plugin}`]);
    }
    for (const [pkg, what] of missing) problems.push(`${what.join(", ")} not found: install the Debian package ${pkg} (apt-get install ${pkg}; tools/setup.sh does it)`);
    for (const b of ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "pause"]) {
        if (!existsSync(join(binDir(), b))) {
            problems.push(`${join(binDir(), b)} not found: build the Kubernetes ${KUBERNETES_VERSION} binaries with rehearsal/kubernetes/build.sh (tools/setup.sh runs it; about 650 CPU-seconds the first time)`);
            break;
        }
    }
    if (!existsSync("/sys/fs/cgroup/memory") || existsSync("/sys/fs/cgroup/cgroup.controllers")) {
        problems.push("this cluster runs kubelet with the cgroupfs driver on cgroup v1 (/sys/fs/cgroup/<controller>): not found here");
    }
    if (problems.length > 0) fail(`cannot run a local Kubernetes here:\n  - ${problems.join("\n  - ")}`);
    return found;
}

// ---------------------------------------------------------------------------------------------
// Process helpers

interface Run {
    code: number;
    stdout: string;
    stderr: string;
}

function run(cmd: string, args: string[], o: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
    return new Promise((resolve) => {
        const child = execFile(cmd, args, { timeout: o.timeoutMs ?? 30_000, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, env: o.env ?? process.env }, (err, stdout, stderr) => {
            const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
            let code = 0;
            if (e) code = typeof e.code === "number" ? e.code : e.killed ? 124 : 127;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) + (e && typeof e.code === "string" ? e.message : "") + (e?.killed ? " (timed out)" : "") });
        });
        if (o.input !== undefined) child.stdin?.end(o.input);
    });
}

async function must(cmd: string, args: string[], what: string, timeoutMs = 30_000): Promise<string> {
    const r = await run(cmd, args, { timeoutMs });
    if (r.code !== 0) fail(`${what} failed (${cmd} ${args.join(" ")}: exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
}

function cmdline(pid: number): string {
    try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
        return "";
    }
}

/** Whether `pid` is still the component we started: its command line names the cluster's dir. */
function isOurs(c: Cluster, pid: number | undefined): pid is number {
    return pid !== undefined && pidAlive(pid) && cmdline(pid).includes(c.dir);
}

/** Polls `check` every 250 ms until it is true or `timeoutMs` passed; the error says what was awaited. */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean, detail?: () => string): Promise<number> {
    const t0 = Date.now();
    for (;;) {
        if (await check()) return Date.now() - t0;
        if (Date.now() - t0 > timeoutMs) fail(`${what}: not within ${Math.round(timeoutMs / 1000)} s${detail ? `\n${detail()}` : ""}`);
        await sleep(250);
    }
}

function logTail(c: Cluster, component: string, lines = 15): string {
    try {
        return readFileSync(join(c.dir, "logs", `${component}.log`), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

// ---------------------------------------------------------------------------------------------
// State

export function loadCluster(name: string): Cluster | undefined {
    const file = join(clusterDir(name), "cluster.json");
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Cluster) : undefined;
}

function saveCluster(c: Cluster): void {
    writeFileSync(join(c.dir, "cluster.json.tmp"), `${JSON.stringify(c, null, 2)}\n`);
    // renamed: a reader never sees half a file
    renameSync(join(c.dir, "cluster.json.tmp"), join(c.dir, "cluster.json"));
}

/** kubectl against the cluster (from the root namespace: the node's address is on the fleet's bridge). */
export function kubectl(c: Cluster, args: string[], o: { input?: string; timeoutMs?: number } = {}): Promise<Run> {
    return run(join(binDir(), "kubectl"), ["--kubeconfig", c.kubeconfig, "--request-timeout=20s", ...args], { input: o.input, timeoutMs: o.timeoutMs ?? 60_000 });
}

/** kubectl that must succeed; returns stdout. */
export async function kubectlMust(c: Cluster, args: string[], o: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const r = await kubectl(c, args, o);
    if (r.code !== 0) fail(`kubectl ${args.join(" ")} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
}

// ---------------------------------------------------------------------------------------------
// Files: PKI and configuration

async function writePki(c: Cluster, openssl: string): Promise<void> {
    const p = join(c.dir, "pki");
    if (existsSync(join(p, "admin.crt"))) return;
    mkdirSync(p, { recursive: true });
    const ssl = (args: string[], what: string) => must(openssl, args, `openssl (${what})`);
    await ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(p, "ca.key"), "-out", join(p, "ca.crt"), "-days", "30", "-subj", `/CN=zkmigrate-${c.name}-ca`], "CA");
    const sans = [
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        `DNS:kubernetes.default.svc.${CLUSTER_DOMAIN}`,
        "DNS:localhost",
        "IP:127.0.0.1",
        `IP:${firstAddress(c.serviceCidr)}`,
        `IP:${c.address}`,
    ];
    const leaf = async (name: string, subject: string, ext: string) => {
        writeFileSync(join(p, `${name}.ext`), ext);
        await ssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", join(p, `${name}.key`), "-out", join(p, `${name}.csr`), "-subj", subject], `${name} request`);
        await ssl(["x509", "-req", "-in", join(p, `${name}.csr`), "-CA", join(p, "ca.crt"), "-CAkey", join(p, "ca.key"), "-CAcreateserial", "-out", join(p, `${name}.crt`), "-days", "30", "-extfile", join(p, `${name}.ext`)], `${name} certificate`);
    };
    await leaf("apiserver", "/CN=kube-apiserver", `subjectAltName=${sans.join(",")}\nextendedKeyUsage=serverAuth\n`);
    // One client identity for every component (system:masters): a throwaway single-node cluster.
    await leaf("admin", "/O=system:masters/CN=admin", "extendedKeyUsage=clientAuth\n");
    await ssl(["genrsa", "-out", join(p, "sa.key"), "2048"], "service account key");
    await ssl(["rsa", "-in", join(p, "sa.key"), "-pubout", "-out", join(p, "sa.pub")], "service account public key");
}

function writeConfigs(c: Cluster, tools: Record<string, string>): void {
    const d = c.dir;
    const pki = join(d, "pki");
    for (const sub of ["logs", "etcd", "containerd", "kubelet", "cni/net.d", "cni/ipam", "pod-logs", "volumes"]) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(
        c.kubeconfig,
        [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            `- name: ${c.name}`,
            `  cluster: {certificate-authority: ${pki}/ca.crt, server: "${c.server}"}`,
            "users:",
            "- name: admin",
            `  user: {client-certificate: ${pki}/admin.crt, client-key: ${pki}/admin.key}`,
            "contexts:",
            `- name: ${c.name}`,
            `  context: {cluster: ${c.name}, user: admin}`,
            `current-context: ${c.name}`,
            "",
        ].join("\n"),
    );
    const net = clusterNetwork(c.name);
    writeFileSync(
        join(d, "containerd", "config.toml"),
        `# containerd of the zkmigrate local cluster ${c.name}: everything under ${d}
version = 2
root = "${d}/containerd/root"
state = "${d}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${d}/containerd/containerd.sock"
[ttrpc]
  address = "${d}/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${d}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.local/pause:1"
  enable_selinux = false
  # No process here has CAP_SYS_RESOURCE: a negative oom_score_adj (the sandbox's -998) makes runc fail.
  restrict_oom_score_adj = true
  # Pods' network namespaces under the state dir, not /run/netns beside the fleet's.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "${tools.runc}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_DIR}"
    conf_dir = "${d}/cni/net.d"
`,
    );
    writeFileSync(
        join(d, "cni", "net.d", "10-pods.conflist"),
        JSON.stringify(
            {
                cniVersion: "0.4.0",
                name: `zkk-${c.name}`,
                plugins: [
                    {
                        type: "bridge",
                        bridge: "cni0",
                        isGateway: true,
                        ipMasq: true,
                        hairpinMode: true,
                        ipam: { type: "host-local", dataDir: join(d, "cni", "ipam"), ranges: [[{ subnet: net.nodePodCidr }]], routes: [{ dst: "0.0.0.0/0" }] },
                    },
                    { type: "portmap", capabilities: { portMappings: true } },
                ],
            },
            null,
            2,
        ),
    );
    writeFileSync(join(d, "resolv.conf"), `nameserver ${c.address}\noptions timeout:1 attempts:2\n`);
    writeFileSync(
        join(d, "kubelet-config.yaml"),
        `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: ${c.cgroupRoot}
# This machine has cgroup v1 and swap settings kubelet would refuse by default.
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://${d}/containerd/containerd.sock
podLogsDir: ${d}/pod-logs
resolvConf: ${d}/resolv.conf
clusterDomain: ${CLUSTER_DOMAIN}
clusterDNS: [${c.address}]
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${pki}/ca.crt}
authorization: {mode: Webhook}
address: ${c.address}
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
serializeImagePulls: false
`,
    );
    writeFileSync(
        join(d, "kube-proxy-config.yaml"),
        `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${c.kubeconfig}}
mode: iptables
clusterCIDR: ${c.podCidr}
hostnameOverride: ${c.nodeName}
bindAddress: ${c.address}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# 0: leave the machine's conntrack table size and timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
`,
    );
}

// ---------------------------------------------------------------------------------------------
// Network

async function ensureNetwork(c: Cluster, f: LocalFleet): Promise<void> {
    const nsList = (await run("ip", ["netns", "list"])).stdout;
    if (!nsList.split("\n").some((l) => l.split(" ")[0] === c.netns)) {
        await must("ip", ["netns", "add", c.netns], "creating the node's namespace");
    }
    const inNode = (args: string[], what: string) => must("ip", ["-n", c.netns, ...args], what);
    await inNode(["link", "set", "lo", "up"], "lo up");
    if ((await run("ip", ["link", "show", "dev", c.veth])).code !== 0) {
        await must("ip", ["link", "add", c.veth, "type", "veth", "peer", "name", "eth0", "netns", c.netns], "creating the node's veth");
        await must("ip", ["link", "set", c.veth, "alias", `zkmigrate-kubernetes:${c.name}`], "tagging the veth");
    }
    await must("ip", ["link", "set", c.veth, "master", f.bridge, "up"], "attaching the node to the fleet's bridge");
    await run("ip", ["-n", c.netns, "addr", "add", `${c.address}/24`, "dev", "eth0"]);
    await inNode(["link", "set", "eth0", "up"], "eth0 up");
    // Locally originated traffic to ClusterIPs needs a route before kube-proxy's DNAT applies.
    await inNode(["route", "replace", c.serviceCidr, "dev", "eth0"], "the node's route to the service range");
    for (const s of ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0"]) {
        await must("ip", ["netns", "exec", c.netns, "sysctl", "-qw", s], `sysctl ${s} in the node`);
    }
    // The fleet's hosts and the root namespace reach Services and pods through the node.
    for (const h of f.hosts) {
        for (const cidr of [c.serviceCidr, c.podCidr]) await must("ip", ["-n", h.netns, "route", "replace", cidr, "via", c.address], `route ${cidr} on ${h.name}`);
        if (!c.hostRoutes.includes(h.netns)) c.hostRoutes.push(h.netns);
    }
    for (const cidr of [c.serviceCidr, c.podCidr]) await must("ip", ["route", "replace", cidr, "via", c.address, "dev", f.bridge], `route ${cidr} in the root namespace`);
    c.rootRoutes = true;
}

/** Points the fleet's hosts at the cluster's DNS (their resolv.conf is a file of the fleet, bind-mounted: written in place). */
function ensureHostDns(c: Cluster, f: LocalFleet): void {
    for (const h of f.hosts) {
        const file = join(h.dir, "etc", "resolv.conf");
        if (!existsSync(file)) continue;
        const now = readFileSync(file, "utf8");
        if (!(file in c.resolvConfs)) c.resolvConfs[file] = now;
        const want = `# zkmigrate local cluster ${c.name}: the cluster domain's DNS\nnameserver ${c.address}\nsearch svc.${CLUSTER_DOMAIN} ${CLUSTER_DOMAIN}\noptions timeout:1 attempts:2\n`;
        if (now !== want) writeFileSync(file, want);
    }
}

// ---------------------------------------------------------------------------------------------
// cgroups and sysctls

function cgroupControllers(): string[] {
    return readdirSync("/sys/fs/cgroup")
        .map((d) => join("/sys/fs/cgroup", d))
        .filter((d) => existsSync(join(d, "cgroup.procs")));
}

function ensureCgroupRoot(c: Cluster): void {
    for (const ctl of cgroupControllers()) {
        const dir = join(ctl, c.cgroupRoot);
        mkdirSync(dir, { recursive: true });
        // A new cpuset has no cpus or mems: nothing could run in it until they are set.
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
            if (existsSync(join(dir, f)) && readFileSync(join(dir, f), "utf8").trim() === "") writeFileSync(join(dir, f), readFileSync(join(ctl, f), "utf8"));
        }
    }
}

/** Pids of every process in the cluster's cgroups (its pods' containers). */
function cgroupPids(c: Cluster): number[] {
    const pids = new Set<number>();
    const walk = (dir: string) => {
        if (!existsSync(dir)) return;
        try {
            for (const p of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n")) if (/^\d+$/.test(p)) pids.add(Number(p));
            for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
        } catch {
            /* removed meanwhile */
        }
    };
    for (const ctl of cgroupControllers()) walk(join(ctl, c.cgroupRoot));
    return [...pids];
}

function removeCgroups(c: Cluster): string[] {
    const left: string[] = [];
    const rm = (dir: string) => {
        if (!existsSync(dir)) return;
        for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(join(dir, e.name));
        try {
            rmdirSync(dir);
        } catch {
            left.push(dir);
        }
    };
    for (const ctl of cgroupControllers()) rm(join(ctl, c.cgroupRoot));
    return left;
}

async function saveSysctls(c: Cluster): Promise<void> {
    if (Object.keys(c.savedSysctls).length > 0) return;
    for (const s of SYSCTLS) {
        const r = await run("sysctl", ["-n", s]);
        if (r.code === 0) c.savedSysctls[s] = r.stdout.trim();
    }
}

async function restoreSysctls(c: Cluster): Promise<void> {
    for (const [k, v] of Object.entries(c.savedSysctls)) await run("sysctl", ["-qw", `${k}=${v}`]);
}

// ---------------------------------------------------------------------------------------------
// Start

function startComponent(c: Cluster, component: Component, argv: string[]): void {
    if (isOurs(c, c.pids[component])) return;
    const log = join(c.dir, "logs", `${component}.log`);
    appendFileSync(log, `--- ${new Date().toISOString()} starting ${argv.join(" ")}\n`);
    const fd = openSync(log, "a");
    // nsenter --net only (no --mount): the machine's mount namespace, which kubelet and runc share.
    // cwd: the repo, where `--import tsx` of the DNS resolves.
    const child = spawn("nsenter", [`--net=/run/netns/${c.netns}`, "--", ...argv], { detached: true, stdio: ["ignore", fd, fd], cwd: join(__dirname, "..", "..") });
    closeSync(fd);
    child.unref();
    if (child.pid === undefined) fail(`${component} did not start`);
    c.pids[component] = child.pid;
    saveCluster(c);
}

export interface StartOptions {
    /** The fleet the cluster joins (its bridge, hosts). */
    fleet: LocalFleet;
    /** ZooKeeper version of the image k8s.local/zookeeper (default: the fleet's default). */
    zookeeperVersion?: string;
    log?: (line: string) => void;
}

/**
 * Starts the cluster (or the parts of it that do not run) beside `fleet`; returns once the node is
 * Ready, the `default` ServiceAccount exists and the images are imported. Idempotent.
 */
export async function startCluster(name: string, o: StartOptions): Promise<Cluster> {
    const say = o.log ?? (() => undefined);
    const tools = checkClusterPrerequisites();
    const dir = clusterDir(name);
    const f = o.fleet;
    const net = clusterNetwork(name);
    let c = loadCluster(name);
    if (c && c.fleet !== f.name) fail(`cluster ${name} exists beside fleet ${c.fleet}, not ${f.name}: destroy it first`);
    if (!c) {
        mkdirSync(dir, { recursive: true });
        c = {
            name,
            fleet: f.name,
            dir,
            netns: `zkk.${name}.node`,
            veth: net.veth,
            address: `${f.bridgeAddress.split(".").slice(0, 3).join(".")}.254`,
            serviceCidr: net.serviceCidr,
            podCidr: net.podCidr,
            server: "",
            kubeconfig: join(dir, "admin.kubeconfig"),
            nodeName: `${name}-node`,
            cgroupRoot: `/zkk.${name}`,
            pids: {},
            savedSysctls: {},
            resolvConfs: {},
            hostRoutes: [],
            rootRoutes: false,
            images: {},
            createdAt: new Date().toISOString(),
        };
        c.server = `https://${c.address}:6443`;
        saveCluster(c);
    }
    const t0 = Date.now();
    const stage = (what: string) => say(`${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    await saveSysctls(c);
    saveCluster(c);
    await ensureNetwork(c, f);
    saveCluster(c);
    await writePki(c, tools.openssl);
    writeConfigs(c, tools);
    ensureCgroupRoot(c);
    stage("network, certificates and configuration ready");

    const bin = (b: string) => join(binDir(), b);
    const pki = join(dir, "pki");
    const kubeconfigFlags = [`--kubeconfig=${c.kubeconfig}`, `--authentication-kubeconfig=${c.kubeconfig}`, `--authorization-kubeconfig=${c.kubeconfig}`];
    const tcp = (port: number) => async () => (await run("nsenter", [`--net=/run/netns/${c!.netns}`, "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`], { timeoutMs: 3000 })).code === 0;

    startComponent(c, "etcd", [
        tools.etcd,
        "--name=node",
        `--data-dir=${dir}/etcd`,
        "--listen-client-urls=http://127.0.0.1:2379",
        "--advertise-client-urls=http://127.0.0.1:2379",
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380",
        "--initial-cluster=node=http://127.0.0.1:2380",
    ]);
    await waitFor("etcd listening", 30_000, tcp(2379), () => logTail(c!, "etcd"));
    startComponent(c, "kube-apiserver", [
        bin("kube-apiserver"),
        "--etcd-servers=http://127.0.0.1:2379",
        `--service-cluster-ip-range=${c.serviceCidr}`,
        "--secure-port=6443",
        "--bind-address=0.0.0.0",
        `--advertise-address=${c.address}`,
        `--tls-cert-file=${pki}/apiserver.crt`,
        `--tls-private-key-file=${pki}/apiserver.key`,
        `--client-ca-file=${pki}/ca.crt`,
        `--service-account-key-file=${pki}/sa.pub`,
        `--service-account-signing-key-file=${pki}/sa.key`,
        "--service-account-issuer=https://kubernetes.default.svc",
        "--authorization-mode=Node,RBAC",
        // No DNS for node names: logs and exec reach kubelet by its address.
        "--kubelet-preferred-address-types=InternalIP",
        `--kubelet-client-certificate=${pki}/admin.crt`,
        `--kubelet-client-key=${pki}/admin.key`,
        "--allow-privileged=true",
        "--profiling=false",
    ]);
    await waitFor("kube-apiserver ready", 120_000, async () => (await kubectl(c!, ["get", "--raw", "/readyz"], { timeoutMs: 10_000 })).code === 0, () => logTail(c!, "kube-apiserver"));
    stage("API server ready");
    startComponent(c, "kube-controller-manager", [
        bin("kube-controller-manager"),
        ...kubeconfigFlags,
        `--service-account-private-key-file=${pki}/sa.key`,
        `--root-ca-file=${pki}/ca.crt`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        "--use-service-account-credentials=false",
        "--controllers=*,-nodeipam,-cloud-node-lifecycle",
    ]);
    startComponent(c, "kube-scheduler", [bin("kube-scheduler"), ...kubeconfigFlags, "--leader-elect=false", "--bind-address=127.0.0.1"]);

    const sock = join(dir, "containerd", "containerd.sock");
    startComponent(c, "containerd", [tools.containerd, "--config", join(dir, "containerd", "config.toml")]);
    await waitFor("containerd answering", 30_000, async () => (await run(tools.ctr, ["--address", sock, "version"], { timeoutMs: 5000 })).code === 0, () => logTail(c!, "containerd"));
    const images = [await pauseImage(bin("pause")), await zookeeperImage(o.zookeeperVersion)];
    const present = (await must(tools.ctr, ["--address", sock, "-n", "k8s.io", "images", "ls", "-q"], "listing images")).split("\n");
    for (const img of images) {
        c.images[img.name.split("/")[1].split(":")[0]] = img;
        // Also by digest (`<repository>@sha256:...`), which is how kubelet asks for an image pinned
        // by digest: without that name containerd would try to pull it from a registry.
        const byDigest = `${img.name.split(":")[0]}@${img.digest}`;
        if (present.includes(byDigest)) continue;
        await must(tools.ctr, ["--address", sock, "-n", "k8s.io", "images", "import", img.archive], `importing ${img.name}`, 300_000);
        await must(tools.ctr, ["--address", sock, "-n", "k8s.io", "images", "tag", "--force", img.name, byDigest], `naming ${img.name} by its digest`);
    }
    saveCluster(c);
    stage("containerd running, images imported");

    startComponent(c, "kubelet", [
        bin("kubelet"),
        `--config=${dir}/kubelet-config.yaml`,
        `--kubeconfig=${c.kubeconfig}`,
        `--root-dir=${dir}/kubelet`,
        `--cert-dir=${dir}/kubelet/pki`,
        `--hostname-override=${c.nodeName}`,
        `--node-ip=${c.address}`,
        "--v=1",
    ]);
    startComponent(c, "kube-proxy", [bin("kube-proxy"), `--config=${dir}/kube-proxy-config.yaml`, "--v=1"]);
    startComponent(c, "dns", [process.execPath, "--import", "tsx", join(__dirname, "dns.ts"), c.address, CLUSTER_DOMAIN, c.server, pki]);
    ensureHostDns(c, f);
    saveCluster(c);
    await waitFor(
        `node ${c.nodeName} Ready`,
        120_000,
        async () => {
            const r = await kubectl(c!, ["get", "node", c!.nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`], { timeoutMs: 10_000 });
            return r.code === 0 && r.stdout.trim() === "True";
        },
        () => logTail(c!, "kubelet"),
    );
    await waitFor("the default ServiceAccount", 60_000, async () => (await kubectl(c!, ["get", "serviceaccount", "default", "-n", "default"], { timeoutMs: 10_000 })).code === 0, () => logTail(c!, "kube-controller-manager"));
    stage(`node ${c.nodeName} Ready`);
    return c;
}

// ---------------------------------------------------------------------------------------------
// Volumes for StatefulSet claims (no provisioner in this cluster)

/**
 * PersistentVolumes `<cluster>-vol-<i>` (hostPath under the cluster's dir, owned by `uid`). Enough
 * for `count` claims of up to `size`. Without `storageClass` they have no class and claims without
 * one bind to them at once. With it, a StorageClass of that name (no provisioner,
 * `WaitForFirstConsumer`, as for local volumes) is made too and the volumes belong to it: a claim
 * of that class is bound by the scheduler when it places the claim's pod. (A claim bound at once
 * can leave a StatefulSet's pod Pending for minutes: the scheduler found it unbound and waits up
 * to 5 minutes before trying again.)
 */
export async function ensureVolumes(c: Cluster, count: number, o: { size?: string; uid?: number; storageClass?: string } = {}): Promise<void> {
    const docs: string[] = [];
    if (o.storageClass !== undefined) {
        docs.push(
            JSON.stringify({
                apiVersion: "storage.k8s.io/v1",
                kind: "StorageClass",
                metadata: { name: o.storageClass, labels: { "zkmigrate/cluster": c.name } },
                provisioner: "kubernetes.io/no-provisioner",
                volumeBindingMode: "WaitForFirstConsumer",
                reclaimPolicy: "Retain",
            }),
        );
    }
    for (let i = 0; i < count; i++) {
        const path = join(c.dir, "volumes", `vol-${i}`);
        mkdirSync(path, { recursive: true });
        await must("chown", [`${o.uid ?? 1000}:${o.uid ?? 1000}`, path], "chown of a volume");
        docs.push(
            JSON.stringify({
                apiVersion: "v1",
                kind: "PersistentVolume",
                metadata: { name: `${c.name}-vol-${i}`, labels: { "zkmigrate/cluster": c.name } },
                spec: { capacity: { storage: o.size ?? "10Gi" }, accessModes: ["ReadWriteOnce"], persistentVolumeReclaimPolicy: "Retain", storageClassName: o.storageClass ?? "", hostPath: { path, type: "Directory" } },
            }),
        );
    }
    await kubectlMust(c, ["apply", "-f", "-"], { input: `{"apiVersion":"v1","kind":"List","items":[${docs.join(",")}]}` });
}

// ---------------------------------------------------------------------------------------------
// Stop and destroy

/** Mounts under the cluster's dir (pods' volumes, containerd's rootfs and netns), deepest first. */
async function unmountAll(c: Cluster): Promise<string[]> {
    const left: string[] = [];
    for (let round = 0; round < 3; round++) {
        const r = await run("findmnt", ["-rn", "-o", "TARGET"]);
        const mine = r.stdout
            .split("\n")
            .map((m) => m.replace(/\\x20/g, " "))
            .filter((m) => m.startsWith(`${c.dir}/`))
            .sort()
            .reverse();
        if (mine.length === 0) return [];
        left.length = 0;
        for (const m of mine) {
            if ((await run("umount", [m])).code !== 0 && (await run("umount", ["-l", m])).code !== 0) left.push(m);
        }
    }
    return left;
}

/**
 * Stops the cluster's processes and containers and removes its mounts and cgroups; keeps its data,
 * network and files (a later start resumes). Restores the sysctls kubelet changed.
 */
export async function stopCluster(name: string, o: { log?: (line: string) => void } = {}): Promise<string[]> {
    const say = o.log ?? (() => undefined);
    const c = loadCluster(name);
    if (!c) return [];
    const problems: string[] = [];
    const ctr = findCommand("ctr");
    const sock = join(c.dir, "containerd", "containerd.sock");
    // 1. Pods first, while kubelet runs: it stops the sandboxes and releases their network.
    if (isOurs(c, c.pids["kube-apiserver"]) && isOurs(c, c.pids.kubelet)) {
        await kubectl(c, ["delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=false"], { timeoutMs: 20_000 });
        const t0 = Date.now();
        while (ctr && Date.now() - t0 < 30_000) {
            const r = await run(ctr, ["--address", sock, "-n", "k8s.io", "tasks", "ls", "-q"], { timeoutMs: 5000 });
            // Pods come back from their StatefulSet, but only their sandboxes matter here.
            if (r.code !== 0 || r.stdout.trim() === "") break;
            await sleep(500);
        }
    }
    const stop = async (component: Component, graceMs: number) => {
        const pid = c.pids[component];
        if (isOurs(c, pid)) {
            say(`stopping ${component} (pid ${pid})`);
            await killPids([pid], graceMs).catch((e) => problems.push((e as Error).message));
        }
        delete c.pids[component];
    };
    for (const comp of ["dns", "kube-proxy", "kubelet"] as const) await stop(comp, 10_000);
    // 2. Containers left (their processes are in the cluster's cgroups), then containerd and its shims.
    if (ctr && isOurs(c, c.pids.containerd)) {
        const C = (args: string[]) => run(ctr, ["--address", sock, "-n", "k8s.io", ...args], { timeoutMs: 10_000 });
        for (const t of (await C(["tasks", "ls", "-q"])).stdout.split("\n").filter(Boolean)) await C(["tasks", "kill", "-s", "KILL", t]);
        await sleep(500);
        for (const t of (await C(["tasks", "ls", "-q"])).stdout.split("\n").filter(Boolean)) await C(["tasks", "delete", "-f", t]);
        for (const x of (await C(["containers", "ls", "-q"])).stdout.split("\n").filter(Boolean)) await C(["containers", "delete", x]);
    }
    const inPods = cgroupPids(c);
    if (inPods.length > 0) {
        say(`killing ${inPods.length} process(es) of the cluster's pods`);
        await killPids(inPods, 2000).catch((e) => problems.push((e as Error).message));
    }
    await stop("containerd", 10_000);
    const shims: number[] = [];
    for (const e of readdirSync("/proc")) {
        if (/^\d+$/.test(e) && cmdline(Number(e)).includes(`-address ${sock}`)) shims.push(Number(e));
    }
    if (shims.length > 0) {
        say(`killing ${shims.length} containerd shim(s)`);
        await killPids(shims, 2000).catch((err) => problems.push((err as Error).message));
    }
    for (const comp of ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"] as const) await stop(comp, 10_000);
    saveCluster(c);
    // 3. Mounts, cgroups, sysctls.
    const mounts = await unmountAll(c);
    if (mounts.length > 0) problems.push(`mounts left: ${mounts.join(", ")}`);
    const cgroups = removeCgroups(c);
    if (cgroups.length > 0) problems.push(`cgroups left: ${cgroups.join(", ")}`);
    await restoreSysctls(c);
    return problems;
}

/** Stops the cluster and removes all of it: namespace, routes, the hosts' DNS setting, files. Safe to run twice. */
export async function destroyCluster(name: string, o: { log?: (line: string) => void } = {}): Promise<void> {
    const say = o.log ?? (() => undefined);
    const dir = clusterDir(name);
    const c = loadCluster(name);
    const problems = await stopCluster(name, o);
    const net = clusterNetwork(name);
    const netns = c?.netns ?? `zkk.${name}.node`;
    // Whatever still runs in the node's namespace (only the cluster's own processes run there).
    const left = (await run("ip", ["netns", "pids", netns])).stdout.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number);
    if (left.length > 0) await killPids(left, 5000).catch((e) => problems.push((e as Error).message));
    if (c) {
        for (const [file, content] of Object.entries(c.resolvConfs)) if (existsSync(file)) writeFileSync(file, content);
        for (const ns of c.hostRoutes) for (const cidr of [c.serviceCidr, c.podCidr]) await run("ip", ["-n", ns, "route", "del", cidr, "via", c.address]);
        if (c.rootRoutes) for (const cidr of [c.serviceCidr, c.podCidr]) await run("ip", ["route", "del", cidr, "via", c.address]);
    }
    if ((await run("ip", ["netns", "list"])).stdout.split("\n").some((l) => l.split(" ")[0] === netns)) {
        say(`removing namespace ${netns}`);
        const r = await run("ip", ["netns", "del", netns]);
        if (r.code !== 0) problems.push(`removing namespace ${netns}: ${r.stderr.trim()}`);
    }
    // The veth goes with the namespace; a half-made one may be left in the root namespace.
    const link = await run("ip", ["-d", "-j", "link", "show", "dev", net.veth]);
    if (link.code === 0 && (JSON.parse(link.stdout) as { ifalias?: string }[])[0]?.ifalias === `zkmigrate-kubernetes:${name}`) await run("ip", ["link", "del", net.veth]);
    if (existsSync(dir)) {
        const mounts = await unmountAll({ dir } as Cluster);
        if (mounts.length > 0) problems.push(`mounts left under ${dir}: ${mounts.join(", ")}`);
        else rmSync(dir, { recursive: true, force: true });
    }
    if (problems.length > 0) fail(`destroy of ${name} left problems:\n  - ${problems.join("\n  - ")}`);
}
