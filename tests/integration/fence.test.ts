// The split's client fence on real namespace hosts with real iptables, over SSH
// (src/scripts/fence.ts): a fenced target refuses clients from everywhere but loopback, waits
// for the other targets' fences, catches up with the sources' zxid; it lifts itself when its step
// fails, at its deadline (its timer outlives the SSH session), or in the restart into T.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { hostsOf, inNetns, pidAlive, runScript, type FleetHost, type LocalFleet } from "../../rehearsal/fleet";
import { DEFAULT_ZK_VERSION, fourLetter, modeOf } from "../../rehearsal/zookeeper";
import { commandsOf } from "../../src/scripts";
import { call, connectClient } from "../../src/zk";
import { firewallChainName } from "../../src/scripts/firewall";
import { fenceChains, renderSplitFence } from "../../src/scripts/fence";
import type { Fence } from "../../src/steps";
import type { Membership } from "../../src/types";
import { fleetName, useFleet } from "./helpers/fleet";
import { describeResult } from "./helpers/steps";

const ENSEMBLE = "fc";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fence's rules in a host's namespace (jumps and chain rules). */
async function fenceRules(f: LocalFleet, h: FleetHost): Promise<string[]> {
    const r = await inNetns(f, h, ["iptables", "-w", "10", "-S"]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split("\n").filter((l) => l.includes(fenceChains(ENSEMBLE).tag));
}

/** Whether host:2181 answers srvr from here (the root namespace: not loopback of the host). */
async function answers(h: FleetHost): Promise<boolean> {
    try {
        return modeOf(await fourLetter(h.address, 2181, "srvr", 1500)) !== undefined;
    } catch {
        return false;
    }
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!(await cond())) {
        if (Date.now() > end) assert.fail(`${what}: not within ${ms} ms`);
        await sleep(250);
    }
}

