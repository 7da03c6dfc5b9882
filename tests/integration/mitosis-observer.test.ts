// The observer join (issue 13, `joinAs: observer`) through every phase, as the model plans it and
// the scripts run it, on real ZooKeeper: a 3-server source with data keeps serving its clients
// while the three empty targets join as observers (one at a time, data moved aside), serve the
// data and forward the migrating clients' writes; at the split the firewall goes up on the source
// hosts and the targets restart together as their own ensemble. The sources never restart and never elect: their pids,
// leader and epoch stay the same from the first phase to the last. No acknowledged write is lost,
// neither the source users' nor the migrating clients'.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connectString, host as fleetHost, hostsOf, runScript, zkPid, type LocalFleet } from "../../rehearsal/fleet";
import { StressGroup } from "../../rehearsal/stress";
import { fourLetter, modeOf } from "../../rehearsal/zookeeper";
import { appliedOf, type AppliedState } from "../../src/config";
import type { MitosisConfig } from "../../src/config";
import { planEnsemble } from "../../src/model";
import { firewallChainName, renderFirewallRemove } from "../../src/scripts/firewall";
import { commandsOf, isCommandStep } from "../../src/scripts/steps";
import type { Step } from "../../src/steps";
import { probeLeaders } from "../../src/zk/four-letter";
import { DEFAULT_ZK_VERSION } from "../../rehearsal/zookeeper";
import { useFleet, VERSIONS } from "./helpers/fleet";
import { describeResult, ensembleConfig, serversOf } from "./helpers/steps";
import { barrier, getChildren, openClient, writeData } from "./helpers/zk";

const NAME = "kafka-obs";
const DATA = 300;

/** Runs the host steps of a plan as the components declare them: preflights, gates, arms, new firewalls (commits), restart groups in order, the firewall's removal. */
async function runPlan(f: LocalFleet, steps: Step[], from: { firewall: { id: number; peers: string[] }[] }, log: (l: string) => void): Promise<void> {
    const run = async (id: number, script: string, what: string) => {
        const r = await runScript(f, fleetHost(f, id), script, { timeoutMs: 300_000 });
        assert.equal(r.code, 0, `${what} failed on ${describeResult(id, r)}`);
    };
    const cmd = steps.filter(isCommandStep);
    await Promise.all(cmd.filter((s) => s.kind === "preflight").map((s) => run(s.server, commandsOf(s).create, "preflight")));
    // The split: every host's gate, every target's client fence and catch-up, then the sources' dead man's switches armed with their rules up,
    // then the firewall steps, which commit the split on the armed hosts (src/procedures/gates.ts).
    const attempt = { startedAt: Math.floor(Date.now() / 1000) };
    for (const kind of ["gate", "split-fence", "split-catchup", "split-arm"] as const) {
        await Promise.all(cmd.filter((s) => s.kind === kind).map((s) => run((s as { server: number }).server, commandsOf(s, attempt).create, kind)));
    }
    await Promise.all(cmd.filter((s) => s.kind === "firewall" && s.effect).map((s) => run((s as { server: number }).server, commandsOf(s).create, "firewall")));
    const restarts = cmd.filter((s): s is Extract<Step, { kind: "restart" }> => s.kind === "restart" && s.effect !== undefined && s.group !== undefined);
    const groups = [...new Set(restarts.map((s) => s.group!))].sort((a, b) => a - b);
    for (const g of groups) {
        const members = restarts.filter((s) => s.group === g);
        const start = Date.now();
        await Promise.all(members.map((s) => run(s.server, commandsOf(s).update!, `restart of ${s.server}`)));
        log(`restart ${members.map((s) => s.server).join("+")} done in ${((Date.now() - start) / 1000).toFixed(1)} s`);
    }
    if (steps.some((s) => s.kind === "firewall-remove")) {
        await Promise.all(from.firewall.map((fw) => run(fw.id, renderFirewallRemove({ chain: firewallChainName(NAME), tag: `zkmigrate:${NAME}`, peers: fw.peers }), "firewall removal")));
    }
}

/** Leader and epoch of the sources, as srvr reports them. */
async function sourceState(f: LocalFleet): Promise<{ leader: number[]; epochs: string[]; modes: Record<number, string | undefined> }> {
    const modes: Record<number, string | undefined> = {};
    const epochs = new Set<string>();
    for (const h of hostsOf(f, "source")) {
        const out = await fourLetter(h.address, 2181, "srvr");
        modes[h.id] = modeOf(out);
        const zxid = /Zxid: 0x([0-9a-f]+)/.exec(out)?.[1];
        if (zxid) epochs.add(String(BigInt(`0x${zxid}`) >> 32n));
    }
    return { leader: Object.entries(modes).filter(([, m]) => m === "leader").map(([id]) => Number(id)), epochs: [...epochs], modes };
}

// The newest 3.9 (issue 13's target), or the lines of $ZKMIGRATE_IT_VERSIONS (e.g. "3.5,3.9").
const OBSERVER_VERSIONS = process.env.ZKMIGRATE_IT_VERSIONS ? VERSIONS : [DEFAULT_ZK_VERSION];

