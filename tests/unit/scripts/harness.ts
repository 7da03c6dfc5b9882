// Shared helpers of the script tests: running a rendered script as a host would (through the
// login shell, as asRemoteCommand wraps it), shellcheck, a fake ZooKeeper service, temp dirs.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asRemoteCommand, shellQuote } from "../../../src/scripts";
import type { HostSettings } from "../../../src/types";

const HERE = __dirname;

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    /** How long the run took, in ms. */
    ms: number;
}

/**
 * Runs a rendered script the way pulumi does on a host: the login shell (here `sh`, i.e. dash)
 * gets the asRemoteCommand text. `binDir` goes first on PATH (sudo shim, fake iptables).
 */
export function runScript(script: string, opts: { binDir: string; env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult> {
    const started = Date.now();
    return new Promise((resolve) => {
        execFile(
            "sh",
            ["-c", asRemoteCommand(script)],
            {
                env: { ...process.env, ...opts.env, PATH: `${opts.binDir}:${process.env.PATH}` },
                timeout: opts.timeoutMs ?? 30_000,
                killSignal: "SIGKILL",
                maxBuffer: 10 * 1024 * 1024,
            },
            (err, stdout, stderr) => {
                const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
                resolve({ code, stdout, stderr, ms: Date.now() - started });
            },
        );
    });
}

/** shellcheck's findings for a script (empty when clean). Fails the test when shellcheck is missing. */
export function shellcheck(script: string): string {
    const r = spawnSync("shellcheck", ["-s", "bash", "-"], { input: script, encoding: "utf8", timeout: 60_000 });
    if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
        assert.fail("shellcheck is not installed: install the Debian package `shellcheck` (apt-get install shellcheck, or npm run setup)");
    }
    if (r.error) throw r.error;
    return r.status === 0 ? "" : `${r.stdout}${r.stderr}`;
}

/** A temp directory per test, removed by the returned cleanup. */
export function tempDir(prefix: string): string {
    return mkdtempSync(join(tmpdir(), `zkmigrate-${prefix}-`));
}

/**
 * A bin directory for PATH: a `sudo` shim (the scripts use `sudo -n` when not root; tests may
 * run as any user) and fake iptables/ip6tables.
 */
export function binDir(root: string): string {
    const dir = join(root, "bin");
    mkdirSync(dir, { recursive: true });
    const write = (name: string, text: string) => {
        writeFileSync(join(dir, name), text);
        chmodSync(join(dir, name), 0o755);
    };
    write("sudo", '#!/bin/sh\n[ "$1" = -n ] && shift\n[ "$1" = -- ] && shift\nexec "$@"\n');
    for (const tool of ["iptables", "ip6tables"]) {
        write(tool, `#!/bin/sh\nexec node ${shellQuote(join(HERE, "fake-iptables.cjs"))} ${tool} "$@"\n`);
    }
    return dir;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as { port: number }).port;
            s.close(() => resolve(port));
        });
    });
}

export interface FakeZkOptions {
    serving?: boolean;
    /** Four-letter words the server allows (its 4lw.commands.whitelist). */
    allow?: string[];
    serveAfterMs?: number;
    stopDelayMs?: number;
    znodes?: number;
    mode?: string;
    /** The release srvr and mntr report (default 3.9.3). */
    version?: string;
}

/**
 * A fake ZooKeeper "installed" in `root`: zoo.cfg, data dir with myid, and service commands that
 * start/stop the fake server. Every pid it ever had is logged, so that `kill()` ends them all.
 */
export class FakeZk {
    readonly conf: string;
    readonly dataDir: string;
    readonly pidFile: string;
    private readonly pidLog: string;

    constructor(
        readonly root: string,
        readonly port: number,
        private opts: FakeZkOptions = {},
    ) {
        this.conf = join(root, "conf");
        this.dataDir = join(root, "data");
        this.pidFile = join(root, "zk.pid");
        this.pidLog = join(root, "pids.log");
        mkdirSync(this.conf, { recursive: true });
        mkdirSync(this.dataDir, { recursive: true });
        writeFileSync(this.pidLog, "");
    }

    /** Changes the behaviour of the next start. */
    configure(opts: FakeZkOptions): void {
        this.opts = opts;
    }

