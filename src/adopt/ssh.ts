// The system `ssh` client, as `zkmigrate adopt` uses it: batch mode (never a prompt), the host
// key checked against a known_hosts file (or, only when the operator says so, not checked), each
// call bounded.
import { spawn } from "node:child_process";
import { asRemoteCommand } from "../scripts/shell";

export interface SshOptions {
    user: string;
    port: number;
    /** -i: the private key file; unset: ssh's own choice (agent, ~/.ssh/id_*). */
    identityFile?: string;
    /** The known_hosts file the host keys are checked against (StrictHostKeyChecking=yes). */
    knownHostsFile?: string;
    /** No host key check at all (StrictHostKeyChecking=no, nothing recorded); only with --insecure-host-keys. */
    insecureHostKeys?: boolean;
    /** Bound of each call, in milliseconds (connect and probe). */
    timeoutMs: number;
    /** The ssh binary (default `ssh` on PATH). */
    ssh?: string;
}

export interface SshResult {
    code: number;
    stdout: string;
    stderr: string;
    timedOut: boolean;
}

/** The ssh command line (without the binary) that runs `remoteCommand` on `host`. */
export function sshArgs(o: SshOptions, host: string, remoteCommand: string): string[] {
    if (!o.insecureHostKeys && !o.knownHostsFile) throw new Error("ssh: a known_hosts file is needed (or insecureHostKeys)");
    const hostKeys = o.insecureHostKeys
        ? ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null"]
        : ["-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${o.knownHostsFile}`, "-o", "GlobalKnownHostsFile=/dev/null"];
    return [
        ...(o.identityFile ? ["-i", o.identityFile, "-o", "IdentitiesOnly=yes"] : []),
        ...hostKeys,
        "-o",
        "BatchMode=yes",
        "-o",
        `ConnectTimeout=${Math.max(1, Math.min(30, Math.floor(o.timeoutMs / 2000)))}`,
        "-o",
        "LogLevel=ERROR",
        "-p",
        String(o.port),
        "-l",
        o.user,
        "--",
        host,
        remoteCommand,
    ];
}

/** Runs a rendered script on `host` under bash; resolves with its exit code and output (124 on timeout). */
export function runScriptOverSsh(o: SshOptions, host: string, script: string): Promise<SshResult> {
    return new Promise((resolve) => {
        const child = spawn(o.ssh ?? "ssh", sshArgs(o, host, asRemoteCommand(script)), { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        let timedOut = false;
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
        }, o.timeoutMs);
        let done = false;
        const finish = (code: number) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            resolve({ code, stdout, stderr, timedOut });
        };
        child.on("error", (e) => {
            stderr += (e as NodeJS.ErrnoException).code === "ENOENT" ? `${o.ssh ?? "ssh"} not found (install openssh-client)` : String(e);
            finish(127);
        });
        child.on("close", (code, signal) => finish(timedOut ? 124 : (code ?? (signal ? 128 : 1))));
    });
}
