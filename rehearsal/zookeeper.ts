// ZooKeeper releases for the local fleet and the tests: jars from Maven Central through Maven
// (rehearsal/pom.xml), cached outside the repo, and a standalone server on 127.0.0.1.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { fourLetterWord, parseMode } from "../src/zk/four-letter";
import { FOUR_LETTER_WHITELIST, ZOO_CFG_BASE } from "../src/format/zoo-cfg";

/**
 * The newest patch release of each line that Maven Central serves (checked with mvn: 3.5.11,
 * 3.6.5, 3.7.3, 3.8.7 and 3.9.6 do not resolve there).
 */
export const ZK_VERSIONS: Record<string, string> = {
    "3.5": "3.5.10",
    "3.6": "3.6.4",
    "3.7": "3.7.2",
    "3.8": "3.8.6",
    "3.9": "3.9.5",
};

/** The newest 3.9.x. */
export const DEFAULT_ZK_VERSION: string = ZK_VERSIONS["3.9"];

/** The pom that resolves a release (and nothing else). */
export const POM = join(__dirname, "pom.xml");

/** Where jars and resolved classpaths are cached: $ZKMIGRATE_CACHE or ~/.cache/zkmigrate (outside the repo). */
export function cacheDir(): string {
    const env = process.env.ZKMIGRATE_CACHE;
    return env && env.length > 0 ? env : join(homedir(), ".cache", "zkmigrate");
}

/** A version as given ("3.8" for the newest 3.8.x, or a full x.y.z), resolved to x.y.z. */
export function resolveVersion(version: string = DEFAULT_ZK_VERSION): string {
    const v = version.trim();
    if (ZK_VERSIONS[v]) return ZK_VERSIONS[v];
    if (!/^\d+\.\d+\.\d+$/.test(v)) {
        throw new Error(`ZooKeeper version ${JSON.stringify(version)}: expected x.y.z or one of the lines ${Object.keys(ZK_VERSIONS).join(", ")}`);
    }
    return v;
}

// ---------------------------------------------------------------------------------------------
// Prerequisites

/** Debian packages that provide the commands the fleet and the tests run. */
export const DEBIAN_PACKAGES: Record<string, string> = {
    mvn: "maven",
    java: "default-jre-headless",
    ip: "iproute2",
    iptables: "iptables",
    sshd: "openssh-server",
    "ssh-keygen": "openssh-client",
    ssh: "openssh-client",
    unshare: "util-linux",
    nsenter: "util-linux",
    setsid: "util-linux",
    pgrep: "procps",
    timeout: "coreutils",
};

const SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** The absolute path of a command (PATH plus the sbin directories), or undefined. */
export function findCommand(name: string): string | undefined {
    const dirs = [...(process.env.PATH ?? "/usr/bin:/bin").split(delimiter), ...SBIN];
    for (const d of dirs) {
        if (!d) continue;
        const p = join(d, name);
        if (existsSync(p)) return p;
    }
    return undefined;
}

/** The absolute path of a command, or an error naming the Debian package that provides it. */
export function requireCommand(name: string, why: string): string {
    const p = findCommand(name);
    if (p) return p;
    const pkg = DEBIAN_PACKAGES[name];
    throw new Error(
        `zkmigrate rehearsal: ${name} not found (needed ${why})` +
            (pkg ? `: install the Debian package ${pkg} (apt-get install ${pkg}; tools/setup.sh does it)` : ""),
    );
}

// ---------------------------------------------------------------------------------------------
// Resolution through Maven

interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
    return new Promise((resolve) => {
        execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, env: env ?? process.env }, (err, stdout, stderr) => {
            const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
            let code = 0;
            if (e) code = typeof e.code === "number" ? e.code : e.killed ? 124 : 1;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) + (e && e.killed ? `\n(killed after ${timeoutMs} ms)` : "") });
        });
    });
}

const resolving = new Map<string, Promise<{ version: string; classpath: string }>>();

/**
 * The classpath of a ZooKeeper release (jars in `<cacheDir>/m2`), resolved through Maven once and
 * then read from `<cacheDir>/classpath/`. Needs mvn (Debian: maven) and java (default-jre-headless).
 */
export function ensureZooKeeper(version?: string): Promise<{ version: string; classpath: string }> {
    let v: string;
    try {
        v = resolveVersion(version);
    } catch (e) {
        return Promise.reject(e);
    }
    const pending = resolving.get(v);
    if (pending) return pending;
    const p = resolveClasspath(v);
    resolving.set(v, p);
    p.catch(() => resolving.delete(v));
    return p;
}