    private startCommand(): string {
        const o = this.opts;
        const args = [
            "--port", String(this.port),
            "--pidfile", this.pidFile,
            "--serving", o.serving === false ? "no" : "yes",
            "--allow", (o.allow ?? ["srvr", "mntr", "ruok", "conf", "stat"]).join(","),
            "--serve-after-ms", String(o.serveAfterMs ?? 0),
            "--stop-delay-ms", String(o.stopDelayMs ?? 0),
            "--znodes", String(o.znodes ?? 5),
            "--mode", o.mode ?? "follower",
            "--version", o.version ?? "3.9.3",
        ].map(shellQuote);
        const q = shellQuote;
        // Already running: nothing to do (like systemctl start).
        return (
            `if [ -f ${q(this.pidFile)} ] && kill -0 "$(cat ${q(this.pidFile)})" 2>/dev/null; then echo 'fake-zk: already running'; else ` +
            `node ${q(join(HERE, "fake-zk.cjs"))} ${args.join(" ")} >>${q(join(this.root, "zk.log"))} 2>&1 </dev/null & ` +
            `echo "$!" >>${q(this.pidLog)}; echo "fake-zk: started pid $!"; fi`
        );
    }

    private stopCommand(): string {
        const q = shellQuote;
        // Like systemctl stop on an inactive unit: fine when nothing runs. Does not wait.
        return `if [ -f ${q(this.pidFile)} ]; then kill "$(cat ${q(this.pidFile)})" 2>/dev/null || true; echo 'fake-zk: stopping'; else echo 'fake-zk: not running'; fi`;
    }

    private waitGone(): string {
        const q = shellQuote;
        return `for _ in $(seq 1 100); do [ -f ${q(this.pidFile)} ] || break; sleep 0.1; done`;
    }

    /** HostSettings pointing at this fake install. */
    host(over: Partial<HostSettings> & { dynamic?: boolean; dataLogDir?: string } = {}): HostSettings {
        const q = shellQuote;
        return {
            paths: {
                configFile: join(this.conf, "zoo.cfg"),
                myidFile: join(this.dataDir, "myid"),
                dataDir: this.dataDir,
                ...(over.dataLogDir ? { dataLogDir: over.dataLogDir } : {}),
                ...(over.dynamic ? { dynamicConfigFile: join(this.conf, "zoo.cfg.dynamic") } : {}),
            },
            service: {
                start: this.startCommand(),
                stop: this.stopCommand(),
                restart: `${this.stopCommand()}; ${this.waitGone()}; ${this.startCommand()}`,
                status: `if [ -f ${q(this.pidFile)} ] && kill -0 "$(cat ${q(this.pidFile)})" 2>/dev/null; then echo "fake-zk: active (running) pid $(cat ${q(this.pidFile)})"; else echo 'fake-zk: inactive (dead)'; exit 3; fi`,
                disable: `touch ${q(join(this.root, "disabled"))}; echo 'fake-zk: disabled'`,
            },
            clientPort: this.port,
            healthTimeoutSeconds: over.healthTimeoutSeconds ?? 10,
        };
    }

    /** Starts the server directly (as if it ran before the script), and waits until it listens. */
    async startNow(): Promise<void> {
        const r = spawnSync("bash", ["-c", this.startCommand()], { encoding: "utf8", timeout: 10_000 });
        assert.equal(r.status, 0, r.stderr);
        const deadline = Date.now() + 10_000;
        while (!existsSync(this.pidFile)) {
            if (Date.now() > deadline) assert.fail(`fake zk did not start: ${this.log()}`);
            await sleep(50);
        }
    }

    running(): boolean {
        if (!existsSync(this.pidFile)) return false;
        try {
            process.kill(Number(readFileSync(this.pidFile, "utf8").trim()), 0);
            return true;
        } catch {
            return false;
        }
    }

    log(): string {
        const f = join(this.root, "zk.log");
        return existsSync(f) ? readFileSync(f, "utf8") : "";
    }

    /** Kills every fake server this install ever started, by pid. */
    kill(): void {
        for (const line of readFileSync(this.pidLog, "utf8").split("\n")) {
            const pid = Number(line.trim());
            if (pid > 0) {
                try {
                    process.kill(pid, "SIGKILL");
                } catch {
                    // already gone
                }
            }
        }
    }

    cleanup(): void {
        this.kill();
        rmSync(this.root, { recursive: true, force: true });
    }
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}