for (const version of OBSERVER_VERSIONS) describe(`mitosis with the observer join, ZooKeeper ${version}`, { timeout: 900_000 }, () => {
    const fleet = useFleet({ name: `it-join-${version.replace(/\./g, "")}-obs`, version, ensembles: [{ name: "source", servers: 3 }, { name: "target", servers: 3 }] });

    it("targets observe, take the clients, split off as their own ensemble; the sources never restart nor elect; nothing lost", async () => {
        const f = fleet();
        const log = (l: string) => console.log(`  ZooKeeper ${version}: ${l}`);
        const seed = await openClient(connectString(f, "source"));
        let names: string[];
        try {
            names = await writeData(seed, "/kafka/data", DATA);
        } finally {
            seed.close();
        }
        const config = (phase: string) =>
            ensembleConfig(f, {
                name: NAME,
                procedure: "mitosis",
                phase,
                joinAs: "observer",
                source: serversOf(f, "source"),
                target: serversOf(f, "target"),
                targetEmpty: true,
                clients: { chroot: "/kafka" },
            }) as MitosisConfig;
        const sourcePids = new Map(hostsOf(f, "source").map((h) => [h.id, zkPid(f, h)]));
        const before = await sourceState(f);
        assert.equal(before.leader.length, 1, `one source leader: ${JSON.stringify(before.modes)}`);

        const users = await StressGroup.start({ name: "source-users", connect: connectString(f, "source"), base: "/users/stress", sessions: 2 });
        let migrating: StressGroup | undefined;
        const windows: { phase: string; start: number; end: number }[] = [];
        let applied: AppliedState = { [NAME]: appliedOf(config("separate")) };
        try {
            for (const phase of ["joined", "clients", "prepared", "split", "source-restarted", "done"]) {
                const e = config(phase);
                const leader = await probeLeaders(hostsOf(f, "source").map((h) => ({ id: h.id, address: h.address, port: 2181 })), 2000);
                const { plan, current } = planEnsemble(e, applied, leader);
                log(`${phase}: ${plan.restartOrder.map((g) => `${g.ids.join("+")} (${g.reason})`).join(" -> ") || "no restart"}`);
                assert.ok(plan.restartOrder.every((g) => g.ids.every((id) => id >= 4)), `${phase}: only targets restart`);
                const start = Date.now();
                await runPlan(f, plan.steps, current, log);
                windows.push({ phase, start, end: Date.now() });
                applied = { [NAME]: appliedOf(e) };
                if (phase === "joined") {
                    for (const h of hostsOf(f, "target")) assert.equal(modeOf(await fourLetter(h.address, 2181, "srvr")), "observer", `${h.name} observes`);
                    for (const h of hostsOf(f, "target")) {
                        const c = await openClient(`${h.address}:2181/kafka`);
                        try {
                            await barrier(c, "/data");
                            assert.deepEqual((await getChildren(c, "/data")).sort(), [...names].sort(), `${h.name} serves the source's data`);
                        } finally {
                            c.close();
                        }
                    }
                }
                if (phase === "clients") {
                    // The migrating clients now write through the observers (forwarded to the source leader).
                    migrating = await StressGroup.start({ name: "migrating", connect: connectString(f, "target") + "/kafka", base: "/stress", sessions: 2 });
                    await new Promise((r) => setTimeout(r, 2000));
                }
                if (phase === "split") {
                    const modes: Record<number, string | undefined> = {};
                    for (const h of hostsOf(f, "target")) modes[h.id] = modeOf(await fourLetter(h.address, 2181, "srvr"));
                    assert.equal(Object.values(modes).filter((m) => m === "leader").length, 1, `the targets elected one leader of their own: ${JSON.stringify(modes)}`);
                    assert.equal(Object.values(modes).filter((m) => m === "follower").length, 2, `two target followers: ${JSON.stringify(modes)}`);
                    await new Promise((r) => setTimeout(r, 2000));
                }
                const now = await sourceState(f);
                assert.deepEqual(now.leader, before.leader, `${phase}: the source's leader never changes`);
                assert.deepEqual(now.epochs, before.epochs, `${phase}: the sources never elect (epoch ${before.epochs} -> ${now.epochs})`);
            }
        } finally {
            await users.stop();
            await migrating?.stop();
        }
        for (const h of hostsOf(f, "source")) assert.equal(zkPid(f, h), sourcePids.get(h.id), `${h.name} never restarted`);
        for (const h of f.hosts) {
            const rules = await runScript(f, h, `iptables -w 10 -S | grep -c ${firewallChainName(NAME)} || true`, { timeoutMs: 30_000 });
            assert.equal(rules.stdout.trim(), "0", `${h.name}: the split's rules are gone after done`);
        }

        const u = await users.verify(connectString(f, "source"));
        assert.deepEqual(u.lost, [], "every write the source users saw acknowledged is on the source");
        assert.ok(migrating, "the migrating clients ran");
        const m = await migrating.verify(connectString(f, "target") + "/kafka");
        assert.deepEqual(m.lost, [], "every write the migrating clients saw acknowledged is on the target");
        log(`${u.acknowledged} source-user writes and ${m.acknowledged} migrating writes acknowledged, 0 lost`);
        for (const w of windows) {
            const g = users.gaps(w);
            log(`${w.phase.padEnd(17)} longest source-user write gap ${g.groupMs} ms across sessions (${g.perSessionMs} ms in one), ${((w.end - w.start) / 1000).toFixed(1)} s`);
        }
        const split = windows.find((w) => w.phase === "split")!;
        log(`split: longest migrating write gap ${migrating.gaps(split).groupMs} ms`);
    });

});
