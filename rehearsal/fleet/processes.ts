// The fleet's processes as the root namespace sees them: commands run bounded, pids checked
// against their command lines (a host's JVM carries the host's mark), killed by pid and waited
// for, and a host's service script run in the host's own namespaces.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { findCommand, sleep } from "../zookeeper";
import type { LocalFleet, FleetHost } from "./state";

export interface Run {
    code: number;
    stdout: string;
    stderr: string;
    timedOut: boolean;
}

export function run(cmd: string, args: string[], o: { timeoutMs?: number; input?: string } = {}): Promise<Run> {
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
export async function must(cmd: string, args: string[], what: string, timeoutMs = 30_000): Promise<string> {
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

export function cmdline(pid: number): string[] {
    try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s.length > 0);
    } catch {
        return [];
    }
}

export function readPid(file: string): number | undefined {
    try {
        const t = readFileSync(file, "utf8").trim();
        return /^\d+$/.test(t) ? Number(t) : undefined;
    } catch {
        return undefined;
    }
}

/** SIGTERM, then SIGKILL after graceMs; waits (bounded) until none of them runs. */
export async function killPids(pids: number[], graceMs = 10_000): Promise<void> {
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

export function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
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
/** The processes of a host carry this JVM property (the service script checks it before a kill). */
export function processMark(fleet: string, host: string): string {
    return `-Dzkmigrate.server=${fleet}/${host}`;
}

/** Whether a pid is the server of host `host` of fleet `fleet` (its command line has the mark). */
export function isHostServer(fleet: string, host: string, pid: number | undefined): pid is number {
    return pid !== undefined && pidAlive(pid) && cmdline(pid).includes(processMark(fleet, host));
}

/** The server's current pid on a host (from its pid file, checked against the process), or undefined. */
export function zkPid(f: LocalFleet, h: FleetHost): number | undefined {
    const pid = readPid(h.zkPidFile);
    return isHostServer(f.name, h.name, pid) ? pid : undefined;
}

/** Runs the host's service script directly (not over SSH) in the host's namespaces (those of its sshd). */
export async function hostService(f: LocalFleet, h: FleetHost, verb: "start" | "stop" | "restart" | "status" | "disable" | "enable"): Promise<Run> {
    if (h.sshdPid === undefined || !pidAlive(h.sshdPid)) {
        throw new Error(`zkmigrate fleet ${f.name}: sshd of ${h.name} does not run (its namespaces hold the host's view of files)`);
    }
    const nsenter = findCommand("nsenter") ?? "nsenter";
    const service = h.kind === "kafka" ? "kafka-service" : "zk-service";
    return run(nsenter, ["-t", String(h.sshdPid), "-n", "-m", "-u", "--", join(f.mountPoint, "bin", service), verb], { timeoutMs: h.kind === "kafka" ? 150_000 : 60_000 });
}