async function resolveClasspath(version: string): Promise<{ version: string; classpath: string }> {
    requireCommand("java", "to run ZooKeeper");
    const classpath = await mavenClasspath({
        pom: POM,
        name: "zookeeper",
        artifact: "org.apache.zookeeper:zookeeper",
        property: "zk.version",
        version,
        mainJar: /\/zookeeper-\d[^/]*\.jar$/,
        hint: `the lines Maven Central serves: ${Object.values(ZK_VERSIONS).join(", ")}`,
    });
    return { version, classpath };
}

/** The pom of zkCli's one extra library (Apache Commons CLI). */
export const CLI_POM = join(__dirname, "cli-pom.xml");

/**
 * The jars zkCli (ZooKeeperMain) needs beyond a server's classpath: Commons CLI, which a release
 * tarball ships in lib/ and its Maven pom leaves out. Resolved once, cached like the releases.
 */
export function ensureZkCliClasspath(): Promise<string> {
    return mavenClasspath({ pom: CLI_POM, name: "zkcli", artifact: "commons-cli:commons-cli", property: "cli.version", version: "1.4", mainJar: /\/commons-cli-[^/]*\.jar$/ });
}

/**
 * The runtime classpath of `pom` with `-D<property>=<version>`, resolved through Maven once (jars
 * in `<cacheDir>/m2`) and then read from `<cacheDir>/classpath/<name>-<version>-<pom hash>.txt`;
 * a cached one is used only while its jars exist and include `mainJar`. Needs mvn (Debian: maven).
 */
