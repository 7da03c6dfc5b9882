// Mitosis by dynamic reconfig against real ZooKeeper, every line the fleet offers from 3.5 to 3.9:
// a 3-server source with reconfigEnabled=true, a super digest and a client writing throughout; the
// targets join with `reconfig -add` (the sources never restart), the split cuts them off, they
// restart together onto their own membership and elect a leader with the data, and the sources drop
// them with `reconfig -remove` through their own quorum. A reconfig step that fails half-way (a
// re-run) converges; a source with reconfig off is refused with the reason.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { connectString, host as fleetHost, hostsOf, runScript, zkPid, type LocalFleet } from "../../rehearsal/fleet";
import { StressGroup } from "../../rehearsal/stress";
import { ZK_VERSIONS, fourLetter, modeOf, resolveVersion } from "../../rehearsal/zookeeper";
import { appliedOf, loadConfig, type AppliedState, type RawConfig } from "../../src/config";
import { planEnsemble } from "../../src/model";
import { commandsOf, firewallChainName, isCommandStep, renderFirewallRemove } from "../../src/scripts";
import { renderReconfigStart } from "../../src/scripts/reconfig";
import { reconfigGuard } from "../../src/reconfig-guard";
import { withAuth } from "../../src/scripts/reconfig";
import type { Step } from "../../src/steps";
import { probeLeaders } from "../../src/zk/four-letter";
import { probeReconfig } from "../../src/zk/reconfig-probe";
import { fleetName, useFleet } from "./helpers/fleet";
import { describeResult, serversOf } from "./helpers/steps";
import { barrier, getChildren, getData, openClient, writeData } from "./helpers/zk";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { stackHostConfig, stackSshConfig } from "../../rehearsal/fleet";

/** Every line from 3.5 on (reconfig exists from 3.5), or $ZKMIGRATE_RECONFIG_VERSIONS. */
const VERSIONS = (process.env.ZKMIGRATE_RECONFIG_VERSIONS ?? Object.values(ZK_VERSIONS).join(","))
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v.length > 0)
    .map((v) => resolveVersion(v));

const NAME = "kafka-rcf";
const AUTH = "super:rcf-test-secret";
const SUPER_DIGEST = `super:${createHash("sha1").update(AUTH).digest("base64")}`;
const RECONFIG_SETTINGS = { reconfigEnabled: "true", standaloneEnabled: "false", "DigestAuthenticationProvider.superDigest": SUPER_DIGEST };

function raw(f: LocalFleet, phase: string): RawConfig {
    const host = stackHostConfig(f) as { zookeeper: Record<string, unknown> };
    return {
        sshUser: "root",
        sshPrivateKey: readFileSync(f.sshKey, "utf8"),
        sshKnownHosts: stackSshConfig(f).sshKnownHosts,
        leaderProbe: false,
        reconfigAuth: AUTH,
        defaults: { ...host, zookeeper: { ...host.zookeeper, cli: `${f.mountPoint}/bin/zk-cli` }, spacingSeconds: 1 },
        ensembles: [
            {
                name: NAME,
                procedure: "mitosis",
                membershipChange: "reconfig",
                phase,
                source: serversOf(f, "source"),
                target: serversOf(f, "target"),
                targetEmpty: true,
                clients: { chroot: "/kafka" },
            },
        ],
    };
}

interface Ran {
    start: number;
    end: number;
}

/**
 * Runs a plan's command steps on the fleet in order (the steps whose `after` are done at once), as
 * `pulumi up` does; the engine's firewall removal runs the firewall's delete script. `failFirst`:
 * that step runs once with wrong credentials first, must fail with the reason, and then runs again.
 */
