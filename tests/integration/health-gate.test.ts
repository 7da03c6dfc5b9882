// Health gate failures: a server that cannot start (a corrupt data dir; its client port taken by
// another process) makes its restart script exit non-zero with the reason, within its timeout,
// and no other server is touched (they keep serving, their pids unchanged).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { connectString, hostsOf, inNetns, runScript, zkPid, type LocalFleet, type FleetHost } from "../../rehearsal/fleet";
import { fourLetter, modeOf } from "../../rehearsal/zookeeper";
import { renderRestart, renderStop } from "../../src/scripts";
import type { HostSettings, Membership } from "../../src/types";
import { VERSIONS, fleetName, useFleet, withHealthTimeout } from "./helpers/fleet";
import { describeResult } from "./helpers/steps";
import { create, getChildren, openClient, writeData } from "./helpers/zk";

const GATE_SECONDS = 15;

function membershipOf(f: LocalFleet): Membership {
    return { members: hostsOf(f, "zk").map((h) => ({ id: h.id, address: h.address, peerPort: 2888, electionPort: 3888 })), quorumListenOnAllIPs: false };
}

function restart(f: LocalFleet, h: FleetHost, host: HostSettings, wipeData = false) {
    return runScript(f, h, renderRestart({ host, myid: h.id, mode: "restart", wipeData, spacingSeconds: 0, expect: membershipOf(f) }), { timeoutMs: (host.healthTimeoutSeconds + 150) * 1000 });
}

