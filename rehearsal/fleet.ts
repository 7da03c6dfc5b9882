// The local fleet: ZooKeeper "hosts" on one Linux machine, for rehearsals and integration tests.
//
// Each host is a network namespace with its own address on a bridge in a private /24 the fleet
// owns, its own sshd (root login by a per-fleet key only; host keys generated per host and pinned
// in the fleet's known_hosts), its own iptables (a namespace has its own netfilter tables), and
// ZooKeeper of the version chosen per ensemble, run by a small service script (no systemd, no
// Docker). The sshd of a host also runs in its own mount and UTS namespaces, where the host's
// directory is bind-mounted at one path that is the same on every host (`<fleet dir>/host`) and
// the host name is the host's: so every host has the same HostSettings, as the stack config
// expects of an ensemble, and the scripts rendered by src/scripts run over SSH unchanged.
//
// State lives in `<run root>/<fleet>/fleet.json` (run root: $ZKMIGRATE_RUN_DIR or /run/zkmigrate),
// where another process finds the fleet. `destroy` kills only the fleet's own processes, by the
// pids it recorded (and whatever else runs inside its own namespaces), and removes its
// namespaces, bridge, root-namespace iptables rules and files.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { asRemoteCommand } from "../src/scripts";
import type { HostSettings, KafkaSettings } from "../src/types";
import { KAFKA_PORT, KAFKA_TOOLS, ensureKafka, kafkaServiceScript, log4jProperties, serverProperties, toolScript, DEFAULT_KAFKA_VERSION } from "./kafka";
import {
    DEBIAN_PACKAGES,
    JVM_OPTIONS,
    MAIN_CLASS,
    baseSettings,
    ensureZooKeeper,
    findCommand,
    fourLetter,
    modeOf,
    renderSettings,
    resolveVersion,
    sleep,
} from "./zookeeper";

// ---------------------------------------------------------------------------------------------
// Types

export interface FleetEnsembleSpec {
    /** A label: host names are `<name>-<myid>`. */
    name: string;
    /** Number of servers. */
    servers: number;
    /** myid of the first server; the others follow. Default: after the previous ensemble's. */
    firstId?: number;
    /** ZooKeeper version (x.y.z or a line such as "3.8"); default: the fleet's. */
    version?: string;
    /** Start the servers at create and wait until they serve (default true). */
    start?: boolean;
}

export interface FleetSpec {
    /** [a-z][a-z0-9-]*, at most 24 characters. */
    name: string;
    ensembles: FleetEnsembleSpec[];
    /** Default ZooKeeper version of the ensembles (default: the newest 3.9). */
    version?: string;
    /** healthTimeoutSeconds of the fleet's HostSettings (default 60). */
    healthTimeoutSeconds?: number;
    /** JVM options after the defaults (a later -Xmx wins), e.g. ["-Xmx1g"] for large trees. */
    zkJvmOptions?: string[];
    /** Kafka brokers (ZooKeeper mode) on hosts of their own, started on one of the ensembles. */
    kafka?: FleetKafkaSpec;
}

export interface FleetKafkaSpec {
    /** Number of brokers; hosts are `kafka-<broker.id>`. */
    brokers: number;
    /** broker.id of the first broker (default 1). */
    firstId?: number;
    /** The ensemble whose servers the brokers' zookeeper.connect lists (it must start at create). */
    zookeeper: string;
    /** The chroot of that connect string (Kafka creates it). */
    chroot?: string;
    /** Kafka version (3.x.y; default the newest 3.9). */
    version?: string;
}

export interface FleetHost {
    /** `<ensemble>-<myid>`; also the host's host name (`uname -n` over SSH). */
    name: string;
    ensemble: string;
    id: number;
    version: string;
    netns: string;
    /** The root-namespace end of the host's veth (the host's end is eth0). */
    veth: string;
    address: string;
    /** The host's directory as seen from the root namespace (conf/, data/, logs/, run/, bin/, ssh/). */
    dir: string;
    sshdConfig: string;
    /** sshd's pid (root namespace), recorded at create. */
    sshdPid?: number;
    /** ZooKeeper's pid file, as seen from the root namespace. */
    zkPidFile: string;
    /** ZooKeeper's pid recorded at create (it changes with every restart; the pid file is current). */
    zkPid?: number;
    /** "kafka" for a broker host (id is then its broker.id, zkPidFile the broker's pid file); else ZooKeeper. */
    kind?: "kafka";
}

export interface Fleet {
    name: string;
    /** The fleet's directory (state, keys, hosts). */
    dir: string;
    stateFile: string;
    subnet: string;
    bridge: string;
    /** The bridge's address in the root namespace (the hosts' default gateway). */
    bridgeAddress: string;
    /** Where each host sees its own directory (in its own mount namespace). */
    mountPoint: string;
    sshKey: string;
    sshPublicKey: string;
    knownHosts: string;
    sshUser: string;
    /** The same for every host: paths and service commands as the host sees them. */
    hostSettings: HostSettings;
    /** Rules added to the root namespace's filter table (iptables arguments after -A/-D). */
    rootRules: string[][];
    /** The brokers' install as every broker host sees it (when the fleet has Kafka). */
    kafkaSettings?: KafkaSettings;
    hosts: FleetHost[];
    spec: FleetSpec;
    createdAt: string;
}

export interface ScriptResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
    timedOut: boolean;
}

// ---------------------------------------------------------------------------------------------
// Names

const NAME = /^[a-z][a-z0-9-]{0,23}$/;
const ENSEMBLE = /^[a-z][a-z0-9]{0,11}$/;

/** The root of all fleets' directories: $ZKMIGRATE_RUN_DIR or /run/zkmigrate. */
export function runRoot(): string {
    const env = process.env.ZKMIGRATE_RUN_DIR;
    return env && env.length > 0 ? env : "/run/zkmigrate";
}

export function fleetDir(name: string): string {
    checkName(name);
    return join(runRoot(), name);
}

function checkName(name: string): void {
    if (!NAME.test(name)) throw new Error(`zkmigrate fleet: name ${JSON.stringify(name)} must match ${NAME} (it names namespaces and devices)`);
}

function fleetHash(name: string): Buffer {
    return createHash("sha256").update(`zkmigrate-fleet:${name}`).digest();
}

/** The fleet's /24 and bridge, derived from its name (10.201.0.0 to 10.250.255.0). */
export function fleetNetwork(name: string): { subnet: string; prefix: string; bridge: string; bridgeAddress: string } {
    checkName(name);
    const h = fleetHash(name);
    const prefix = `10.${201 + (h.readUInt16BE(0) % 50)}.${h[2]}`;
    return { subnet: `${prefix}.0/24`, prefix, bridge: `zkm-${h.toString("hex").slice(0, 8)}`, bridgeAddress: `${prefix}.1` };
}

