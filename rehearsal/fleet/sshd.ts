// SSH on the fleet: the fleet's key (root login by it only), per host a host key pinned in the
// fleet's known_hosts and an sshd in the host's network, mount and UTS namespaces (where the
// host's directory is mounted at the fleet's mount point and its /etc/hosts names the fleet's
// hosts), and the ssh command line that runs a rendered script as @pulumi/command sends it.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { asRemoteCommand } from "../../src/scripts";
import { findCommand, sleep } from "../zookeeper";
import { fleetTag } from "./network";
import { cmdline, must, pidAlive, readPid, tcpOpen } from "./processes";
import { host, type LocalFleet, type FleetHost, type ScriptResult } from "./state";

/** The fleet's key pair (made once) and the authorized_keys every host's sshd reads. */
export async function ensureFleetKey(sshDir: string, name: string, tools: Record<string, string>): Promise<{ sshKey: string; knownHosts: string }> {
    const sshKey = join(sshDir, "id_ed25519");
    if (!existsSync(sshKey)) {
        await must(tools["ssh-keygen"], ["-q", "-t", "ed25519", "-N", "", "-C", fleetTag(name), "-f", sshKey], "generating the fleet's SSH key");
    }
    const authorizedKeys = join(sshDir, "authorized_keys");
    writeFileSync(authorizedKeys, readFileSync(`${sshKey}.pub`), { mode: 0o600 });
    return { sshKey, knownHosts: join(sshDir, "known_hosts") };
}

/** A host's host key (made once) and its sshd_config. */
export async function installSshd(f: LocalFleet, h: FleetHost, tools: Record<string, string>): Promise<void> {
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
}

/** sshd rewrites its process title ("sshd: /usr/sbin/sshd -f <config> ... [listener] ..."). */
export function isOurSshd(mountPoint: string, pid: number): boolean {
    return pidAlive(pid) && cmdline(pid).join(" ").includes(` -f ${join(mountPoint, "ssh", "sshd_config")}`);
}


export async function writeKnownHosts(f: LocalFleet): Promise<void> {
    const lines = f.hosts.map((h) => {
        const pub = readFileSync(join(h.dir, "ssh", "ssh_host_ed25519_key.pub"), "utf8").trim().split(/\s+/);
        return `${h.address} ${pub[0]} ${pub[1]}\n`;
    });
    writeFileSync(f.knownHosts, lines.join(""), { mode: 0o644 });
}

/** Starts the host's sshd (in the host's network, mount and UTS namespaces) unless it runs. */
export async function ensureSshd(f: LocalFleet, h: FleetHost, tools: Record<string, string>): Promise<void> {
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

/** Waits (bounded, 20 s for all) until every host's sshd accepts connections. */
export async function waitSshd(f: LocalFleet, hosts: FleetHost[]): Promise<void> {
    const sshDeadline = Date.now() + 20_000;
    for (const h of hosts) {
        while (!(await tcpOpen(h.address, 22))) {
            if (Date.now() > sshDeadline) throw new Error(`zkmigrate fleet ${f.name}: sshd of ${h.name} does not accept connections on ${h.address}:22 (log: ${join(h.dir, "ssh", "sshd.log")})`);
            await sleep(100);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SSH, as @pulumi/command runs a script

export function sshArgs(f: LocalFleet, h: FleetHost, remoteCommand: string): string[] {
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
export function runScript(f: LocalFleet, h: FleetHost | string | number, script: string, o: { timeoutMs?: number } = {}): Promise<ScriptResult> {
    const target = typeof h === "object" ? h : host(f, h);
    return sshRun(f, target, asRemoteCommand(script), o.timeoutMs ?? 300_000);
}

/** Runs a plain command line on a host over SSH (same options as runScript). */
export function sshRun(f: LocalFleet, h: FleetHost, remoteCommand: string, timeoutMs = 60_000): Promise<ScriptResult> {
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
