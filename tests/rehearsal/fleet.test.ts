// The local fleet itself: prerequisites refused by name, hosts with their own address, host name,
// sshd (pinned host keys) and iptables, the service script, idempotent create, refusals of a
// network that is not the fleet's, destroy twice.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
    createFleet,
    destroyFleet,
    fleetNetwork,
    hostsOf,
    inNetns,
    loadFleet,
    sshArgs,
    sshRun,
    zkPid,
    type LocalFleet,
} from "../../rehearsal/fleet";
import { DEFAULT_ZK_VERSION } from "../../rehearsal/zookeeper";
import { assertFleetGone, useFleet } from "../integration/helpers/fleet";

const ROOT = join(__dirname, "..", "..");

/** Runs a snippet with the rehearsal module loaded in a child process, with the given env and user. */
function child(code: string, o: { env?: NodeJS.ProcessEnv; user?: string } = {}): { status: number | null; stderr: string } {
    const node = [process.execPath, "--import", "tsx", "-e", `const r = require(${JSON.stringify(join(ROOT, "rehearsal", "fleet", "index.ts"))}); ${code}`];
    const argv = o.user ? ["runuser", "-u", o.user, "--", ...node] : node;
    const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, env: o.env ?? process.env, encoding: "utf8", timeout: 60_000 });
    return { status: r.status, stderr: r.stderr };
}