/** The tag on the fleet's bridge (as its alias) and on its root-namespace iptables rules. */
export function fleetTag(name: string): string {
    return `zkmigrate-fleet:${name}`;
}

function netnsName(fleet: string, host: string): string {
    return `zkm.${fleet}.${host}`;
}

/** The processes of a host carry this JVM property (the service script checks it before a kill). */
function zkMark(fleet: string, host: string): string {
    return `-Dzkmigrate.server=${fleet}/${host}`;
}

// ---------------------------------------------------------------------------------------------
// Prerequisites

/** What the fleet needs; throws one error naming every missing piece and its Debian package. */
export function checkPrerequisites(): Record<string, string> {
    const problems: string[] = [];
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
        problems.push("not root: network namespaces, the bridge, sshd on port 22 and iptables need root (run as root, e.g. sudo npm run test:integration)");
    }
    const found: Record<string, string> = {};
    const missing = new Map<string, string[]>();
    for (const cmd of ["ip", "iptables", "sshd", "ssh", "ssh-keygen", "java", "mvn", "unshare", "nsenter", "setsid", "timeout"]) {
        const p = findCommand(cmd);
        if (p) {
            found[cmd] = p;
        } else {
            const pkg = DEBIAN_PACKAGES[cmd] ?? cmd;
            missing.set(pkg, [...(missing.get(pkg) ?? []), cmd]);
        }
    }
    for (const [pkg, cmds] of missing) {
        problems.push(`${cmds.join(", ")} not found: install the Debian package ${pkg} (apt-get install ${pkg}; tools/setup.sh does it)`);
    }
    if (problems.length > 0) {
        throw new Error(`zkmigrate fleet: cannot run a local fleet here:\n  - ${problems.join("\n  - ")}`);
    }
    return found;
}

// ---------------------------------------------------------------------------------------------
// Process helpers

interface Run {
    code: number;
    stdout: string;
    stderr: string;
    timedOut: boolean;
}

function run(cmd: string, args: string[], o: { timeoutMs?: number; input?: string } = {}): Promise<Run> {
    return new Promise((resolve) => {
        const child = execFile(
            cmd,
            args,
            { timeout: o.timeoutMs ?? 30_000, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
            (err, stdout, stderr) => {
                const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
                let code = 0;
                if (e) code = typeof e.code === "number" ? e.code : e.killed ? 124 : 127;
                resolve({ code, stdout: String(stdout), stderr: String(stderr) + (e && typeof e.code === "string" ? e.message : ""), timedOut: !!e?.killed });
            },
        );
        if (o.input !== undefined) child.stdin?.end(o.input);
    });
}

/** Runs a command; throws with its output when it fails. */
async function must(cmd: string, args: string[], what: string, timeoutMs = 30_000): Promise<string> {
    const r = await run(cmd, args, { timeoutMs });
    if (r.code !== 0) {
        throw new Error(`zkmigrate fleet: ${what} failed (${cmd} ${args.join(" ")}: exit ${r.code}${r.timedOut ? ", timed out" : ""}): ${(r.stderr || r.stdout).trim()}`);
    }
    return r.stdout;
}

/** Whether a pid runs (a zombie does not: orphans are reaped late on some machines). */
export function pidAlive(pid: number): boolean {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        return state !== "Z" && state !== "X";
    } catch {
        return false;
    }
}

function cmdline(pid: number): string[] {
    try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s.length > 0);
    } catch {
        return [];
    }
}

/** sshd rewrites its process title ("sshd: /usr/sbin/sshd -f <config> ... [listener] ..."). */
function isOurSshd(mountPoint: string, pid: number): boolean {
    return pidAlive(pid) && cmdline(pid).join(" ").includes(` -f ${join(mountPoint, "ssh", "sshd_config")}`);
}

function readPid(file: string): number | undefined {
    try {
        const t = readFileSync(file, "utf8").trim();
        return /^\d+$/.test(t) ? Number(t) : undefined;
    } catch {
        return undefined;
    }
}

/** SIGTERM, then SIGKILL after graceMs; waits (bounded) until none of them runs. */
async function killPids(pids: number[], graceMs = 10_000): Promise<void> {
    const live = () => pids.filter(pidAlive);
    for (const p of live()) {
        try {
            process.kill(p, "SIGTERM");
        } catch {
            /* gone */
        }
    }
    const deadline = Date.now() + graceMs;
    while (live().length > 0 && Date.now() < deadline) await sleep(100);
    for (const p of live()) {
        try {
            process.kill(p, "SIGKILL");
        } catch {
            /* gone */
        }
    }
    const hard = Date.now() + 10_000;
    while (live().length > 0 && Date.now() < hard) await sleep(50);
    const left = live();
    if (left.length > 0) throw new Error(`zkmigrate fleet: processes ${left.join(", ")} survived SIGKILL for 10 s`);
    // Dead processes stay zombies until their parent (often init) reaps them, and `pgrep` still
    // lists them: wait a little for that (best effort).
    const reaped = Date.now() + 5_000;
    while (pids.some((p) => existsSync(`/proc/${p}`)) && Date.now() < reaped) await sleep(100);
}

function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
    return new Promise((resolve) => {
        const s = connect({ host, port });
        const t = setTimeout(() => {
            s.destroy();
            resolve(false);
        }, timeoutMs);
        s.on("connect", () => {
            clearTimeout(t);
            s.destroy();
            resolve(true);
        });
        s.on("error", () => {
            clearTimeout(t);
            resolve(false);
        });
    });
}

// ---------------------------------------------------------------------------------------------
// State

export function loadFleet(name: string): Fleet | undefined {
    const file = join(fleetDir(name), "fleet.json");
    if (!existsSync(file)) return undefined;
    return JSON.parse(readFileSync(file, "utf8")) as Fleet;
}

export function listFleets(): string[] {
    if (!existsSync(runRoot())) return [];
    return readdirSync(runRoot()).filter((n) => NAME.test(n) && existsSync(join(runRoot(), n, "fleet.json")));
}

