// A rolling restart of a 3-server ensemble (followers first, the leader last, as the model orders
// them) while several client sessions write sequence-numbered znodes continuously: no
// acknowledged write may be lost, and the longest write gap of every step is printed.
//
// The change rolled out is one a real fleet makes (the `peers` phase does it with Service names):
// quorumListenOnAllIPs=true written into every zoo.cfg, then each server restarted with it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connectString, hostsOf, zkPid } from "../../rehearsal/fleet";
import { fourLetter, modeOf } from "../../rehearsal/zookeeper";
import { desiredState } from "../../src/model";
import { restartGroups } from "../../src/plan";
import type { DesiredState } from "../../src/types";
import { probeLeaders } from "../../src/zk/four-letter";
import { VERSIONS, fleetName, useFleet } from "./helpers/fleet";
import { ensembleConfig, runRestarts, serversOf, writeConfigs } from "./helpers/steps";
import { StressGroup } from "../../rehearsal/stress";

for (const version of VERSIONS) {
    describe(`rolling restart under write load, ZooKeeper ${version}`, { timeout: 600_000 }, () => {
        const fleet = useFleet({ name: fleetName("roll", version), version, ensembles: [{ name: "zk", servers: 3 }] });

        it("restarts followers first and the leader last; every acknowledged write survives", async () => {
            const f = fleet();
            const e = ensembleConfig(f, { name: "roll", procedure: "kubernetes", phase: "hosts", servers: serversOf(f, "zk") }, { spacingSeconds: 2 });
            const from = desiredState(e, "hosts");
            const to: DesiredState = {
                ...from,
                servers: from.servers.map((s) => ({
                    ...s,
                    written: { ...s.written, quorumListenOnAllIPs: true },
                    runningWith: { ...s.runningWith, quorumListenOnAllIPs: true },
                })),
            };
            const hosts = hostsOf(f, "zk");
            const leader = await probeLeaders(
                hosts.map((h) => ({ id: h.id, address: h.address, port: 2181 })),
                2000,
            );
            assert.ok(leader.known && leader.leaders.length === 1, `one leader before the restart: ${JSON.stringify(leader)}`);
            const warnings: string[] = [];
            const groups = restartGroups(e, from, to, leader, warnings);
            assert.deepEqual(
                groups.map((g) => g.ids.length),
                [1, 1, 1],
                "one server per step",
            );
            assert.equal(groups[2].ids[0], leader.leaders[0], "the leader restarts last");
            assert.deepEqual(groups.map((g) => g.reason), ["follower", "follower", "leader last"]);

            const writers = await StressGroup.start({ name: "rolling", connect: connectString(f, "zk"), base: "/it-rolling", sessions: 4 });
            const pids = new Map(hosts.map((h) => [h.id, zkPid(f, h)]));
            let steps;
            try {
                await writeConfigs(f, e.host, to.servers.map((s) => ({ id: s.id, membership: s.written })));
                steps = await runRestarts(f, e.host, e.spacingSeconds, groups, to.servers);
                // Keep writing a moment after the last step, then stop.
                await new Promise((r) => setTimeout(r, 2000));
            } finally {
                await writers.stop();
            }
            for (const h of hosts) assert.notEqual(zkPid(f, h), pids.get(h.id), `${h.name} restarted`);

            const check = await writers.verify();
            const failures = writers.stats.flatMap((st) => st.failures);
            const failed = failures.length;
            const errors: Record<string, number> = {};
            for (const x of failures) errors[x.error] = (errors[x.error] ?? 0) + 1;
            console.log(
                `  ZooKeeper ${version}: ${check.acknowledged} writes acknowledged by ${writers.o.sessions} sessions over ${((Date.now() - writers.started) / 1000).toFixed(1)} s, ` +
                    `${check.present} znodes read back, ${failed} failed operations ${JSON.stringify(errors)}`,
            );
            for (const s of steps) {
                const g = writers.gaps(s);
                console.log(
                    `  ZooKeeper ${version}: ${s.label.padEnd(28)} ${((s.end - s.start) / 1000).toFixed(1).padStart(5)} s; longest write gap: ` +
                        `${g.perSessionMs} ms in one session, ${g.groupMs} ms across all sessions`,
                );
            }
            assert.deepEqual(check.lost, [], "every acknowledged write is read back");
            assert.ok(check.present >= check.acknowledged, "no fewer znodes than acknowledged writes");
            for (const s of steps) {
                const g = writers.gaps(s);
                assert.ok(g.groupMs < 20_000, `the ensemble kept accepting writes during "${s.label}" (gap ${g.groupMs} ms)`);
            }
            const modes = await Promise.all(hosts.map(async (h) => modeOf(await fourLetter(h.address, 2181, "srvr"))));
            assert.equal(modes.filter((m) => m === "leader").length, 1, `one leader after the restarts: ${modes.join(", ")}`);
        });
    });
}
