// The split's client fence on real namespace hosts with real iptables, over SSH
// (src/scripts/fence.ts): a fenced target refuses clients from everywhere but loopback; its
// catch-up waits for the sources' zxid; the fence goes when the catch-up fails, at its deadline
// (its timer outlives the SSH session), or in the restart into T, which marks the server so that a
// retry of the split leaves it alone.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { hostsOf, inNetns, pidAlive, runScript, type FleetHost, type LocalFleet } from "../../rehearsal/fleet";
import { DEFAULT_ZK_VERSION, fourLetter, modeOf } from "../../rehearsal/zookeeper";
import { commandsOf } from "../../src/scripts";
import { call, connectClient } from "../../src/zk";
import { firewallChainName } from "../../src/scripts/firewall";
import { fenceChains, renderSplitCatchup, renderSplitFence, targetFingerprint } from "../../src/scripts/fence";
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
    const setup = (o: { seconds?: number; wait?: number; sources?: string[]; target?: string } = {}) => {
        const f = fleet();
        const [s1, t2, t3] = hostsOf(f, "zk");
        const membership: Membership = { members: hostsOf(f, "zk").map((h) => ({ id: h.id, address: h.address, peerPort: 2888, electionPort: 3888 })), quorumListenOnAllIPs: false };
        const target = o.target ?? targetFingerprint(membership);
        const attempt = { startedAt: Math.floor(Date.now() / 1000) };
        const fence = renderSplitFence({ host: f.hostSettings, ensemble: ENSEMBLE, fence: { seconds: o.seconds ?? 120, target }, attempt });
        const catchup = renderSplitCatchup({ host: f.hostSettings, ensemble: ENSEMBLE, catchup: { sources: (o.sources ?? [s1.address]).map((address) => ({ address, port: 2181 })), target, waitSeconds: o.wait ?? 20 } });
        const both = (script: string) => Promise.all([t2, t3].map((h) => runScript(f, h, script, { timeoutMs: 90_000 })));
        return { f, s1, t2, t3, membership, target, fence, catchup, both };
    };

    it("two targets fenced, then caught up: they refuse clients from outside and answer loopback; the restart lifts the fence and marks the server, which a later attempt leaves alone", async () => {
        const { f, s1, t2, t3, membership, target, fence, catchup, both } = setup();
        // Transactions first, so that the catch-up has a zxid of a write to reach (not an epoch's start).
        const client = await connectClient(`${s1.address}:2181`, 15_000);
        try {
            for (let i = 0; i < 20; i++) await call(`create /fence-${i}`, 10_000, (cb) => client.create(`/fence-${i}`, Buffer.from("x"), cb));
        } finally {
            client.close();
        }
        const fenced = await both(fence);
        fenced.forEach((r, i) => {
            assert.equal(r.code, 0, describeResult([t2, t3][i].id, r));
            assert.match(r.stdout, /fenced: port 2181 answers loopback only/);
        });
        assert.equal(await answers(t2), false, "a fenced target refuses clients from outside");
        assert.equal(await answers(t3), false);
        assert.equal(await answers(s1), true, "the sources are not fenced");
        // Loopback still answers (the health gate and the catch-up use it).
        const lo = await inNetns(f, t2, ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2181 && printf srvr >&3 && cat <&3"]);
        assert.match(lo.stdout, /Mode: /);
        assert.equal((await fenceRules(f, t2)).length, 2 + 2, "two jumps, a rule per direction");
        const caught = await both(catchup);
        caught.forEach((r, i) => {
            assert.equal(r.code, 0, describeResult([t2, t3][i].id, r));
            assert.match(r.stdout, /the sources are at zxid 0x[0-9a-f]+/);
            assert.match(r.stdout, /caught up: this server has zxid 0x[0-9a-f]+ >= 0x[0-9a-f]+/);
        });
        assert.equal(await answers(t2), false, "still fenced after the catch-up: only the restart lifts it");

        // The restart into T lifts the fence once the old server stopped (here: the same membership) and marks the server.
        const restart = commandsOf({ id: "restart-2", after: [], kind: "restart", target: { host: t2.address }, server: t2.id, settings: f.hostSettings, running: true, membership, before: membership, wipeData: false, spacingSeconds: 0, unfence: { ensemble: ENSEMBLE, target } }).update!;
        const rr = await runScript(f, t2, restart, { timeoutMs: 180_000 });
        assert.equal(rr.code, 0, describeResult(t2.id, rr));
        assert.match(rr.stdout, /lifted the split's client fence on port 2181/);
        assert.deepEqual(await fenceRules(f, t2), []);
        assert.equal(readFileSync(join(t2.dir, "data", "version-2", `zkmigrate-in-target-${firewallChainName(ENSEMBLE)}`), "utf8").trim(), target, "the marker beside the data names the membership joined");
        await waitFor("target 2 answers clients from outside after its restart", () => answers(t2), 30_000);
        // A later attempt of the same split (a retry): the restarted server is neither fenced nor caught up.
        const again = setup();
        const rf = await runScript(f, t2, again.fence, { timeoutMs: 60_000 });
        assert.equal(rf.code, 0, describeResult(t2.id, rf));
        assert.match(rf.stdout, /was restarted into the target ensemble by an earlier attempt of this split .*: nothing to fence/);
        const rc = await runScript(f, t2, again.catchup, { timeoutMs: 60_000 });
        assert.equal(rc.code, 0, describeResult(t2.id, rc));
        assert.match(rc.stdout, /nothing to catch up/);
        assert.equal(await answers(t2), true);
        // Target 3 never restarted: the timer lifts it (the next test); here the test lifts it as a restart would.
        const lift = commandsOf({ id: "restart-3", after: [], kind: "restart", target: { host: t3.address }, server: t3.id, settings: f.hostSettings, running: true, membership, before: membership, wipeData: false, spacingSeconds: 0, unfence: { ensemble: ENSEMBLE, target: "8=192.0.2.8:2888:3888" } }).update!;
        assert.equal((await runScript(f, t3, lift, { timeoutMs: 180_000 })).code, 0);
        await waitFor("target 3 answers again", () => answers(t3), 30_000);
    });

    it("a catch-up that cannot catch up lifts its own fence; a fence that no restart lifts goes at its deadline, after the SSH session ended", async () => {
        // Another membership than the one the first test marked: these servers are not in it.
        const nosrc = setup({ wait: 3, sources: ["192.0.2.254"], target: "9=192.0.2.9:2888:3888" });
        const { f, t2, t3 } = nosrc;
        assert.equal((await runScript(f, t3, nosrc.fence, { timeoutMs: 60_000 })).code, 0);
        assert.equal(await answers(t3), false);
        const r = await runScript(f, t3, nosrc.catchup, { timeoutMs: 60_000 });
        assert.equal(r.code, 1, describeResult(t3.id, r));
        assert.match(r.stderr, /no source server answered srvr with a Mode and a Zxid/);
        assert.match(r.stderr, /the catch-up failed: lifting this target's fence/);
        assert.deepEqual(await fenceRules(f, t3), []);
        await waitFor("target 3 answers again", () => answers(t3), 10_000);

        // Both fenced and caught up; nobody restarts: the timers lift the fences at the deadline.
        const late = setup({ seconds: 12, target: "9=192.0.2.9:2888:3888" });
        for (const x of await late.both(late.fence)) assert.equal(x.code, 0, x.stderr);
        for (const x of await late.both(late.catchup)) assert.equal(x.code, 0, x.stderr);
        // The fence's directory as seen from here: the host's dir holds what the host sees at its mount point.
        const pid = Number(readFileSync(join(t2.dir, `zkmigrate-fence-${firewallChainName(ENSEMBLE)}`, "timer.pid"), "utf8").trim());
        assert.ok(pid > 0 && pidAlive(pid), "the timer runs after the SSH session ended");
        assert.equal(await answers(t2), false);
        await waitFor("the timers lift both fences at the deadline", async () => (await answers(t2)) && (await answers(t3)), 40_000);
        // The jumps go first (the port answers), the chains a moment later.
        await waitFor("the fences' chains are gone", async () => (await fenceRules(f, t2)).length + (await fenceRules(f, t3)).length === 0, 10_000);
        await waitFor("the timer is gone", async () => !pidAlive(pid), 10_000);
    });
});