async function runPlan(f: LocalFleet, steps: Step[], o: { failFirst?: string; first?: boolean; log: (l: string) => void }): Promise<Map<string, Ran>> {
    const took = new Map<string, Ran>();
    for (const s of steps) {
        if (s.kind !== "firewall-remove" || s.effect?.kind !== "firewall-remove") continue;
        for (const id of s.effect.ids) {
            const h = fleetHost(f, id);
            // The split's rules sit on the source hosts and cut the targets.
            const rules = { chain: firewallChainName(NAME), tag: `zkmigrate:${NAME}`, peers: hostsOf(f, h.ensemble === "source" ? "target" : "source").map((x) => x.address) };
            const r = await runScript(f, h, renderFirewallRemove(rules), { timeoutMs: 60_000 });
            assert.equal(r.code, 0, `firewall removal failed on ${describeResult(id, r)}`);
        }
    }
    // Every command step that is not frozen runs (a new resource runs its create; a changed restart its update).
    const attempt = { startedAt: Math.floor(Date.now() / 1000) };
    const pending = steps.filter((s) => isCommandStep(s) && !s.frozen && (s.effect !== undefined || s.kind !== "restart" || o.first));
    const done = new Set<string>(steps.filter((s) => !pending.includes(s)).map((s) => s.id));
    while (pending.length > 0) {
        const ready = pending.filter((s) => s.after.every((a) => done.has(a)));
        assert.ok(ready.length > 0, `no step is ready among ${pending.map((s) => s.id).join(", ")}`);
        await Promise.all(
            ready.map(async (s) => {
                if (!isCommandStep(s) || !s.target) throw new Error(`step ${s.id} runs nowhere`);
                const c = commandsOf(s, attempt);
                const h = f.hosts.find((x) => x.address === s.target!.host)!;
                if (s.id === o.failFirst) {
                    const bad = await runScript(f, h, withAuth(c.create, "super:wrong-secret"), { timeoutMs: 300_000 });
                    o.log(`${s.id} with wrong credentials: exit ${bad.code}`);
                    assert.equal(bad.code, 1, `with wrong credentials ${s.id} fails: ${describeResult(h.id, bad)}`);
                    assert.match(bad.stderr, /the reconfig did not take: .*may these credentials write \/zookeeper\/config/, bad.stderr);
                    assert.ok(!(bad.stdout + bad.stderr).includes("wrong-secret"), "the credentials are never printed");
                }
                const script = withAuth(s.effect?.kind === "restart" && c.update ? c.update : c.create, AUTH);
                const start = Date.now();
                const r = await runScript(f, h, script, { timeoutMs: 300_000 });
                took.set(s.id, { start, end: Date.now() });
                o.log(`${s.id} on ${h.name}: exit ${r.code} in ${Date.now() - start} ms`);
                assert.equal(r.code, 0, `step ${s.id} failed on ${describeResult(h.id, r)}`);
                assert.ok(!(r.stdout + r.stderr).includes(AUTH), `step ${s.id} printed the credentials`);
            }),
        );
        for (const s of ready) {
            done.add(s.id);
            pending.splice(pending.indexOf(s), 1);
        }
    }
    return took;
}

function epochOf(zxid: string | undefined): number {
    return zxid ? Number(BigInt(zxid) >> 32n) : -1;
}

async function sourceState(f: LocalFleet): Promise<{ leader?: number; epochs: number[] }> {
    const out: { leader?: number; epochs: number[] } = { epochs: [] };
    for (const h of hostsOf(f, "source")) {
        const a = await fourLetter(h.address, 2181, "srvr");
        if (modeOf(a) === "leader") out.leader = h.id;
        out.epochs.push(epochOf(/^Zxid: (\S+)/m.exec(a)?.[1]));
    }
    return out;
}

