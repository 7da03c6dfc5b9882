// Write config + restart + health gate on a 3-server ensemble of real ZooKeeper, over SSH, with
// the scripts rendered by src/scripts (as pulumi runs them).
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { hostsOf, runScript, zkPid, type LocalFleet } from "../../rehearsal/fleet";
import { fourLetter, modeOf } from "../../rehearsal/zookeeper";
import { BLOCK_BEGIN, BLOCK_END, renderHealthGate, renderRestart, renderWriteConfig } from "../../src/scripts";
import type { Membership } from "../../src/types";
import { VERSIONS, fleetName, useFleet } from "./helpers/fleet";
import { describeResult } from "./helpers/steps";

function membershipOf(f: LocalFleet, ensemble: string): Membership {
    return {
        members: hostsOf(f, ensemble).map((h) => ({ id: h.id, address: h.address, peerPort: 2888, electionPort: 3888 })),
        quorumListenOnAllIPs: false,
    };
}

for (const version of VERSIONS) {
    describe(`write config + restart + health gate, ZooKeeper ${version}`, { timeout: 600_000 }, () => {
        const fleet = useFleet({ name: fleetName("restart", version), version, ensembles: [{ name: "zk", servers: 3, start: false }] });

        it("writes the membership into a marked block, keeps the other settings, and is idempotent", async () => {
            const f = fleet();
            const m = membershipOf(f, "zk");
            const before = hostsOf(f, "zk").map((h) => readFileSync(join(h.dir, "conf", "zoo.cfg"), "utf8"));
            for (let round = 1; round <= 2; round++) {
                const results = await Promise.all(hostsOf(f, "zk").map((h) => runScript(f, h, renderWriteConfig({ host: f.hostSettings, myid: h.id, membership: m }))));
                results.forEach((r, i) => assert.equal(r.code, 0, describeResult(hostsOf(f, "zk")[i].id, r)));
                for (const [i, h] of hostsOf(f, "zk").entries()) {
                    const cfg = readFileSync(join(h.dir, "conf", "zoo.cfg"), "utf8");
                    const lines = cfg.trimEnd().split("\n");
                    const settings = lines.filter((l) => !l.startsWith("server.") && !l.startsWith("quorumListenOnAllIPs") && !l.startsWith("# BEGIN") && !l.startsWith("# END"));
                    const original = before[i].trimEnd().split("\n").filter((l) => !l.startsWith("server."));
                    assert.deepEqual(settings, original, "settings other than the membership keep their lines and order");
                    const block = lines.slice(lines.indexOf(BLOCK_BEGIN), lines.indexOf(BLOCK_END) + 1);
                    assert.deepEqual(block, [BLOCK_BEGIN, ...m.members.map((x) => `server.${x.id}=${x.address}:2888:3888`), "quorumListenOnAllIPs=false", BLOCK_END]);
                    const backups = readdirSync(join(h.dir, "conf")).filter((n) => n.includes(".zkmigrate-") && n.endsWith(".bak"));
                    assert.equal(backups.length, 1, `one backup after round ${round} (the second write changes nothing): ${backups.join(", ")}`);
                    if (round === 2) assert.match(results[i].stdout, /unchanged/);
                    assert.equal(readFileSync(join(h.dir, "data", "myid"), "utf8").trim(), String(h.id));
                }
            }
        });

        it("restarts all three (bootstrapping the ensemble); each health gate passes once it serves", async () => {
            const f = fleet();
            const m = membershipOf(f, "zk");
            const hosts = hostsOf(f, "zk");
            // Stopped servers: restart starts them. Three at once: one alone has no quorum to serve in.
            const results = await Promise.all(
                hosts.map((h) => runScript(f, h, renderRestart({ host: f.hostSettings, myid: h.id, mode: "restart", wipeData: false, spacingSeconds: 0, expect: m }))),
            );
            results.forEach((r, i) => {
                assert.equal(r.code, 0, describeResult(hosts[i].id, r));
                assert.match(r.stdout, /healthy: 127\.0\.0\.1:2181 serves, Mode: (leader|follower)/);
            });
            const modes = await Promise.all(hosts.map(async (h) => modeOf(await fourLetter(h.address, 2181, "srvr"))));
            assert.equal(modes.filter((x) => x === "leader").length, 1, `one leader: ${modes.join(", ")}`);
            assert.equal(modes.filter((x) => x === "follower").length, 2, `two followers: ${modes.join(", ")}`);
            console.log(`  ZooKeeper ${version}: bootstrap restarts took ${results.map((r) => `${r.ms} ms`).join(", ")}; modes ${modes.join(", ")}`);
            for (const h of hosts) {
                const gate = await runScript(f, h, renderHealthGate({ host: f.hostSettings }));
                assert.equal(gate.code, 0, describeResult(h.id, gate));
            }
        });

        it("refuses to restart a server whose config holds neither the recorded membership nor the one the step writes, touching nothing", async () => {
            const f = fleet();
            const hosts = hostsOf(f, "zk");
            const pids = hosts.map((h) => zkPid(f, h));
            const runs = membershipOf(f, "zk");
            // The applied record says the server runs without its third member (a hand edit since).
            const recorded: Membership = { ...runs, members: runs.members.slice(0, 2) };
            const next: Membership = { ...runs, quorumListenOnAllIPs: true };
            const cfg = () => runScript(f, hosts[0], `cat ${f.hostSettings.paths.configFile}`);
            const before = (await cfg()).stdout;
            const r = await runScript(f, hosts[0], renderRestart({ host: f.hostSettings, myid: hosts[0].id, mode: "restart", wipeData: false, spacingSeconds: 0, expect: next, before: recorded }));
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, /holds neither the membership the server runs by the applied record nor the one this step writes: refusing to touch it/);
            assert.deepEqual(hosts.map((h) => zkPid(f, h)), pids, "no server restarted");
            assert.equal((await cfg()).stdout, before, "the config is untouched");
        });

        it("restarts one follower: new pid, serving again, the others untouched", async () => {
            const f = fleet();
            const hosts = hostsOf(f, "zk");
            const modes = await Promise.all(hosts.map(async (h) => modeOf(await fourLetter(h.address, 2181, "srvr"))));
            const follower = hosts[modes.indexOf("follower")];
            const others = hosts.filter((h) => h !== follower);
            const before = new Map(hosts.map((h) => [h.id, zkPid(f, h)]));
            const r = await runScript(f, follower, renderRestart({ host: f.hostSettings, myid: follower.id, mode: "restart", wipeData: false, spacingSeconds: 1, expect: membershipOf(f, "zk") }));
            assert.equal(r.code, 0, describeResult(follower.id, r));
            assert.match(r.stdout, /Mode: follower/);
            assert.ok(zkPid(f, follower) !== undefined && zkPid(f, follower) !== before.get(follower.id), "the follower runs with a new pid");
            for (const h of others) assert.equal(zkPid(f, h), before.get(h.id), `${h.name} untouched`);
            assert.ok(existsSync(follower.zkPidFile));
            console.log(`  ZooKeeper ${version}: follower restart (stop, start, health gate, 1 s spacing) took ${r.ms} ms`);
        });
    });
}