describe("the local fleet", { timeout: 600_000 }, () => {
    it("names the Debian package of each missing command, and refuses a non-root user", () => {
        const r = child("r.checkPrerequisites()", { env: { ...process.env, PATH: "/nonexistent" } });
        assert.notEqual(r.status, 0);
        for (const pkg of ["default-jre-headless", "maven", "openssh-client", "coreutils"]) assert.match(r.stderr, new RegExp(`install the Debian package ${pkg}`));
        const nobody = child("r.checkPrerequisites()", { user: "nobody" });
        assert.notEqual(nobody.status, 0);
        assert.match(nobody.stderr, /not root/);
    });

    describe("a fleet of three hosts", () => {
        const name = "it-fleet";
        const spec = { name, version: DEFAULT_ZK_VERSION, ensembles: [{ name: "zk", servers: 3, start: false }] };
        const fleet = useFleet(spec);

        it("gives each host its own address, host name, sshd and netfilter table; same paths for all", async () => {
            const f = fleet();
            assert.deepEqual(loadFleet(name)?.hosts.map((h) => h.address), f.hosts.map((h) => h.address), "another process finds the fleet");
            for (const h of f.hosts) {
                const r = await sshRun(f, h, `uname -n; ip -4 -o addr show dev eth0; cat ${f.hostSettings.paths.myidFile}; iptables -S`);
                assert.equal(r.code, 0, r.stderr);
                const [hostname, addr, myid, ...ipt] = r.stdout.trim().split("\n");
                assert.equal(hostname, h.name);
                assert.match(addr, new RegExp(`inet ${h.address.replace(/\./g, "\\.")}/24`));
                assert.equal(myid.trim(), String(h.id), "the same path shows each host its own files");
                assert.deepEqual(ipt, ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"]);
            }
            // Rules in one host's namespace are not seen by the others nor by the root namespace.
            const [a, b] = f.hosts;
            assert.equal((await inNetns(f, a, ["iptables", "-w", "10", "-A", "INPUT", "-p", "udp", "--dport", "9", "-j", "DROP"])).code, 0);
            assert.doesNotMatch((await inNetns(f, b, ["iptables", "-S"])).stdout, /dport 9/);
            assert.doesNotMatch(execFileSync("iptables", ["-w", "10", "-S"], { encoding: "utf8" }), /dport 9 -j DROP/);
            assert.equal((await inNetns(f, a, ["iptables", "-w", "10", "-D", "INPUT", "-p", "udp", "--dport", "9", "-j", "DROP"])).code, 0);
        });

        it("pins host keys: another host's key for an address is refused", async () => {
            const f = fleet();
            const [a, b] = f.hosts;
            const dir = mkdtempSync(join(tmpdir(), "zkm-kh-"));
            try {
                const keyB = readFileSync(join(b.dir, "ssh", "ssh_host_ed25519_key.pub"), "utf8").trim().split(/\s+/);
                const wrong = join(dir, "known_hosts");
                writeFileSync(wrong, `${a.address} ${keyB[0]} ${keyB[1]}\n`);
                const args = sshArgs(f, a, "true").map((x) => (x === `UserKnownHostsFile=${f.knownHosts}` ? `UserKnownHostsFile=${wrong}` : x));
                const r = spawnSync("ssh", args, { encoding: "utf8", timeout: 30_000 });
                assert.notEqual(r.status, 0);
                assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
            } finally {
                rmSync(dir, { recursive: true, force: true });
            }
        });

        it("runs ZooKeeper through the service script: start, status, stop, disable", async () => {
            const f = fleet();
            const h = hostsOf(f, "zk")[0];
            const svc = f.hostSettings.service;
            const start = await sshRun(f, h, svc.start);
            assert.equal(start.code, 0, start.stderr);
            const pid = zkPid(f, h);
            assert.ok(pid !== undefined, "a pid file with our process");
            assert.match(execFileSync("ps", ["-o", "args=", "-p", String(pid)], { encoding: "utf8" }), new RegExp(`-Dzkmigrate.server=${name}/${h.name} .*QuorumPeerMain`));
            assert.equal((await sshRun(f, h, svc.start)).code, 0, "start when running is fine");
            assert.equal(zkPid(f, h), pid, "...and starts nothing");
            assert.equal((await sshRun(f, h, svc.status)).code, 0);
            const stop = await sshRun(f, h, svc.stop);
            assert.equal(stop.code, 0, stop.stderr);
            assert.equal(zkPid(f, h), undefined);
            const status = await sshRun(f, h, svc.status);
            assert.equal(status.code, 3, "status of a stopped server exits 3");
            assert.match(status.stdout, /not running[\s\S]*last lines of/);
            assert.equal((await sshRun(f, h, svc.disable)).code, 0);
            const refused = await sshRun(f, h, svc.start);
            assert.notEqual(refused.code, 0);
            assert.match(refused.stderr, /disabled/);
            assert.equal(zkPid(f, h), undefined, "a disabled server does not start");
            const restart = await sshRun(f, h, svc.restart);
            assert.notEqual(restart.code, 0, "restart refuses too");
        });

        it("create again completes nothing and changes nothing (idempotent)", async () => {
            const f = fleet();
            const again: LocalFleet = await createFleet(spec);
            assert.deepEqual(
                again.hosts.map((h) => [h.name, h.address, h.sshdPid]),
                f.hosts.map((h) => [h.name, h.address, h.sshdPid]),
                "same hosts, same sshd processes",
            );
            await assert.rejects(createFleet({ ...spec, ensembles: [{ name: "zk", servers: 5, start: false }] }), /exists with another layout/);
        });
    });

    it("refuses a subnet or bridge that is not the fleet's", async () => {
        const name = "it-clash";
        const net = fleetNetwork(name);
        const dummy = "zkm-itclash0";
        await destroyFleet(name);
        try {
            execFileSync("ip", ["link", "add", net.bridge, "type", "bridge"]); // untagged: not the fleet's
            await assert.rejects(createFleet({ name, ensembles: [{ name: "zk", servers: 1, start: false }] }), /exists and is not this fleet's bridge/);
            execFileSync("ip", ["link", "del", net.bridge]);
            execFileSync("ip", ["link", "add", dummy, "type", "bridge"]);
            execFileSync("ip", ["addr", "add", `${net.prefix}.200/24`, "dev", dummy]);
            await assert.rejects(createFleet({ name, ensembles: [{ name: "zk", servers: 1, start: false }] }), /subnet .* is in use/);
        } finally {
            spawnSync("ip", ["link", "del", net.bridge]);
            spawnSync("ip", ["link", "del", dummy]);
            await destroyFleet(name);
        }
        assertFleetGone(name);
    });

    it("destroy twice is fine", async () => {
        await destroyFleet("it-fleet");
        await destroyFleet("it-fleet");
        assertFleetGone("it-fleet");
    });
});