function saveFleet(f: Fleet): void {
    const tmp = `${f.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(f, null, 2) + "\n", { mode: 0o600 });
    renameSync(tmp, f.stateFile);
}

export function host(f: Fleet, name: string | number): FleetHost {
    const h = f.hosts.find((x) => x.name === name || x.id === name);
    if (!h) throw new Error(`zkmigrate fleet ${f.name}: no host ${name} (hosts: ${f.hosts.map((x) => `${x.name} (myid ${x.id})`).join(", ")})`);
    return h;
}

export function hostsOf(f: Fleet, ensemble: string): FleetHost[] {
    return f.hosts.filter((h) => h.ensemble === ensemble);
}

/** `addr:2181,...` of an ensemble (or of the given hosts). */
export function connectString(f: Fleet, hosts: string | FleetHost[]): string {
    const list = typeof hosts === "string" ? hostsOf(f, hosts) : hosts;
    return list.map((h) => `${h.address}:${f.hostSettings.clientPort}`).join(",");
}

/** ZooKeeper's current pid on a host (from its pid file, checked against the process), or undefined. */
export function zkPid(f: Fleet, h: FleetHost): number | undefined {
    const pid = readPid(h.zkPidFile);
    if (pid === undefined || !pidAlive(pid)) return undefined;
    return cmdline(pid).includes(zkMark(f.name, h.name)) ? pid : undefined;
}

/**
 * The fleet's part of a stack config: per-ensemble `zookeeper`, `service` and
 * `healthTimeoutSeconds` keys (the same for every ensemble of the fleet).
 */
export function stackHostConfig(f: Fleet): Record<string, unknown> {
    const s = f.hostSettings;
    return {
        zookeeper: { clientPort: s.clientPort, configFile: s.paths.configFile, dataDir: s.paths.dataDir, myidFile: s.paths.myidFile },
        service: { ...s.service },
        healthTimeoutSeconds: s.healthTimeoutSeconds,
    };
}

// ---------------------------------------------------------------------------------------------
// The service script on each host

function serviceScript(o: { fleet: string; host: string; version: string; java: string; classpath: string; home: string; jvmOptions?: string[] }): string {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    return `#!/usr/bin/env bash
# zk-service: ZooKeeper ${o.version} on host ${o.host} of the zkmigrate fleet ${o.fleet}.
# A stand-in for systemd on a local fleet host:  zk-service start|stop|restart|status|disable|enable
#   start    starts ZooKeeper unless it runs (refused when disabled)
#   stop     stops it (SIGTERM, SIGKILL after 20 s) and waits
#   restart  stop, then start (starts a stopped server)
#   status   exit 0 when it runs; otherwise exit 3 and the last lines of its log
#   disable  marks it so that start refuses (enable undoes that); does not stop it
set -uo pipefail
export LC_ALL=C
readonly HOST_NAME=${q(o.host)}
readonly VERSION=${q(o.version)}
readonly HOME_DIR=${q(o.home)}
readonly CFG="$HOME_DIR/conf/zoo.cfg"
readonly PID_FILE="$HOME_DIR/run/zookeeper.pid"
readonly LOG_FILE="$HOME_DIR/logs/zookeeper.log"
readonly DISABLED="$HOME_DIR/run/disabled"
readonly JAVA=${q(o.java)}
readonly MARK=${q(zkMark(o.fleet, o.host))}
readonly -a JVM=(${[...JVM_OPTIONS, ...(o.jvmOptions ?? [])].map(q).join(" ")})
readonly CLASSPATH_=${q(o.classpath)}
readonly STOP_TIMEOUT=20

log() { printf '%s zk-service: %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*" >>"$LOG_FILE"; }

# zk_pid: prints the pid of this host's ZooKeeper when it runs (the pid file's process, if it
# is ours and not a zombie).
zk_pid() {
    local pid state
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(<"$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    state="$(awk '{ sub(/^.*\\) /, ""); print substr($0, 1, 1) }' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]] || return 1
    tr '\\0' '\\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$MARK" || return 1
    printf '%s\\n' "$pid"
}

last_log() {
    printf 'zk-service: last lines of %s:\\n' "$LOG_FILE"
    if [[ -f "$LOG_FILE" ]]; then
        # -a and tr: a log may hold binary bytes (ZooKeeper quotes a corrupt file's content).
        grep -av '^[[:space:]]*at ' "$LOG_FILE" | tail -n "\${1:-15}" | tr -c '[:print:]\t\n' '?' | cut -c1-400 | sed 's/^/    /'
    fi
}

start() {
    local pid
    if [[ -e "$DISABLED" ]]; then
        echo "zk-service: ZooKeeper on $HOST_NAME is disabled ($DISABLED exists): not starting it ('zk-service enable' undoes that)" >&2
        return 1
    fi
    if pid="$(zk_pid)"; then
        echo "zk-service: ZooKeeper $VERSION already runs on $HOST_NAME (pid $pid)"
        return 0
    fi
    mkdir -p -- "$HOME_DIR/run" "$HOME_DIR/logs"
    log "starting ZooKeeper $VERSION"
    # setsid: its own session, so nothing of the caller (an SSH session, timeout) holds or kills it.
    setsid "$JAVA" "$MARK" "\${JVM[@]}" -cp "$CLASSPATH_" ${MAIN_CLASS} "$CFG" >>"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    printf '%s\\n' "$pid" >"$PID_FILE.tmp"
    mv -f -- "$PID_FILE.tmp" "$PID_FILE"
    # A server that cannot start (bad config, port taken) often exits within a second.
    sleep 1
    if ! zk_pid >/dev/null; then
        echo "zk-service: ZooKeeper $VERSION on $HOST_NAME exited right after it started" >&2
        last_log 20 >&2
        return 1
    fi
    echo "zk-service: started ZooKeeper $VERSION on $HOST_NAME (pid $pid), log $LOG_FILE"
}

stop() {
    local pid i
    if ! pid="$(zk_pid)"; then
        rm -f -- "$PID_FILE"
        echo "zk-service: ZooKeeper is not running on $HOST_NAME"
        return 0
    fi
    log "stopping ZooKeeper (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        zk_pid >/dev/null || break
        sleep 0.1
    done
    if zk_pid >/dev/null; then
        log "ZooKeeper (pid $pid) ignored SIGTERM for $STOP_TIMEOUT s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            zk_pid >/dev/null || break
            sleep 0.1
        done
    fi
    if zk_pid >/dev/null; then
        echo "zk-service: ZooKeeper (pid $pid) on $HOST_NAME survived SIGKILL" >&2
        return 1
    fi
    rm -f -- "$PID_FILE"
    echo "zk-service: stopped ZooKeeper on $HOST_NAME (was pid $pid)"
}

status() {
    local pid
    if pid="$(zk_pid)"; then
        echo "zk-service: ZooKeeper $VERSION runs on $HOST_NAME (pid $pid)"
        return 0
    fi
    if [[ -e "$DISABLED" ]]; then
        echo "zk-service: ZooKeeper $VERSION is not running on $HOST_NAME (disabled)"
    else
        echo "zk-service: ZooKeeper $VERSION is not running on $HOST_NAME"
    fi
    last_log 15
    return 3
}

case "\${1:-}" in
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) status ;;
disable)
    touch -- "$DISABLED"
    echo "zk-service: ZooKeeper on $HOST_NAME disabled (start refuses until 'zk-service enable')"
    ;;