function sha(file: string): string {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** The other servers: same pids, same config, still serving, and the ensemble takes writes. */
async function assertOthersUntouched(f: LocalFleet, others: FleetHost[], pids: Map<number, number | undefined>, cfgs: Map<number, string>, probe: string): Promise<void> {
    for (const h of others) {
        assert.equal(zkPid(f, h), pids.get(h.id), `${h.name} keeps its pid`);
        assert.equal(sha(join(h.dir, "conf", "zoo.cfg")), cfgs.get(h.id), `${h.name} keeps its zoo.cfg`);
        const mode = modeOf(await fourLetter(h.address, 2181, "srvr"));
        assert.ok(mode === "leader" || mode === "follower", `${h.name} serves (Mode: ${mode})`);
    }
    const c = await openClient(connectString(f, others));
    try {
        await create(c, probe, "still writable");
    } finally {
        c.close();
    }
}

/**
 * A follower of the fleet's ensemble to break, and the check that the others stay as they are
 * now: same pids, same zoo.cfg, serving, and the ensemble takes writes.
 */
async function pickFollower(f: LocalFleet): Promise<{ x: FleetHost; othersUntouched(probe: string): Promise<void> }> {
    const hosts = hostsOf(f, "zk");
    const modes = await Promise.all(hosts.map(async (h) => modeOf(await fourLetter(h.address, 2181, "srvr"))));
    const x = hosts[modes.indexOf("follower")];
    const others = hosts.filter((h) => h !== x);
    const pids = new Map(hosts.map((h) => [h.id, zkPid(f, h)]));
    const cfgs = new Map(hosts.map((h) => [h.id, sha(join(h.dir, "conf", "zoo.cfg"))]));
    return { x, othersUntouched: (probe) => assertOthersUntouched(f, others, pids, cfgs, probe) };
}

/** A process that holds 0.0.0.0:port in a host's network namespace (accepts and closes at once). */
async function holdPort(h: FleetHost, port: number): Promise<ChildProcess> {
    const code = `require("net").createServer((s) => s.destroy()).listen(${port}, "0.0.0.0", () => console.log("listening"))`;
    const child = spawn("ip", ["netns", "exec", h.netns, process.execPath, "-e", code], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the port holder in ${h.netns} did not listen within 10 s`)), 10_000);
        child.stdout!.on("data", (d) => {
            if (String(d).includes("listening")) {
                clearTimeout(timer);
                resolve();
            }
        });
        child.on("exit", (c) => {
            clearTimeout(timer);
            reject(new Error(`the port holder exited (${c})`));
        });
    });
    return child;
}

for (const version of VERSIONS) {
    describe(`health gate failures, ZooKeeper ${version}`, { timeout: 600_000 }, () => {
        const fleet = useFleet({ name: fleetName("gate", version), version, ensembles: [{ name: "zk", servers: 3 }] });

        it("a corrupt data dir: the restart fails with the reason, the others keep serving; moving the data aside recovers", async () => {
            const f = fleet();
            const host = withHealthTimeout(f, GATE_SECONDS);
            const seed = await openClient(connectString(f, "zk"));
            try {
                await writeData(seed, "/it-gate/data", 300);
            } finally {
                seed.close();
            }
            const { x, othersUntouched } = await pickFollower(f);

            const stop = await runScript(f, x, renderStop({ host, disable: false }));
            assert.equal(stop.code, 0, describeResult(x.id, stop));
            // Garbage in every file of the data dir. (A garbage snapshot alone is skipped as invalid,
            // and the server resyncs from the leader; the epoch files are what it cannot get past.)
            const v2 = join(x.dir, "data", "version-2");
            const files = readdirSync(v2);
            assert.ok(files.includes("currentEpoch"), `version-2 holds currentEpoch: ${files.join(", ")}`);
            for (const name of files) writeFileSync(join(v2, name), Buffer.from("\x00\xffcorrupt\x01".repeat(64), "latin1"));

            const r = await restart(f, x, host);
            console.log(`  ZooKeeper ${version}: restart onto a corrupt data dir exited ${r.code} after ${r.ms} ms; reason:\n${r.stderr.split("\n").filter((l) => /zkmigrate:|Exception|ERROR|exited/.test(l)).slice(0, 8).map((l) => `    ${l.slice(0, 200)}`).join("\n")}`);
            assert.notEqual(r.code, 0, "the restart script fails");
            assert.ok(r.ms < (GATE_SECONDS + 30) * 1000, `within the gate's timeout (${r.ms} ms)`);
            assert.match(r.stderr, /service restart failed|health gate failed/);
            assert.match(r.stderr, /currentEpoch|Unable to load database/, "the reason (ZooKeeper's own error) is shown");
            assert.equal(zkPid(f, x), undefined, "the broken server does not run");
            await othersUntouched("/it-gate/after-corrupt");

            // Recovery: the data moved aside (never deleted), the server syncs from the leader.
            const fix = await restart(f, x, host, true);
            assert.equal(fix.code, 0, describeResult(x.id, fix));
            assert.match(fix.stdout, /moved .*version-2 aside/);
            assert.ok(readdirSync(join(x.dir, "data")).some((n) => n.startsWith("version-2.zkmigrate-")), "the corrupt data is kept aside");
            const c = await openClient(`${x.address}:2181`);
            try {
                assert.equal((await getChildren(c, "/it-gate/data")).length, 300, "the recovered server serves the ensemble's data");
            } finally {
                c.close();
            }
            await othersUntouched("/it-gate/after-recovery");
        });

        it("the client port taken: the restart fails with the reason, the others keep serving", async () => {
            const f = fleet();
            const host = withHealthTimeout(f, GATE_SECONDS);
            const { x, othersUntouched } = await pickFollower(f);

            const stop = await runScript(f, x, renderStop({ host, disable: false }));
            assert.equal(stop.code, 0, describeResult(x.id, stop));
            const holder = await holdPort(x, 2181);
            try {
                const r = await restart(f, x, host);
                console.log(`  ZooKeeper ${version}: restart with the client port taken exited ${r.code} after ${r.ms} ms; reason:\n${r.stderr.split("\n").filter((l) => /zkmigrate:|Exception|ERROR|exited/.test(l)).slice(0, 8).map((l) => `    ${l.slice(0, 200)}`).join("\n")}`);
                assert.notEqual(r.code, 0, "the restart script fails");
                assert.ok(r.ms < (GATE_SECONDS + 30) * 1000, `within the gate's timeout (${r.ms} ms)`);
                assert.match(r.stderr, /service restart failed|health gate failed/);
                assert.match(r.stderr, /Address already in use|BindException/, "the reason (ZooKeeper's own error) is shown");
                assert.equal(zkPid(f, x), undefined, "the server that could not bind does not run");
                await othersUntouched("/it-gate-port");
            } finally {
                holder.kill("SIGKILL");
                await new Promise((r) => (holder.exitCode !== null || holder.signalCode !== null ? r(undefined) : holder.once("exit", r)));
            }
            const again = await restart(f, x, host);
            assert.equal(again.code, 0, `with the port free again the restart succeeds: ${describeResult(x.id, again)}`);
        });
        it("peers unreachable: the server runs but never serves; the gate times out with the reason, the others keep serving", async () => {
            const f = fleet();
            const host = withHealthTimeout(f, GATE_SECONDS);
            const { x, othersUntouched } = await pickFollower(f);
            // Quorum and election ports cut in x's own namespace only (a test fixture, not a host step).
            const cut = [
                ["OUTPUT", "-p", "tcp", "-m", "multiport", "--dports", "2888,3888", "-j", "REJECT", "--reject-with", "tcp-reset"],
                ["INPUT", "-p", "tcp", "-m", "multiport", "--dports", "2888,3888", "-j", "REJECT", "--reject-with", "tcp-reset"],
            ];
            for (const rule of cut) {
                const r = await inNetns(f, x, ["iptables", "-w", "10", "-I", ...rule]);
                assert.equal(r.code, 0, r.stderr);
            }
            try {
                const r = await restart(f, x, host);
                console.log(`  ZooKeeper ${version}: restart with the peers unreachable exited ${r.code} after ${r.ms} ms; reason:\n${r.stderr.split("\n").filter((l) => /zkmigrate:/.test(l)).slice(0, 4).map((l) => `    ${l.slice(0, 220)}`).join("\n")}`);
                assert.notEqual(r.code, 0, "the restart script fails");
                assert.ok(r.ms >= GATE_SECONDS * 1000 && r.ms < (GATE_SECONDS + 30) * 1000, `after the gate's ${GATE_SECONDS} s and within its bounds (${r.ms} ms)`);
                assert.match(r.stderr, /health gate failed: 127\.0\.0\.1:2181 did not answer srvr with a Mode within 15 s/);
                assert.match(r.stderr, /not currently serving requests/, "the reason: it runs, but is not in a serving quorum");
                assert.match(r.stderr, /zk-service: ZooKeeper \S+ runs on/, "the service status is shown");
                await othersUntouched("/it-gate-peers");
            } finally {
                for (const rule of cut) await inNetns(f, x, ["iptables", "-w", "10", "-D", ...rule]);
            }
            const again = await restart(f, x, host);
            assert.equal(again.code, 0, `with the peers reachable again the restart succeeds: ${describeResult(x.id, again)}`);
            await othersUntouched("/it-gate-peers-after");
        });
    });
}
