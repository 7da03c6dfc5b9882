// The split's dead man's switch on real namespace hosts with real iptables (src/scripts/deadman.ts):
// armed by split-arm over SSH (it outlives the SSH session), it lifts the rules at its deadline when
// no restart committed the split and no other target serves; it keeps them when another target
// serves; a commit leaves it armed (a committed host is lifted too when no target serves); the firewall's removal forgets it. Short bounds
// (seconds) here; the config's bound is validated apart (tests/unit/procedures/gates.test.ts).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { describe, it } from "node:test";
import { hostsOf, inNetns, pidAlive, runScript, type FleetHost, type LocalFleet } from "../../rehearsal/fleet";
import { commandsOf, renderGate, renderSplitArm, splitStateDir } from "../../src/scripts";
import type { Deadman } from "../../src/steps";
import { DEFAULT_ZK_VERSION } from "../../rehearsal/zookeeper";
import { fleetName, useFleet } from "./helpers/fleet";

const ENSEMBLE = "dm";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The rules of this split in a host's namespace (jumps and chain rules). */
async function splitRules(f: LocalFleet, h: FleetHost): Promise<string[]> {
    const r = await inNetns(f, h, ["iptables", "-w", "10", "-S"]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split("\n").filter((l) => l.includes(`zkmigrate:${ENSEMBLE}`));
}

/** The switch's directory as seen from here: the host's dir holds what the host sees at its mount point. */
function stateDir(f: LocalFleet, h: FleetHost): string {
    const inside = splitStateDir(f.hostSettings, ENSEMBLE);
    assert.equal(dirname(inside), f.mountPoint, "the fleet's data dir is <mount point>/data");
    return join(h.dir, basename(inside));
}

function readState(f: LocalFleet, h: FleetHost, name: string): string {
    const p = join(stateDir(f, h), name);
    return existsSync(p) ? readFileSync(p, "utf8").trim() : "";
}

async function waitState(f: LocalFleet, h: FleetHost, want: string, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (readState(f, h, "state") !== want) {
        if (Date.now() > end) {
            const log = existsSync(join(stateDir(f, h), "switch.log")) ? readFileSync(join(stateDir(f, h), "switch.log"), "utf8") : "(no log)";
            assert.fail(`${h.name}: the split's state is '${readState(f, h, "state")}', expected '${want}' within ${ms} ms; switch log:\n${log}`);
        }
        await sleep(200);
    }
}

describe("the split's dead man's switch (real iptables, SSH)", { timeout: 300_000 }, () => {
    const fleet = useFleet({
        name: fleetName("dm", DEFAULT_ZK_VERSION),
        version: DEFAULT_ZK_VERSION,
        ensembles: [
            { name: "source", servers: 3 },
            { name: "target", servers: 3, start: false },
        ],
    });
    const setup = (o: { seconds: number; commitBy: number; partners?: { address: string; port: number }[] }) => {
        const f = fleet();
        const sources = hostsOf(f, "source");
        const targets = hostsOf(f, "target");
        const peers = sources.map((h) => h.address);
        const deadman: Deadman = { seconds: o.seconds, commitBySeconds: o.commitBy, probeSeconds: 2, partners: o.partners ?? targets.slice(1).map((t) => ({ address: t.address, port: 2181 })) };
        const attempt = { startedAt: Math.floor(Date.now() / 1000) };
        const arm = renderSplitArm({ host: f.hostSettings, ensemble: ENSEMBLE, peers, deadman, attempt });
        const remove = commandsOf({ id: "firewall", after: [], kind: "firewall", target: { host: targets[0].address }, server: targets[0].id, ensemble: ENSEMBLE, peers, settings: f.hostSettings }).delete!;
        return { f, h: targets[0], sources, targets, peers, deadman, attempt, arm, remove };
    };

    it("the gate passes on a target that can be split (read-only: no rules, no state)", async () => {
        const { f, h, peers, deadman, attempt } = setup({ seconds: 60, commitBy: 30 });
        const gate = renderGate({ host: f.hostSettings, ensemble: ENSEMBLE, attempt, gate: { guards: "the firewall split", serving: false, firewallPeers: peers, deadman } });
        const r = await runScript(f, h, gate, { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /gate passed/);
        assert.deepEqual(await splitRules(f, h), []);
        assert.equal(existsSync(stateDir(f, h)), false);
        // A server that must serve and does not (the targets do not run here) fails the gate, naming why.
        const serving = renderGate({ host: { ...f.hostSettings, healthTimeoutSeconds: 5 }, ensemble: ENSEMBLE, attempt, gate: { guards: "the firewall split", serving: true, firewallPeers: peers } });
        const bad = await runScript(f, h, serving, { timeoutMs: 90_000 });
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /gate: ZooKeeper does not serve here within 5 s: .*connection refused/);
    });

    it("no commit, no other target serving: the switch lifts the rules at its deadline, after the SSH session ended", async () => {
        const { f, h, arm, remove } = setup({ seconds: 12, commitBy: 8 });
        const r = await runScript(f, h, arm, { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /armed: pid \d+ decides at /);
        assert.equal((await splitRules(f, h)).length, 2 + 2 * 3, "two jumps and a rule per source and direction");
        assert.equal(readState(f, h, "state"), "armed");
        const pid = Number(readState(f, h, "switch.pid"));
        assert.ok(pidAlive(pid), "the switch runs after the SSH session ended");
        await waitState(f, h, "lifted", 40_000);
        assert.deepEqual(await splitRules(f, h), []);
        assert.match(readState(f, h, "switch.log"), /no other target serves: the split is lifted/);
        assert.equal(pidAlive(pid), false);
        const rm = await runScript(f, h, remove, { timeoutMs: 60_000 });
        assert.equal(rm.code, 0, rm.stderr);
        assert.equal(existsSync(stateDir(f, h)), false, "the removal forgets the split's state");
    });

    it("another target serves: the rules stay (kept)", async () => {
        // The third source stands for a target that serves: it is no peer of this split, so reachable.
        const f0 = fleet();
        const third = hostsOf(f0, "source")[2];
        const { f, h, remove } = setup({ seconds: 12, commitBy: 8 });
        // Two sources cut off; the partner (the third) is probed from the target.
        const peers = hostsOf(f, "source").slice(0, 2).map((x) => x.address);
        const deadman: Deadman = { seconds: 12, commitBySeconds: 8, probeSeconds: 2, partners: [{ address: third.address, port: 2181 }] };
        const r = await runScript(f, h, renderSplitArm({ host: f.hostSettings, ensemble: ENSEMBLE, peers, deadman, attempt: { startedAt: Math.floor(Date.now() / 1000) } }), { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        await waitState(f, h, "kept", 40_000);
        assert.equal((await splitRules(f, h)).length, 2 + 2 * 2);
        assert.match(readState(f, h, "switch.log"), new RegExp(`${third.address.replace(/\./g, "\\.")} serves \\(Mode: (leader|follower)\\): .* the rules stay`));
        const rm = await runScript(f, h, remove, { timeoutMs: 60_000 });
        assert.equal(rm.code, 0, rm.stderr);
        assert.deepEqual(await splitRules(f, h), []);
    });

    it("the commit (the armed host's firewall step) leaves the switch armed: with no target serving at the deadline a committed host is lifted too; a new attempt arms it again; a late commit is refused", async () => {
        const { f, h, arm, remove, peers } = setup({ seconds: 12, commitBy: 8 });
        // The firewall step of an armed host commits the split there (its create).
        const commit = commandsOf({ id: "firewall", after: [], kind: "firewall", target: { host: h.address }, server: h.id, settings: f.hostSettings, ensemble: ENSEMBLE, peers: [...peers], commit: true }).create;
        assert.equal((await runScript(f, h, arm, { timeoutMs: 60_000 })).code, 0);
        const pid = Number(readState(f, h, "switch.pid"));
        const c = await runScript(f, h, commit, { timeoutMs: 60_000 });
        assert.equal(c.code, 0, c.stderr + c.stdout);
        assert.match(c.stdout, /split committed on this host/);
        assert.equal(pidAlive(pid), true, "the commit leaves the switch armed");
        assert.equal(readState(f, h, "state"), "committed");
        // Committing again is fine (a firewall step run again).
        assert.equal((await runScript(f, h, commit, { timeoutMs: 60_000 })).code, 0);
        // No other target serves at the deadline (this host's restart never came): a committed host
        // that kept its rules would hold a stale history; lifted, it catches up with the source.
        await waitState(f, h, "lifted", 40_000);
        assert.deepEqual(await splitRules(f, h), [], "a committed host whose target ensemble does not serve is lifted");
        // A new attempt arms it again, like any other host.
        const again = await runScript(f, h, setup({ seconds: 60, commitBy: 30 }).arm, { timeoutMs: 60_000 });
        assert.equal(again.code, 0, again.stderr);
        assert.equal(readState(f, h, "state"), "armed");
        assert.ok(pidAlive(Number(readState(f, h, "switch.pid"))), "armed again: a switch runs");
        assert.equal((await splitRules(f, h)).length, 2 + 2 * 3, "the rules are up again");
        assert.equal((await runScript(f, h, remove, { timeoutMs: 60_000 })).code, 0);

        // Armed, then the commit window closes: the restart must not run.
        const late = setup({ seconds: 14, commitBy: 6 });
        assert.equal((await runScript(f, h, late.arm, { timeoutMs: 60_000 })).code, 0);
        await sleep(7_000);
        const refused = await runScript(f, h, commit, { timeoutMs: 60_000 });
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /too late to commit the split/);
        await waitState(f, h, "lifted", 40_000);
        // After the switch acted, a commit refuses too (run pulumi up again).
        const after = await runScript(f, h, commit, { timeoutMs: 60_000 });
        assert.equal(after.code, 1);
        assert.match(after.stderr, /the split on this host is 'lifted'/);
        assert.equal((await runScript(f, h, remove, { timeoutMs: 60_000 })).code, 0);
    });
});
