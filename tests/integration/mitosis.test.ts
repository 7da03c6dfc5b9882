// The mitosis join (`separate` -> `joined`), as the model plans it and the components run it: a
// 3-server source with data keeps serving clients while two empty targets start with the joint
// membership (config written, data moved aside, restarted), the dormant target stops, then the
// source followers and the leader restart into the joint membership. The targets sync and serve
// the source's data through their own client ports.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connectString, host as fleetHost, hostsOf, zkPid } from "../../rehearsal/fleet";
import { fourLetter, modeOf } from "../../rehearsal/zookeeper";
import type { AppliedState } from "../../src/config";
import { planEnsemble } from "../../src/model";
import { probeLeaders } from "../../src/zk/four-letter";
import { VERSIONS, fleetName, useFleet } from "./helpers/fleet";
import { ensembleConfig, runRestarts, serversOf, writeConfigs } from "./helpers/steps";
import { StressGroup } from "../../rehearsal/stress";
import { barrier, getChildren, getData, openClient, writeData } from "./helpers/zk";

const NAME = "kafka-main";
const DATA = 500;

for (const version of VERSIONS) {
    describe(`mitosis join, ZooKeeper ${version}`, { timeout: 600_000 }, () => {
        const fleet = useFleet({
            name: fleetName("mito", version),
            version,
            ensembles: [
                // The source, and the target running as its own (empty) ensemble, as in `separate`.
                { name: "source", servers: 3 },
                { name: "target", servers: 3 },
            ],
        });

        it("targets join the running source, sync, and serve its data; no acknowledged write lost", async () => {
            const f = fleet();
            const sources = hostsOf(f, "source");
            const targets = hostsOf(f, "target");
            const seed = await openClient(connectString(f, "source"));
            let names: string[];
            try {
                names = await writeData(seed, "/kafka/data", DATA);
            } finally {
                seed.close();
            }

            const e = ensembleConfig(
                f,
                {
                    name: NAME,
                    procedure: "mitosis",
                    joinAs: "voter", // the seed's voter join (the default is observer)
                    phase: "joined",
                    source: serversOf(f, "source"),
                    target: serversOf(f, "target"),
                    targetEmpty: true,
                    clients: { chroot: "/kafka" },
                },
                { spacingSeconds: 2 },
            );
            const ids = f.hosts.map((h) => h.id);
            const applied: AppliedState = { [NAME]: { procedure: "mitosis", phase: "separate", cutover: [], servers: ids } };
            const leader = await probeLeaders(sources.map((h) => ({ id: h.id, address: h.address, port: 2181 })), 2000);
            assert.ok(leader.known, `the source's leader is known: ${JSON.stringify(leader)}`);
            const { desired, plan } = planEnsemble(e, applied, leader);
            const active = desired.servers.filter((s) => s.role === "target" && s.running).map((s) => s.id);
            const dormant = desired.servers.filter((s) => s.dormant).map((s) => s.id);
            assert.deepEqual(active, [4, 5]);
            assert.deepEqual(dormant, [6]);
            const order = plan.restartOrder.map((g) => g.ids.join("+"));
            const followers = sources.filter((h) => h.id !== leader.leaders[0]).map((h) => String(h.id));
            assert.deepEqual(order, ["6", "4", "5", ...followers, String(leader.leaders[0])], "dormant stops, targets join, source followers, the leader last");
            console.log(`  ZooKeeper ${version}: plan ${plan.restartOrder.map((g) => `${g.ids.join("+")} (${g.reason})`).join(" -> ")}`);

            // Clients of the shared ensemble keep writing to the source throughout.
            const writers = await StressGroup.start({ name: "source", connect: connectString(f, "source"), base: "/kafka/stress", sessions: 3 });
            const pids = new Map(f.hosts.map((h) => [h.id, zkPid(f, h)]));
            let steps;
            try {
                const changed = desired.servers.filter((s) => plan.configChanges.includes(s.id));
                await writeConfigs(f, e.host, changed.map((s) => ({ id: s.id, membership: s.written })));
                steps = await runRestarts(f, e.host, e.spacingSeconds, plan.restartOrder, desired.servers, (s) =>
                    console.log(`  ZooKeeper ${version}: ${s.label} done in ${((s.end - s.start) / 1000).toFixed(1)} s`),
                );
                await new Promise((r) => setTimeout(r, 2000));
            } finally {
                await writers.stop();
            }

            // The targets: 4 and 5 serve in the joint ensemble, 6 is stopped; everyone restarted.
            for (const id of [1, 2, 3, 4, 5]) assert.notEqual(zkPid(f, fleetHost(f, id)), pids.get(id), `myid ${id} restarted`);
            assert.equal(zkPid(f, fleetHost(f, 6)), undefined, "the dormant target is stopped");
            const modes: Record<number, string | undefined> = {};
            for (const id of [1, 2, 3, 4, 5]) modes[id] = modeOf(await fourLetter(fleetHost(f, id).address, 2181, "srvr"));
            assert.equal(Object.values(modes).filter((m) => m === "leader").length, 1, `one leader in the joint ensemble: ${JSON.stringify(modes)}`);
            console.log(`  ZooKeeper ${version}: joint ensemble modes ${JSON.stringify(modes)}`);

            // Each target, through its own client port only, serves the source's data.
            for (const t of targets.filter((h) => active.includes(h.id))) {
                const c = await openClient(`${t.address}:2181`);
                try {
                    await barrier(c, "/kafka/data");
                    const children = (await getChildren(c, "/kafka/data")).sort();
                    assert.deepEqual(children, [...names].sort(), `${t.name} holds every znode of the source`);
                    for (const i of [0, Math.floor(DATA / 2), DATA - 1]) {
                        assert.equal(await getData(c, `/kafka/data/${names[i]}`), `v${i}`, `${t.name} serves the data of ${names[i]}`);
                    }
                } finally {
                    c.close();
                }
                const check = await writers.verify(`${t.address}:2181`);
                assert.deepEqual(check.lost, [], `${t.name} serves every write acknowledged by the source`);
            }
            const check = await writers.verify(connectString(f, "source"));
            assert.deepEqual(check.lost, [], "every acknowledged write is read back from the source");
            const failed = writers.stats.reduce((n, st) => n + st.failures.length, 0);
            console.log(`  ZooKeeper ${version}: ${check.acknowledged} writes acknowledged by ${writers.o.sessions} source sessions, ${failed} failed, all read back through the targets`);
            for (const s of steps) {
                const g = writers.gaps(s);
                console.log(`  ZooKeeper ${version}: ${s.label.padEnd(34)} longest source write gap ${g.perSessionMs} ms in one session, ${g.groupMs} ms across all`);
            }
        });
    });
}