enable)
    rm -f -- "$DISABLED"
    echo "zk-service: ZooKeeper on $HOST_NAME enabled"
    ;;
*)
    echo "usage: $0 start|stop|restart|status|disable|enable" >&2
    exit 2
    ;;
esac
`;
}

// ---------------------------------------------------------------------------------------------
// Create

/** Expands the spec into hosts (names, myids, versions, addresses). */
function layout(spec: FleetSpec, prefix: string): Omit<FleetHost, "dir" | "sshdConfig" | "zkPidFile" | "netns" | "veth">[] {
    if (spec.ensembles.length === 0) throw new Error("zkmigrate fleet: a fleet needs at least one ensemble");
    const out: Omit<FleetHost, "dir" | "sshdConfig" | "zkPidFile" | "netns" | "veth">[] = [];
    const ids = new Set<number>();
    let next = 1;
    for (const e of spec.ensembles) {
        if (!ENSEMBLE.test(e.name)) throw new Error(`zkmigrate fleet: ensemble name ${JSON.stringify(e.name)} must match ${ENSEMBLE}`);
        if (!Number.isInteger(e.servers) || e.servers < 1) throw new Error(`zkmigrate fleet: ensemble ${e.name} needs 1 or more servers`);
        const first = e.firstId ?? next;
        for (let i = 0; i < e.servers; i++) {
            const id = first + i;
            if (id < 1 || id > 255 || ids.has(id)) throw new Error(`zkmigrate fleet: myid ${id} of ensemble ${e.name} is outside 1..255 or used twice`);
            ids.add(id);
            out.push({ name: `${e.name}-${id}`, ensemble: e.name, id, version: resolveVersion(e.version ?? spec.version), address: "" });
        }
        next = first + e.servers;
    }
    if (spec.kafka) {
        const k = spec.kafka;
        if (!spec.ensembles.some((e) => e.name === k.zookeeper && e.start !== false)) {
            throw new Error(`zkmigrate fleet: kafka.zookeeper ${JSON.stringify(k.zookeeper)} must name an ensemble of the fleet that starts at create`);
        }
        if (spec.ensembles.some((e) => e.name === "kafka")) throw new Error('zkmigrate fleet: an ensemble named "kafka" would share host names with the brokers');
        if (!Number.isInteger(k.brokers) || k.brokers < 1) throw new Error("zkmigrate fleet: kafka.brokers must be 1 or more");
        for (let i = 0; i < k.brokers; i++) {
            const id = (k.firstId ?? 1) + i;
            out.push({ name: `kafka-${id}`, ensemble: "kafka", id, version: k.version ?? DEFAULT_KAFKA_VERSION, address: "", kind: "kafka" });
        }
    }
    if (out.length > 200) throw new Error("zkmigrate fleet: at most 200 hosts");
    out.forEach((h, i) => (h.address = `${prefix}.${11 + i}`));
    return out;
}

/** Refuses when the fleet's bridge or subnet exists and is not this fleet's. */
async function checkNetworkFree(name: string): Promise<void> {
    const net = fleetNetwork(name);
    const tag = fleetTag(name);
    const link = await run("ip", ["-d", "-j", "link", "show", "dev", net.bridge]);
    let bridgeIsOurs = false;
    if (link.code === 0) {
        const info = (JSON.parse(link.stdout) as { ifalias?: string }[])[0];
        if (info?.ifalias !== tag) {
            throw new Error(`zkmigrate fleet ${name}: a device ${net.bridge} exists and is not this fleet's bridge (its alias is ${JSON.stringify(info?.ifalias ?? "")}, not ${tag}): refusing`);
        }
        bridgeIsOurs = true;
    }
    const addrs = JSON.parse(await must("ip", ["-j", "-4", "addr", "show"], "listing addresses")) as { ifname: string; addr_info: { local: string }[] }[];
    for (const dev of addrs) {
        for (const a of dev.addr_info ?? []) {
            if (a.local.startsWith(`${net.prefix}.`) && !(bridgeIsOurs && dev.ifname === net.bridge)) {
                throw new Error(`zkmigrate fleet ${name}: the fleet's subnet ${net.subnet} is in use (${a.local} on ${dev.ifname}): refusing`);
            }
        }
    }
    const routes = JSON.parse(await must("ip", ["-j", "-4", "route", "show", "table", "all"], "listing routes")) as { dst: string; dev?: string }[];
    for (const r of routes) {
        if ((r.dst === net.subnet || r.dst.startsWith(`${net.prefix}.`)) && r.dev !== net.bridge) {
            throw new Error(`zkmigrate fleet ${name}: a route to ${r.dst} (dev ${r.dev ?? "?"}) overlaps the fleet's subnet ${net.subnet}: refusing`);
        }
    }
}

async function netnsList(): Promise<string[]> {
    const r = await run("ip", ["netns", "list"]);
    return r.stdout
        .split("\n")
        .map((l) => l.split(" ")[0])
        .filter((l) => l.length > 0);
}

async function ensureRootRule(args: string[]): Promise<void> {
    const chainAndRest = args;
    const check = await run("iptables", ["-w", "10", "-C", ...chainAndRest]);
    if (check.code === 0) return;
    await must("iptables", ["-w", "10", "-I", chainAndRest[0], "1", ...chainAndRest.slice(1)], `adding the root-namespace rule ${args.join(" ")}`);
}

/** The rules the fleet adds to the root namespace: traffic on its bridge is accepted whatever the policies. */
function rootRulesFor(name: string, bridge: string): string[][] {
    const c = ["-m", "comment", "--comment", fleetTag(name), "-j", "ACCEPT"];
    return [
        // Bridged traffic between hosts passes FORWARD when br_netfilter is loaded.
        ["FORWARD", "-i", bridge, "-o", bridge, ...c],
        ["INPUT", "-i", bridge, ...c],
        ["OUTPUT", "-o", bridge, ...c],
    ];
}

/**
 * Creates the fleet, or completes an existing one with the same spec (idempotent): network,
 * keys, sshd per host, ZooKeeper installed (config and myid written only when missing), and the
 * ensembles with `start` running and serving.
 */
