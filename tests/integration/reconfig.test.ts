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
import { commandsOf, isCommandStep } from "../../src/scripts";
import { withAuth } from "../../src/scripts/reconfig";
import type { Step } from "../../src/steps";
import { probeLeaders } from "../../src/zk/four-letter";
import { probeReconfig } from "../../src/zk/reconfig-probe";
import { fleetName, useFleet } from "./helpers/fleet";
import { describeResult, serversOf } from "./helpers/steps";
import { barrier, getChildren, openClient, writeData } from "./helpers/zk";
import { readFileSync } from "node:fs";
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

/** Runs a plan's command steps on the fleet in order (the steps of one group at once), as `pulumi up` does. */
async function runPlan(f: LocalFleet, steps: Step[], o: { stopAt?: string; log: (l: string) => void }): Promise<Map<string, number>> {
    const took = new Map<string, number>();
    const pending = steps.filter((s) => isCommandStep(s) && !s.frozen && (s.effect !== undefined || s.kind === "preflight"));
    const done = new Set<string>(steps.filter((s) => !pending.includes(s)).map((s) => s.id));
    while (pending.length > 0) {
        const ready = pending.filter((s) => s.after.every((a) => done.has(a)));
        assert.ok(ready.length > 0, `no step is ready among ${pending.map((s) => s.id).join(", ")}`);
        await Promise.all(
            ready.map(async (s) => {
                if (!isCommandStep(s) || !s.target) throw new Error(`step ${s.id} runs nowhere`);
                const c = commandsOf(s);
                const script = withAuth(c.update ?? c.create, AUTH);
                const start = Date.now();
                const h = f.hosts.find((x) => x.address === s.target!.host)!;
                const r = await runScript(f, h, script, { timeoutMs: 300_000 });
                took.set(s.id, Date.now() - start);
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

for (const version of VERSIONS) {
    describe(`mitosis by dynamic reconfig, ZooKeeper ${version}`, { timeout: 900_000 }, () => {
        const fleet = useFleet({
            name: fleetName("rcf", version),
            version,
            ensembles: [
                { name: "source", servers: 3, settings: RECONFIG_SETTINGS },
                { name: "target", servers: 3, settings: RECONFIG_SETTINGS },
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
            const timings: Record<string, Map<string, number>> = {};
            try {
                for (const phase of phases) {
                    const config = loadConfig(raw(f, phase));
                    const e = config.ensembles[0];
                    const leader = await probeLeaders([...sources, ...hostsOf(f, "target")].map((h) => ({ id: h.id, address: h.address, port: 2181 })), 2000);
                    const { plan } = planEnsemble(e, applied, leader);
                    log(`${phase}: ${plan.steps.filter((s) => s.effect).map((s) => s.id).join(" -> ") || "(nothing runs)"}`);
                    const splitAt = Date.now();
                    timings[phase] = await runPlan(f, plan.steps, { log });
                    if (phase === "split") log(`targets serve ${Date.now() - splitAt} ms after the firewall`);
                    applied = { [NAME]: appliedOf(e) };
                }
            } finally {
                await writers.stop();
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
                await barrier(tc, "/kafka/data");
                assert.deepEqual((await getChildren(tc, "/kafka/data")).sort(), [...names].sort(), "the targets hold the source's data");
            } finally {
                tc.close();
            }
            const check = await writers.verify(connectString(f, "source"));
            assert.deepEqual(check.lost, [], "every acknowledged write is read back from the source");
            log(`${check.acknowledged} writes acknowledged, 0 lost; source longest gap ${writers.gaps({ start: 0, end: Date.now() }).groupMs} ms`);
        });
    });
}