export async function mavenClasspath(o: { pom: string; name: string; artifact: string; property: string; version: string; mainJar: RegExp; hint?: string }): Promise<string> {
    const pomHash = createHash("sha256").update(readFileSync(o.pom)).digest("hex").slice(0, 12);
    const dir = join(cacheDir(), "classpath");
    const file = join(dir, `${o.name}-${o.version}-${pomHash}.txt`);
    const cached = readClasspath(file, o.mainJar);
    if (cached) return cached;

    const mvn = requireCommand("mvn", `to fetch ${o.artifact} from Maven Central`);
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    const args = [
        "-q",
        "-B",
        "-f",
        o.pom,
        `-D${o.property}=${o.version}`,
        `-Dmaven.repo.local=${join(cacheDir(), "m2")}`,
        "dependency:build-classpath",
        `-Dmdep.outputFile=${tmp}`,
        "-Dmdep.includeScope=runtime",
    ];
    const r = await run(mvn, args, 15 * 60_000);
    if (r.code !== 0 || !existsSync(tmp)) {
        rmSync(tmp, { force: true });
        const out = (r.stdout + "\n" + r.stderr).replace(/\x1b\[[0-9;]*m/g, "").trim().split("\n").slice(-25).join("\n");
        throw new Error(`zkmigrate rehearsal: mvn could not resolve ${o.artifact}:${o.version} (exit ${r.code})${o.hint ? `; ${o.hint}` : ""}\n${out}`);
    }
    renameSync(tmp, file);
    const cp = readClasspath(file, o.mainJar);
    if (!cp) throw new Error(`zkmigrate rehearsal: mvn wrote no usable classpath for ${o.artifact}:${o.version} (${file})`);
    return cp;
}

/** A cached classpath whose jars all exist (a cleaned m2 invalidates it) and include `mainJar`. */
function readClasspath(file: string, mainJar: RegExp): string | undefined {
    if (!existsSync(file)) return undefined;
    const cp = readFileSync(file, "utf8").trim();
    const jars = cp.split(":").filter((j) => j.length > 0);
    if (jars.length === 0 || !jars.some((j) => mainJar.test(j)) || !jars.every((j) => existsSync(j))) {
        return undefined;
    }
    return jars.join(":");
}

// ---------------------------------------------------------------------------------------------
// Running a server

/** The JVM options every server of the fleet and the tests runs with (small heap, quick start). */
export const JVM_OPTIONS: readonly string[] = [
    "-Xms32m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.net.preferIPv4Stack=true",
    "-Dzookeeper.jmx.log4j.disable=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
];

export const MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/** The settings every server gets (before any membership lines). */
export function baseSettings(o: { dataDir: string; clientPort: number; clientPortAddress?: string }): Record<string, string> {
    return {
        ...Object.fromEntries(ZOO_CFG_BASE),
        dataDir: o.dataDir,
        clientPort: String(o.clientPort),
        ...(o.clientPortAddress ? { clientPortAddress: o.clientPortAddress } : {}),
        "4lw.commands.whitelist": FOUR_LETTER_WHITELIST,
        "admin.enableServer": "false",
    };
}

export function renderSettings(settings: Record<string, string>): string {
    return Object.entries(settings)
        .map(([k, v]) => {
            if (!/^[A-Za-z0-9_.]+$/.test(k) || /[\n\r]/.test(v)) throw new Error(`zkmigrate rehearsal: bad zoo.cfg setting ${k}=${v}`);
            return `${k}=${v}\n`;
        })
        .join("");
}

/** A four-letter word to host:port (src/zk's client; rejects when the whitelist refuses it). */
export function fourLetter(host: string, port: number, word: string, timeoutMs = 2000): Promise<string> {
    return fourLetterWord(host, port, word, timeoutMs);
}

/** The Mode a `srvr` answer reports (leader, follower, standalone...), or undefined. */
export const modeOf = parseMode;

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

export function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL and wait again (bounded). */
export async function killAndWait(pid: number, graceMs = 10_000): Promise<void> {
    if (!alive(pid)) return;
    try {
        process.kill(pid, "SIGTERM");
    } catch {
        return;
    }
    const deadline = Date.now() + graceMs;
    while (alive(pid) && Date.now() < deadline) await sleep(100);
    if (!alive(pid)) return;
    try {
        process.kill(pid, "SIGKILL");
    } catch {
        return;
    }
    const hard = Date.now() + 10_000;
    while (alive(pid) && Date.now() < hard) await sleep(50);
    if (alive(pid)) throw new Error(`process ${pid} survived SIGKILL for 10 s`);
}

function tail(file: string, lines = 30): string {
    try {
        return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

/**
 * A standalone server on 127.0.0.1:clientPort with its files in `dir` (zoo.cfg, data/,
 * zookeeper.log). Resolves once `srvr` answers with a Mode (at most 90 s).
 */
export async function startLocalZooKeeper(o: {
    dir: string;
    clientPort: number;
    version?: string;
    settings?: Record<string, string>;
}): Promise<{ pid: number; connect: string; version: string; stop(): Promise<void> }> {
    const { version, classpath } = await ensureZooKeeper(o.version);
    const java = requireCommand("java", "to run ZooKeeper");
    const dataDir = join(o.dir, "data");
    mkdirSync(dataDir, { recursive: true });
    const cfg = join(o.dir, "zoo.cfg");
    const settings = { ...baseSettings({ dataDir, clientPort: o.clientPort, clientPortAddress: "127.0.0.1" }), ...(o.settings ?? {}) };
    writeFileSync(cfg, renderSettings(settings));
    const log = join(o.dir, "zookeeper.log");
    const fd = openSync(log, "a");
    const child = spawn(java, [...JVM_OPTIONS, "-cp", classpath, MAIN_CLASS, cfg], {
        detached: true,
        stdio: ["ignore", fd, fd],
        cwd: o.dir,
    });
    closeSync(fd);
    const pid = child.pid;
    if (pid === undefined) throw new Error(`zkmigrate rehearsal: could not start java for ZooKeeper ${version}`);
    let exited: number | null | undefined;
    child.on("exit", (code) => {
        exited = code;
    });
    child.unref();
    const stop = async () => {
        await killAndWait(pid);
    };
    const deadline = Date.now() + 90_000;
    let last = "";
    for (;;) {
        if (exited !== undefined) {
            throw new Error(`ZooKeeper ${version} on 127.0.0.1:${o.clientPort} exited (code ${exited}) before serving; ${log}:\n${tail(log)}`);
        }
        try {
            const answer = await fourLetter("127.0.0.1", o.clientPort, "srvr", 2000);
            if (modeOf(answer)) break;
            last = answer.trim();
        } catch (e) {
            last = (e as Error).message;
        }
        if (Date.now() > deadline) {
            await stop().catch(() => undefined);
            throw new Error(`ZooKeeper ${version} on 127.0.0.1:${o.clientPort} did not serve within 90 s (last: ${last}); ${log}:\n${tail(log)}`);
        }
        await sleep(200);
    }
    return { pid, connect: `127.0.0.1:${o.clientPort}`, version, stop };
}