// The lines run two at a time: each is a fleet of its own (namespaces, addresses), and most of a
// run is waiting for JVMs and SSH; one after the other they cost npm test about 13 min.
describe("mitosis by dynamic reconfig on every ZooKeeper line", { concurrency: 2 }, () => {
    for (const version of VERSIONS) {
        describe(`mitosis by dynamic reconfig, ZooKeeper ${version}`, { timeout: 900_000 }, () => {
            const fleet = useFleet({
                name: fleetName("rcf", version),
                version,
                ensembles: [
                    { name: "source", servers: 3, settings: RECONFIG_SETTINGS },
                    { name: "target", servers: 3, settings: RECONFIG_SETTINGS },
                    // An ensemble as most run: reconfigEnabled false (the default from 3.5.3).
                    { name: "plain", servers: 3 },
                ],
            });

            it("targets join by reconfig -add, split off and the sources drop them by reconfig -remove: no source restart, no source election, 0 lost", async () => {
                const f = fleet();
                const log = (l: string) => console.log(`  ZooKeeper ${version}: ${l}`);
                const seed = await openClient(connectString(f, "source"));
                let names: string[];
                try {
                    names = await writeData(seed, "/kafka/data", 200);
                } finally {
                    seed.close();
                }
                const sources = hostsOf(f, "source");
                const probe = await probeReconfig(
                    sources.map((h) => ({ id: h.id, address: h.address, port: 2181 })),
                    { auth: AUTH, timeoutMs: 10_000 },
                );
                assert.equal(probe.available, true, `reconfig is available: ${JSON.stringify(probe)}`);
                const pids = new Map(sources.map((h) => [h.id, zkPid(f, h)]));
                const before = await sourceState(f);
                log(`source leader ${before.leader}, epochs ${before.epochs.join(",")}`);

                const writers = await StressGroup.start({ name: "source", connect: connectString(f, "source"), base: "/kafka/stress", sessions: 3 });
                let applied: AppliedState = {};
                const phases = ["separate", "joined", "clients", "prepared", "split", "source-restarted", "done"];
                const timings: Record<string, Map<string, Ran>> = {};
                const phaseTimes: Record<string, Ran> = {};
                try {
                    for (const phase of phases) {
                        const config = loadConfig(raw(f, phase));
                        const e = config.ensembles[0];
                        const leader = await probeLeaders([...sources, ...hostsOf(f, "target")].map((h) => ({ id: h.id, address: h.address, port: 2181 })), 2000);
                        const { plan } = planEnsemble(e, applied, leader);
                        log(`${phase}: ${plan.steps.filter((s) => s.effect).map((s) => s.id).join(" -> ") || "(nothing runs)"}`);
                        const start = Date.now();
                        // The split's reconfig -remove fails once (wrong credentials), then a re-run converges.
                        const failFirst = plan.steps.find((s) => s.kind === "reconfig" && s.remove.length > 0)?.id;
                        timings[phase] = await runPlan(f, plan.steps, { log, first: phase === "separate", ...(phase === "split" ? { failFirst } : {}) });
                        phaseTimes[phase] = { start, end: Date.now() };
                        if (phase === "joined") {
                            // A re-run of an add that took already changes nothing.
                            const add = plan.steps.find((s) => s.kind === "reconfig")!;
                            if (!isCommandStep(add)) throw new Error("not a command step");
                            const r = await runScript(f, fleetHost(f, add.server), withAuth(commandsOf(add).create, AUTH), { timeoutMs: 120_000 });
                            assert.equal(r.code, 0, describeResult(add.server, r));
                            assert.match(r.stdout, /nothing to change: the committed configuration is the one this step makes \(a re-run\)/);
                        }
                        if (phase === "split" || phase === "joined" || phase === "done") {
                            for (const h of [...sources, ...hostsOf(f, "target")]) {
                                const a = await fourLetter(h.address, 2181, "srvr").catch((err: Error) => err.message);
                                log(`  after ${phase}: ${h.name} ${modeOf(a) ?? "-"} zxid ${/^Zxid: (\S+)/m.exec(a)?.[1] ?? "-"}`);
                                // Every server that should run serves in the source's history (epoch 1) or T's.
                                if (phase === "joined" && h.id !== 6) assert.ok(modeOf(a), `after the join ${h.name} serves: ${a}`);
                                if (phase === "joined" && h.ensemble === "target" && h.id !== 6) assert.equal(epochOf(/^Zxid: (\S+)/m.exec(a)?.[1]), before.epochs[0], `${h.name} follows the source's history`);
                            }
                        }
                        if (phase === "split") {
                            const t = timings[phase];
                            const fw = Math.min(...[...t].filter(([id]) => id.startsWith("firewall-")).map(([, x]) => x.end));
                            const serving = Math.max(...[...t].filter(([id]) => id.startsWith("restart-")).map(([, x]) => x.end));
                            log(`targets serve ${serving - fw} ms after the firewall (the restart steps' gates, SSH included)`);
                        }
                        applied = { [NAME]: appliedOf(e) };
                    }
                    // With the firewall gone, the two ensembles stay apart (neither lists the other).
                    await new Promise((r) => setTimeout(r, 4000));
                } finally {
                    await writers.stop();
                }
                for (const phase of phases) {
                    const g = writers.gaps(phaseTimes[phase]);
                    log(`${phase.padEnd(17)} longest source write gap ${g.groupMs} ms across all sessions`);
                }

                // No source restarted, no source election (same leader, same epoch).
                for (const h of sources) assert.equal(zkPid(f, h), pids.get(h.id), `source ${h.id} never restarted`);
                const after = await sourceState(f);
                assert.equal(after.leader, before.leader, "the source leader never changed");
                assert.deepEqual(after.epochs, before.epochs, "no source election: the epoch never changed");
                // The targets serve the data as their own ensemble.
                const modes: string[] = [];
                for (const t of hostsOf(f, "target")) modes.push(modeOf(await fourLetter(t.address, 2181, "srvr")) ?? "none");
                assert.equal(modes.filter((m) => m === "leader").length, 1, `one target leader: ${modes.join(",")}`);
                const tc = await openClient(connectString(f, "target"));
                try {
                    await barrier(tc, "/kafka/data").catch((err: Error) => {
                        // What the targets did at the split, for the report.
                        for (const t of hostsOf(f, "target")) {
                            const lines = readFileSync(join(t.dir, "logs", "zookeeper.log"), "utf8").split("\n");
                            const key = lines.filter((l) => /LEADING|FOLLOWING|LOOKING|TRUNC|SNAP|DIFF|New election|epoch|Reconfig|dynamic/i.test(l)).slice(-40);
                            console.log(`--- ${t.name}\n${key.join("\n")}`);
                        }
                        throw err;
                    });
                    assert.deepEqual((await getChildren(tc, "/kafka/data")).sort(), [...names].sort(), "the targets hold the source's data");
                } finally {
                    tc.close();
                }
                // The committed configurations: S on the sources, T on the targets.
                const configOf = async (address: string) => {
                    const c = await openClient(`${address}:2181`);
                    try {
                        const d = await getData(c, "/zookeeper/config");
                        return d.split("\n").filter((l) => l.startsWith("server.")).map((l) => Number(/^server\.(\d+)=/.exec(l)![1])).sort();
                    } finally {
                        c.close();
                    }
                };
                for (const h of sources) assert.deepEqual(await configOf(h.address), [1, 2, 3], `source ${h.id} runs S`);
                for (const h of hostsOf(f, "target")) assert.deepEqual(await configOf(h.address), [4, 5, 6], `target ${h.id} runs T`);
                const check = await writers.verify(connectString(f, "source"));
                assert.deepEqual(check.lost, [], "every acknowledged write is read back from the source");
                log(`${check.acknowledged} writes acknowledged, 0 lost; source longest gap ${writers.gaps({ start: 0, end: Date.now() }).groupMs} ms`);
            });

            it("refuses where reconfig is unavailable: reconfigEnabled off, or credentials that may not write /zookeeper/config", async () => {
                const f = fleet();
                const plain = hostsOf(f, "plain");
                const r = await probeReconfig(plain.map((h) => ({ id: h.id, address: h.address, port: 2181 })), { auth: AUTH, timeoutMs: 10_000 });
                assert.equal(r.available, false);
                assert.equal(r.enabled, false, JSON.stringify(r));
                assert.match(r.reasons.join("; "), /reconfigEnabled is false on the leader/);
                // The preview's refusal, with the config path.
                const config = loadConfig({ ...raw(f, "separate"), ensembles: [{ ...(raw(f, "separate").ensembles as object[])[0], source: serversOf(f, "plain") }] });
                const plans = new Map([[NAME, planEnsemble(config.ensembles[0], {})]]);
                const g = reconfigGuard(config.ensembles, plans, { [NAME]: r });
                assert.equal(g.issues.length, 1);
                assert.equal(g.issues[0].path, `zkmigrate:ensembles[${NAME}].membershipChange`);
                assert.match(g.issues[0].reason, /^reconfig is not available on the sources: reconfigEnabled is false/);
                // Wrong credentials on servers with a super digest: refused by the ACL check, named.
                const wrong = await probeReconfig(hostsOf(f, "source").map((h) => ({ id: h.id, address: h.address, port: 2181 })), { auth: "super:wrong", timeoutMs: 10_000 });
                assert.equal(wrong.enabled, true, JSON.stringify(wrong));
                assert.equal(wrong.authorized, false, JSON.stringify(wrong));
                assert.match(wrong.reasons.join("; "), /the credentials of zkmigrate:reconfigAuth may not write \/zookeeper\/config/);
                assert.ok(!JSON.stringify(wrong).includes("wrong"), "the probe never repeats the credentials");
                // A seed start on a server without reconfigEnabled refuses before it stops anything.
                const h = plain[0];
                const pid = zkPid(f, h);
                const start = await runScript(f, h, renderReconfigStart({ host: f.hostSettings, myid: h.id, seed: [{ id: h.id, address: h.address, peerPort: 2888, electionPort: 3888 }], wipeData: false, spacingSeconds: 0 }), { timeoutMs: 60_000 });
                assert.equal(start.code, 1, describeResult(h.id, start));
                assert.match(start.stderr, /has no reconfigEnabled=true: membershipChange reconfig needs dynamic reconfig on every server; nothing was changed/);
                assert.equal(zkPid(f, h), pid, "the server was not touched");
            });
        });
    }
});