export async function createFleet(spec: FleetSpec, o: { log?: (line: string) => void } = {}): Promise<Fleet> {
    const say = o.log ?? (() => undefined);
    const tools = checkPrerequisites();
    checkName(spec.name);
    const net = fleetNetwork(spec.name);
    const dir = fleetDir(spec.name);
    const existing = loadFleet(spec.name);
    const normalized: FleetSpec = JSON.parse(JSON.stringify(spec));
    if (existing && JSON.stringify(existing.spec) !== JSON.stringify(normalized)) {
        throw new Error(`zkmigrate fleet ${spec.name} exists with another layout (${existing.stateFile}); destroy it first`);
    }
    await checkNetworkFree(spec.name);

    // ZooKeeper releases first: the slowest part on a fresh machine, and nothing to undo.
    const versions = [...new Set(layout(spec, net.prefix).filter((h) => h.kind !== "kafka").map((h) => h.version))];
    const classpaths = new Map<string, string>();
    for (const v of versions) {
        say(`ZooKeeper ${v}: resolving through Maven`);
        classpaths.set(v, (await ensureZooKeeper(v)).classpath);
    }
    if (spec.kafka) {
        const v = spec.kafka.version ?? DEFAULT_KAFKA_VERSION;
        say(`Kafka ${v}: resolving through Maven`);
        classpaths.set(`kafka-${v}`, (await ensureKafka(v)).classpath);
    }

    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const mountPoint = join(dir, "host");
    mkdirSync(mountPoint, { recursive: true });
    const sshDir = join(dir, "ssh");
    mkdirSync(sshDir, { recursive: true, mode: 0o700 });
    const sshKey = join(sshDir, "id_ed25519");
    if (!existsSync(sshKey)) {
        await must(tools["ssh-keygen"], ["-q", "-t", "ed25519", "-N", "", "-C", fleetTag(spec.name), "-f", sshKey], "generating the fleet's SSH key");
    }
    const authorizedKeys = join(sshDir, "authorized_keys");
    writeFileSync(authorizedKeys, readFileSync(`${sshKey}.pub`), { mode: 0o600 });
    const knownHosts = join(sshDir, "known_hosts");

    const hostSettings: HostSettings = {
        paths: { configFile: join(mountPoint, "conf", "zoo.cfg"), myidFile: join(mountPoint, "data", "myid"), dataDir: join(mountPoint, "data") },
        service: {
            start: `${mountPoint}/bin/zk-service start`,
            stop: `${mountPoint}/bin/zk-service stop`,
            restart: `${mountPoint}/bin/zk-service restart`,
            status: `${mountPoint}/bin/zk-service status`,
            disable: `${mountPoint}/bin/zk-service disable`,
        },
        clientPort: 2181,
        healthTimeoutSeconds: spec.healthTimeoutSeconds ?? 60,
    };
    const hosts: FleetHost[] = layout(spec, net.prefix).map((h, i) => {
        const hdir = join(dir, "hosts", h.name);
        const prev = existing?.hosts.find((x) => x.name === h.name);
        return {
            ...h,
            netns: netnsName(spec.name, h.name),
            veth: `zkv${net.bridge.slice(4, 10)}-${i}`,
            dir: hdir,
            sshdConfig: join(hdir, "ssh", "sshd_config"),
            zkPidFile: join(hdir, "run", h.kind === "kafka" ? "kafka.pid" : "zookeeper.pid"),
            sshdPid: prev?.sshdPid,
        };
    });
    const fleet: Fleet = {
        name: spec.name,
        dir,
        stateFile: join(dir, "fleet.json"),
        subnet: net.subnet,
        bridge: net.bridge,
        bridgeAddress: net.bridgeAddress,
        mountPoint,
        sshKey,
        sshPublicKey: `${sshKey}.pub`,
        knownHosts,
        sshUser: "root",
        hostSettings,
        rootRules: existing?.rootRules ?? [],
        ...(spec.kafka
            ? {
                  kafkaSettings: {
                      serverProperties: join(mountPoint, "conf", "server.properties"),
                      binDir: join(mountPoint, "bin"),
                      port: KAFKA_PORT,
                      service: { restart: `${mountPoint}/bin/kafka-service restart`, status: `${mountPoint}/bin/kafka-service status` },
                      healthTimeoutSeconds: 180,
                      spacingSeconds: 5,
                      allowChrootChange: false,
                  },
              }
            : {}),
        hosts,
        spec: normalized,
        createdAt: existing?.createdAt ?? new Date().toISOString(),
    };
    // Recorded before anything is made, so that destroy finds whatever a failed create left.
    saveFleet(fleet);

    // The bridge, with the root namespace's address on it.
    if ((await run("ip", ["link", "show", "dev", net.bridge])).code !== 0) {
        say(`bridge ${net.bridge} ${net.subnet}`);
        await must("ip", ["link", "add", net.bridge, "type", "bridge"], "creating the bridge");
    }
    await must("ip", ["link", "set", "dev", net.bridge, "alias", fleetTag(spec.name)], "tagging the bridge");
    const brAddr = await run("ip", ["-4", "addr", "show", "dev", net.bridge]);
    if (!brAddr.stdout.includes(`inet ${net.bridgeAddress}/24`)) {
        await must("ip", ["addr", "add", `${net.bridgeAddress}/24`, "dev", net.bridge], "addressing the bridge");
    }
    await must("ip", ["link", "set", "dev", net.bridge, "up"], "bringing the bridge up");
    const rules = rootRulesFor(spec.name, net.bridge);
    fleet.rootRules = rules;
    saveFleet(fleet);
    for (const r of rules) await ensureRootRule(r);

    // Hosts: namespace, veth, address, route; files; sshd.
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege separation directory
    const existingNs = new Set(await netnsList());
    for (const h of hosts) {
        if (!existingNs.has(h.netns)) {
            say(`host ${h.name}: namespace ${h.netns}, ${h.address}`);
            await must("ip", ["netns", "add", h.netns], `creating the namespace of ${h.name}`);
        }
        const nsIp = (...args: string[]) => ["-n", h.netns, ...args];
        await must("ip", nsIp("link", "set", "dev", "lo", "up"), `loopback of ${h.name}`);
        if ((await run("ip", nsIp("link", "show", "dev", "eth0"))).code !== 0) {
            if ((await run("ip", ["link", "show", "dev", h.veth])).code === 0) {
                await must("ip", ["link", "del", "dev", h.veth], `removing a stale ${h.veth}`);
            }
            await must("ip", ["link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns], `the veth of ${h.name}`);
        }
        await must("ip", ["link", "set", "dev", h.veth, "master", net.bridge, "up"], `attaching ${h.name} to the bridge`);
        const a = await run("ip", nsIp("-4", "addr", "show", "dev", "eth0"));
        if (!a.stdout.includes(`inet ${h.address}/24`)) {
            await must("ip", nsIp("addr", "add", `${h.address}/24`, "dev", "eth0"), `addressing ${h.name}`);
        }
        await must("ip", nsIp("link", "set", "dev", "eth0", "up"), `eth0 of ${h.name}`);
        await must("ip", nsIp("route", "replace", "default", "via", net.bridgeAddress), `default route of ${h.name}`);
        if (h.kind === "kafka") await installKafkaHost(fleet, h, classpaths.get(`kafka-${h.version}`)!, tools);
        else await installHost(fleet, h, classpaths.get(h.version)!, tools);
    }
    await writeKnownHosts(fleet);
    for (const h of hosts) await ensureSshd(fleet, h, tools);
    saveFleet(fleet);
    const sshDeadline = Date.now() + 20_000;
    for (const h of hosts) {
        while (!(await tcpOpen(h.address, 22))) {
            if (Date.now() > sshDeadline) throw new Error(`zkmigrate fleet ${spec.name}: sshd of ${h.name} does not accept connections on ${h.address}:22 (log: ${join(h.dir, "ssh", "sshd.log")})`);
            await sleep(100);
        }
    }

    // ZooKeeper of the ensembles that start now, all at once.
    const starting = hosts.filter((h) => h.kind !== "kafka" && spec.ensembles.find((e) => e.name === h.ensemble)?.start !== false);
    if (starting.length > 0) {
        say(`starting ZooKeeper on ${starting.map((h) => h.name).join(", ")}`);
        await Promise.all(starting.map((h) => hostService(fleet, h, "start")));
        await waitServing(fleet, starting, 120_000);
    }
    // The brokers, once their ZooKeeper serves; bounded until each listens.
    const brokers = hosts.filter((h) => h.kind === "kafka");
    if (brokers.length > 0) {
        say(`starting Kafka on ${brokers.map((h) => h.name).join(", ")}`);
        for (const h of brokers) {
            const r = await hostService(fleet, h, "start");
            if (r.code !== 0) throw new Error(`zkmigrate fleet ${spec.name}: Kafka on ${h.name} did not start: ${(r.stderr || r.stdout).trim()}`);
        }
        const deadline = Date.now() + 180_000;
        for (const h of brokers) {
            while (!(await tcpOpen(h.address, KAFKA_PORT))) {
                if (Date.now() > deadline) throw new Error(`zkmigrate fleet ${spec.name}: Kafka on ${h.name} does not listen on ${h.address}:${KAFKA_PORT} after 180 s (log: ${join(h.dir, "logs", "kafka.log")})`);
                await sleep(250);
            }
        }
    }
    for (const h of hosts) h.zkPid = zkPid(fleet, h);
    saveFleet(fleet);
    return fleet;
}

/** `host:port,...[/chroot]` the brokers start with (their ensemble's servers and the chroot). */
export function kafkaConnect(f: Fleet): string {
    const k = f.spec.kafka;
    if (!k) throw new Error(`zkmigrate fleet ${f.name} has no Kafka`);
    return `${connectString(f, k.zookeeper)}${k.chroot ?? ""}`;
}

/** `address:9092` of every broker. */
export function kafkaBootstrap(f: Fleet): string[] {
    return f.hosts.filter((h) => h.kind === "kafka").map((h) => `${h.address}:${KAFKA_PORT}`);
}

/** A broker host: the common host files, server.properties (when missing), log4j configs, kafka-service and the tools. */
async function installKafkaHost(f: Fleet, h: FleetHost, classpath: string, tools: Record<string, string>): Promise<void> {
    await installHost(f, h, "", tools);
    const props = join(h.dir, "conf", "server.properties");
    if (!existsSync(props)) {
        writeFileSync(props, serverProperties({ brokerId: h.id, address: h.address, zookeeperConnect: kafkaConnect(f), home: f.mountPoint }));
    }
    writeFileSync(join(h.dir, "conf", "log4j.properties"), log4jProperties({ tools: false }));
    writeFileSync(join(h.dir, "conf", "tools-log4j.properties"), log4jProperties({ tools: true }));
    writeFileSync(
        join(h.dir, "bin", "kafka-service"),
        kafkaServiceScript({ fleet: f.name, host: h.name, version: h.version, java: tools.java, classpath, home: f.mountPoint, mark: zkMark(f.name, h.name) }),
        { mode: 0o755 },
    );
    for (const [name, mainClass] of Object.entries(KAFKA_TOOLS)) {
        writeFileSync(join(h.dir, "bin", name), toolScript({ java: tools.java, classpath, home: f.mountPoint, mainClass }), { mode: 0o755 });
    }
}

/** Host files: directories, host key, sshd config, zoo.cfg and myid (when missing), the service script. */
async function installHost(f: Fleet, h: FleetHost, classpath: string, tools: Record<string, string>): Promise<void> {
    for (const d of ["conf", "data", "logs", "run", "bin", "ssh", "etc"]) mkdirSync(join(h.dir, d), { recursive: true });
    writeFileSync(
        join(h.dir, "etc", "hosts"),
        `127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n` +
            f.hosts.map((x) => `${x.address} ${x.name}\n`).join("") +
            `${f.bridgeAddress} ${f.name}-gateway\n`,
    );
    writeFileSync(join(h.dir, "etc", "resolv.conf"), `# zkmigrate fleet ${f.name}: no DNS on the fleet's network (names are in /etc/hosts)\noptions timeout:1 attempts:1\n`);
    chmodSync(join(h.dir, "ssh"), 0o700);
    const hostKey = join(h.dir, "ssh", "ssh_host_ed25519_key");
    if (!existsSync(hostKey)) {
        await must(tools["ssh-keygen"], ["-q", "-t", "ed25519", "-N", "", "-C", `${f.name}/${h.name}`, "-f", hostKey], `the host key of ${h.name}`);
    }
    // Paths as the host sees them (its directory is mounted at f.mountPoint in its mount namespace).
    const seen = (...p: string[]) => join(f.mountPoint, ...p);
    writeFileSync(
        h.sshdConfig,
        [
            `# sshd of host ${h.name} of the zkmigrate fleet ${f.name} (namespace ${h.netns})`,
            `ListenAddress ${h.address}:22`,
            `HostKey ${seen("ssh", "ssh_host_ed25519_key")}`,
            `PidFile ${seen("run", "sshd.pid")}`,
            `AuthorizedKeysFile ${join(f.dir, "ssh", "authorized_keys")}`,
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "MaxStartups 100:30:200",
            "MaxSessions 50",
            // No AcceptEnv, as on a host with a stock sshd: zkmigrate's commands send their script
            // and no environment (components/remote-command.ts turns off @pulumi/command's
            // PULUMI_COMMAND_STDOUT/STDERR), so the rehearsal shows a provider warning or failure
            // should the program start sending variables a host refuses.
            "LogLevel INFO",
            "",
        ].join("\n"),
    );
    if (h.kind === "kafka") return;
    const cfg = join(h.dir, "conf", "zoo.cfg");
    if (!existsSync(cfg)) {
        const members = f.hosts.filter((x) => x.ensemble === h.ensemble);
        const settings = baseSettings({ dataDir: f.hostSettings.paths.dataDir, clientPort: f.hostSettings.clientPort });
        writeFileSync(
            cfg,
            `# ZooKeeper ${h.version} of host ${h.name} (zkmigrate fleet ${f.name})\n` +
                renderSettings(settings) +
                members.map((m) => `server.${m.id}=${m.address}:2888:3888\n`).join(""),
        );
    }
    const myid = join(h.dir, "data", "myid");
    if (!existsSync(myid)) writeFileSync(myid, `${h.id}\n`);
    const script = join(h.dir, "bin", "zk-service");
    writeFileSync(script, serviceScript({ fleet: f.name, host: h.name, version: h.version, java: tools.java, classpath, home: f.mountPoint, jvmOptions: f.spec.zkJvmOptions }), { mode: 0o755 });
}

async function writeKnownHosts(f: Fleet): Promise<void> {
    const lines = f.hosts.map((h) => {
        const pub = readFileSync(join(h.dir, "ssh", "ssh_host_ed25519_key.pub"), "utf8").trim().split(/\s+/);
        return `${h.address} ${pub[0]} ${pub[1]}\n`;
    });
    writeFileSync(f.knownHosts, lines.join(""), { mode: 0o644 });
}

/** Starts the host's sshd (in the host's network, mount and UTS namespaces) unless it runs. */
async function ensureSshd(f: Fleet, h: FleetHost, tools: Record<string, string>): Promise<void> {
    if (h.sshdPid !== undefined && isOurSshd(f.mountPoint, h.sshdPid)) {
        return;
    }
    const pidFile = join(h.dir, "run", "sshd.pid");
    rmSync(pidFile, { force: true });
    // The host's own /etc/hosts (its name resolves: ZooKeeper looks it up at start, and without an
    // answer waits out a DNS timeout) and an empty resolv.conf (no DNS server is reachable here).
    const inner =
        'mount --bind "$1" "$2" && mount --bind "$1/etc/hosts" /etc/hosts && mount --bind "$1/etc/resolv.conf" /etc/resolv.conf && ' +
        'hostname "$3" && exec "$4" -f "$5" -E "$6"';
    await must(
        "ip",
        [
            "netns",
            "exec",
            h.netns,
            tools.unshare,
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            inner,
            "sh",
            h.dir,
            f.mountPoint,
            h.name,
            tools.sshd,
            join(f.mountPoint, "ssh", "sshd_config"),
            join(f.mountPoint, "ssh", "sshd.log"),
        ],
        `starting sshd of ${h.name}`,
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
        const pid = readPid(pidFile);
        if (pid !== undefined && pidAlive(pid)) {
            h.sshdPid = pid;
            return;
        }
        if (Date.now() > deadline) {
            let log = "";
            try {
                log = readFileSync(join(h.dir, "ssh", "sshd.log"), "utf8").trim().split("\n").slice(-5).join("\n");
            } catch {
                /* none */
            }
            throw new Error(`zkmigrate fleet ${f.name}: sshd of ${h.name} wrote no pid file within 10 s: ${log}`);
        }
        await sleep(50);
    }
}

/** Runs the host's service script directly (not over SSH) in the host's namespaces. */
export async function hostService(f: Fleet, h: FleetHost, verb: "start" | "stop" | "restart" | "status" | "disable" | "enable"): Promise<Run> {
    if (h.sshdPid === undefined || !pidAlive(h.sshdPid)) {
        throw new Error(`zkmigrate fleet ${f.name}: sshd of ${h.name} does not run (its namespaces hold the host's view of files)`);
    }
    const nsenter = findCommand("nsenter") ?? "nsenter";
    const service = h.kind === "kafka" ? "kafka-service" : "zk-service";
    return run(nsenter, ["-t", String(h.sshdPid), "-n", "-m", "-u", "--", join(f.mountPoint, "bin", service), verb], { timeoutMs: h.kind === "kafka" ? 150_000 : 60_000 });
}

/** Waits until every host's ZooKeeper answers srvr with a Mode on its address, at most timeoutMs. */
export async function waitServing(f: Fleet, hosts: FleetHost[], timeoutMs = 120_000): Promise<Record<string, string>> {
    const deadline = Date.now() + timeoutMs;
    const modes: Record<string, string> = {};
    const last: Record<string, string> = {};
    for (;;) {
        await Promise.all(
            hosts
                .filter((h) => !modes[h.name])
                .map(async (h) => {
                    try {
                        const a = await fourLetter(h.address, f.hostSettings.clientPort, "srvr", 2000);
                        const m = modeOf(a);
                        if (m) modes[h.name] = m;
                        else last[h.name] = a.trim().slice(0, 200);
                    } catch (e) {
                        last[h.name] = (e as Error).message;
                    }
                }),
        );
        if (hosts.every((h) => modes[h.name])) return modes;
        if (Date.now() > deadline) {
            const waiting = hosts.filter((h) => !modes[h.name]).map((h) => `${h.name}: ${last[h.name] ?? "?"}`);
            throw new Error(`zkmigrate fleet ${f.name}: not serving after ${timeoutMs / 1000} s: ${waiting.join("; ")}`);
        }
        await sleep(250);
    }
}

// ---------------------------------------------------------------------------------------------
// SSH, as @pulumi/command runs a script

/** The ssh command line that runs `script` on a host (asRemoteCommand, as the command provider sends it). */
export function sshArgs(f: Fleet, h: FleetHost, remoteCommand: string): string[] {
    return [
        "-F",
        "/dev/null",
        "-i",
        f.sshKey,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        `UserKnownHostsFile=${f.knownHosts}`,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
        `${f.sshUser}@${h.address}`,
        remoteCommand,
    ];
}

/** Runs a rendered script on a host over SSH; resolves with its exit code and output (124 on timeout). */
export function runScript(f: Fleet, h: FleetHost | string | number, script: string, o: { timeoutMs?: number } = {}): Promise<ScriptResult> {
    const target = typeof h === "object" ? h : host(f, h);
    return sshRun(f, target, asRemoteCommand(script), o.timeoutMs ?? 300_000);
}

/** Runs a plain command line on a host over SSH (same options as runScript). */
export function sshRun(f: Fleet, h: FleetHost, remoteCommand: string, timeoutMs = 60_000): Promise<ScriptResult> {
    const started = Date.now();
    return new Promise((resolve) => {
        const child = spawn(findCommand("ssh") ?? "ssh", sshArgs(f, h, remoteCommand), { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        let timedOut = false;
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
        }, timeoutMs);
        child.on("error", (e) => {
            stderr += String(e);
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            resolve({ code: timedOut ? 124 : (code ?? (signal ? 128 : 1)), stdout, stderr, ms: Date.now() - started, timedOut });
        });
    });
}

/** Runs a command in a host's network namespace (from the root's mount namespace); for tests and checks. */
export function inNetns(f: Fleet, h: FleetHost, argv: string[], timeoutMs = 30_000): Promise<Run> {
    return run("ip", ["netns", "exec", h.netns, ...argv], { timeoutMs });
}

// ---------------------------------------------------------------------------------------------
// Status

export interface HostStatus {
    name: string;
    id: number;
    ensemble: string;
    version: string;
    address: string;
    netns: boolean;
    sshdPid?: number;
    sshd: boolean;
    zkPid?: number;
    mode?: string;
    detail?: string;
}

export async function fleetStatus(f: Fleet): Promise<HostStatus[]> {
    const ns = new Set(await netnsList());
    return Promise.all(
        f.hosts.map(async (h) => {
            const s: HostStatus = {
                name: h.name,
                id: h.id,
                ensemble: h.ensemble,
                version: h.version,
                address: h.address,
                netns: ns.has(h.netns),
                sshdPid: h.sshdPid,
                sshd: h.sshdPid !== undefined && pidAlive(h.sshdPid),
                zkPid: zkPid(f, h),
            };
            try {
                const a = await fourLetter(h.address, f.hostSettings.clientPort, "srvr", 1500);
                s.mode = modeOf(a);
                if (!s.mode) s.detail = a.trim().split("\n")[0];
            } catch (e) {
                s.detail = (e as Error).message;
            }
            return s;
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// Destroy

/**
 * Removes a fleet: kills its ZooKeeper and sshd processes by their recorded pids (checked
 * against their command lines) and whatever else runs in its namespaces, removes the namespaces,
 * the bridge (only when tagged as this fleet's), the root-namespace rules tagged with the fleet,
 * and the fleet's directory. Safe to run twice and on a half-created fleet.
 */
export async function destroyFleet(name: string, o: { log?: (line: string) => void } = {}): Promise<void> {
    const say = o.log ?? (() => undefined);
    checkName(name);
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
        throw new Error("zkmigrate fleet: destroy needs root (namespaces, bridge, iptables)");
    }
    const f = loadFleet(name);
    const dir = fleetDir(name);
    const net = fleetNetwork(name);
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
        try {
            await fn();
        } catch (e) {
            errors.push(`${what}: ${(e as Error).message}`);
        }
    };

    // Namespaces of this fleet: recorded ones, plus any with its prefix (a crashed create).
    const prefix = `zkm.${name}.`;
    const namespaces = new Set<string>((await netnsList()).filter((n) => n.startsWith(prefix)));

    // 1. Processes: ZooKeeper and sshd by their pids, checked to be ours.
    const pids: number[] = [];
    for (const h of f?.hosts ?? []) {
        const zk = readPid(h.zkPidFile);
        if (zk !== undefined && pidAlive(zk) && cmdline(zk).includes(zkMark(name, h.name))) pids.push(zk);
        if (h.zkPid !== undefined && pidAlive(h.zkPid) && cmdline(h.zkPid).includes(zkMark(name, h.name))) pids.push(h.zkPid);
        for (const p of [h.sshdPid, readPid(join(h.dir, "run", "sshd.pid"))]) {
            if (p !== undefined && isOurSshd(join(dir, "host"), p)) pids.push(p);
        }
    }
    // ...and whatever else still runs inside the fleet's own network namespaces (SSH sessions,
    // a test's listener, a server whose pid file was lost).
    for (const ns of namespaces) {
        const r = await run("ip", ["netns", "pids", ns]);
        for (const p of r.stdout.split(/\s+/).filter((x) => /^\d+$/.test(x))) pids.push(Number(p));
    }
    const unique = [...new Set(pids)].filter((p) => p !== process.pid);
    if (unique.length > 0) {
        say(`killing ${unique.length} process(es): ${unique.join(" ")}`);
        await attempt("killing the fleet's processes", () => killPids(unique));
    }

    // 2. Namespaces (their veths go with them).
    for (const ns of namespaces) {
        say(`removing namespace ${ns}`);
        await attempt(`removing namespace ${ns}`, () => must("ip", ["netns", "del", ns], `removing namespace ${ns}`));
    }

    // 3. The bridge, when it is this fleet's.
    const link = await run("ip", ["-d", "-j", "link", "show", "dev", net.bridge]);
    if (link.code === 0) {
        const info = (JSON.parse(link.stdout) as { ifalias?: string }[])[0];
        if (info?.ifalias === fleetTag(name)) {
            say(`removing bridge ${net.bridge}`);
            await attempt(`removing bridge ${net.bridge}`, () => must("ip", ["link", "del", "dev", net.bridge], "removing the bridge"));
        } else {
            errors.push(`a device ${net.bridge} exists but is not tagged as this fleet's bridge: left alone`);
        }
    }

    // 4. Root-namespace rules carrying the fleet's tag (recorded or not).
    if (findCommand("iptables")) {
        await attempt("removing root-namespace rules", async () => {
            // The recorded rules, then any other rule with the fleet's tag (our tags have no spaces,
            // so a listed rule splits into its arguments; iptables prints the comment in quotes).
            for (const r of f?.rootRules ?? []) {
                for (let i = 0; i < 20 && (await run("iptables", ["-w", "10", "-C", ...r])).code === 0; i++) {
                    say(`removing root-namespace rule ${r.join(" ")}`);
                    await must("iptables", ["-w", "10", "-D", ...r], "removing a root-namespace rule");
                }
            }
            const listing = await must("iptables", ["-w", "10", "-S"], "listing the root namespace's rules");
            const tag = fleetTag(name);
            for (const line of listing.split("\n")) {
                const args = line.trim().split(/\s+/).map((w) => w.replace(/^"(.*)"$/, "$1"));
                if (args[0] !== "-A" || !args.includes(tag)) continue;
                say(`removing root-namespace rule ${args.slice(1).join(" ")}`);
                await must("iptables", ["-w", "10", "-D", ...args.slice(1)], "removing a root-namespace rule");
            }
        });
    }

    // 5. Files.
    if (existsSync(dir)) {
        await attempt(`removing ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
    }
    try {
        // Not recursive: it fails when another fleet's directory appeared meanwhile.
        if (existsSync(runRoot()) && readdirSync(runRoot()).length === 0) rmdirSync(runRoot());
    } catch {
        /* another fleet appeared meanwhile */
    }
    if (errors.length > 0) {
        throw new Error(`zkmigrate fleet ${name}: destroy left problems:\n  - ${errors.join("\n  - ")}`);
    }
}