describe("the split's client fence (real iptables, SSH)", { timeout: 300_000 }, () => {
    const fleet = useFleet({ name: fleetName("fence", DEFAULT_ZK_VERSION), version: DEFAULT_ZK_VERSION, ensembles: [{ name: "zk", servers: 3 }] });
    // Servers 2 and 3 stand for two targets of a joint ensemble; server 1 for the sources.
    const setup = (o: { seconds?: number; wait?: number; sources?: string[] } = {}) => {
        const f = fleet();
        const [s1, t2, t3] = hostsOf(f, "zk");
        const attempt = { startedAt: Math.floor(Date.now() / 1000) };
        const fence = (h: FleetHost, other: FleetHost): Fence => ({
            barrier: [{ address: other.address, port: 2181 }],
            sources: (o.sources ?? [s1.address]).map((address) => ({ address, port: 2181 })),
            seconds: o.seconds ?? 120,
            waitSeconds: o.wait ?? 20,
        });
        const script = (h: FleetHost, other: FleetHost) => renderSplitFence({ host: f.hostSettings, ensemble: ENSEMBLE, fence: fence(h, other), attempt });
        return { f, s1, t2, t3, script };
    };

    it("two targets fence together: both pass the barrier, catch up, refuse clients from outside and answer loopback", async () => {
        const { f, s1, t2, t3, script } = setup();
        // Transactions first, so that the catch-up has a zxid of a write to reach (not an epoch's start).
        const client = await connectClient(`${s1.address}:2181`, 15_000);
        try {
            for (let i = 0; i < 20; i++) await call(`create /fence-${i}`, 10_000, (cb) => client.create(`/fence-${i}`, Buffer.from("x"), cb));
        } finally {
            client.close();
        }
        const [r2, r3] = await Promise.all([runScript(f, t2, script(t2, t3), { timeoutMs: 90_000 }), runScript(f, t3, script(t3, t2), { timeoutMs: 90_000 })]);
        assert.equal(r2.code, 0, describeResult(t2.id, r2));
        assert.equal(r3.code, 0, describeResult(t3.id, r3));
        for (const r of [r2, r3]) {
            assert.match(r.stdout, /every other target is fenced/);
            assert.match(r.stdout, /the sources are at zxid 0x[0-9a-f]+/);
            assert.match(r.stdout, /caught up: this server has zxid 0x[0-9a-f]+ >= 0x[0-9a-f]+/);
        }
        assert.equal(await answers(t2), false, "a fenced target refuses clients from outside");
        assert.equal(await answers(t3), false);
        assert.equal(await answers(s1), true, "the sources are not fenced");
        // Loopback still answers (the health gate and the fence's own catch-up use it).
        const lo = await inNetns(f, t2, ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2181 && printf srvr >&3 && cat <&3"]);
        assert.match(lo.stdout, /Mode: /);
        assert.equal((await fenceRules(f, t2)).length, 2 + 2, "two jumps, a rule per direction");

        // The restart into T lifts the fence once the old server stopped (here: the same membership).
        const membership: Membership = { members: hostsOf(f, "zk").map((h) => ({ id: h.id, address: h.address, peerPort: 2888, electionPort: 3888 })), quorumListenOnAllIPs: false };
        const restart = commandsOf({ id: "restart-2", after: [], kind: "restart", target: { host: t2.address }, server: t2.id, settings: f.hostSettings, running: true, membership, before: membership, wipeData: false, spacingSeconds: 0, unfence: { ensemble: ENSEMBLE } }).update!;
        const rr = await runScript(f, t2, restart, { timeoutMs: 180_000 });
        assert.equal(rr.code, 0, describeResult(t2.id, rr));
        assert.match(rr.stdout, /lifted the split's client fence on port 2181/);
        assert.deepEqual(await fenceRules(f, t2), []);
        await waitFor("target 2 answers clients from outside after its restart", () => answers(t2), 30_000);

        // Target 3's fence is lifted by its timer at the deadline when no restart came: see the next test.
        const again = await runScript(f, t3, script(t3, t2).replace(/^readonly DEADLINE=.*$/m, `readonly DEADLINE='${Math.floor(Date.now() / 1000) + 1}'`), { timeoutMs: 60_000 });
        assert.equal(again.code, 1, "t2 no longer refuses: the barrier fails");
        await waitFor("target 3 answers clients after its failed fence step lifted the fence", () => answers(t3), 10_000);
        assert.deepEqual(await fenceRules(f, t3), []);
    });

    it("a fence whose barrier fails lifts itself at once; one that no restart lifts goes at its deadline, after the SSH session ended", async () => {
        const { f, t2, t3, script } = setup({ seconds: 10, wait: 3 });
        // Target 3 never fences: target 2's barrier fails, naming it, and target 2 answers again.
        const r = await runScript(f, t2, script(t2, t3), { timeoutMs: 60_000 });
        assert.equal(r.code, 1, describeResult(t2.id, r));
        assert.match(r.stderr, new RegExp(`target ${t3.address.replace(/\./g, "\\.")}:2181 still accepts connections after 3 s`));
        assert.match(r.stderr, /the fence step failed: lifting this target's fence/);
        assert.deepEqual(await fenceRules(f, t2), []);
        assert.equal(await answers(t2), true);

        // No source answers: nothing to catch up with, refused, lifted.
        const nosrc = setup({ seconds: 60, wait: 3, sources: ["192.0.2.254"] });
        const [n2, n3] = await Promise.all([runScript(f, t2, nosrc.script(t2, t3), { timeoutMs: 60_000 }), runScript(f, t3, nosrc.script(t3, t2), { timeoutMs: 60_000 })]);
        for (const [h, x] of [[t2, n2], [t3, n3]] as const) {
            assert.equal(x.code, 1, describeResult(h.id, x));
            assert.match(x.stderr, /no source server answered srvr with a Mode and a Zxid/);
        }
        await waitFor("both answer again", async () => (await answers(t2)) && (await answers(t3)), 10_000);

        // Both fence and pass; nobody restarts: the timers lift the fences at the deadline.
        const late = setup({ seconds: 12, wait: 10 });
        const both = await Promise.all([runScript(f, t2, late.script(t2, t3), { timeoutMs: 60_000 }), runScript(f, t3, late.script(t3, t2), { timeoutMs: 60_000 })]);
        both.forEach((x, i) => assert.equal(x.code, 0, describeResult([t2, t3][i].id, x)));
        // The fence's directory as seen from here: the host's dir holds what the host sees at its mount point.
        const pid = Number(readFileSync(join(t2.dir, `zkmigrate-fence-${firewallChainName(ENSEMBLE)}`, "timer.pid"), "utf8").trim());
        assert.ok(pid > 0 && pidAlive(pid), "the timer runs after the SSH session ended");
        assert.equal(await answers(t2), false);
        await waitFor("the timers lift both fences at the deadline", async () => (await answers(t2)) && (await answers(t3)), 40_000);
        assert.deepEqual(await fenceRules(f, t2), []);
        assert.deepEqual(await fenceRules(f, t3), []);
        await waitFor("the timer is gone", async () => !pidAlive(pid), 10_000);
    });
});
