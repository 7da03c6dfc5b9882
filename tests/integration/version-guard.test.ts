// The version guard against real ZooKeeper releases from Maven Central: 3.6.1 and 3.5.8 (affected by
// ZOOKEEPER-3829/3830) and the default 3.9.x, each a standalone server on its own loopback address.
// The preview's probe reads each release with srvr and the guard refuses the step into `joined`;
// the preflight script, run for real against the 3.6.1 server, refuses it too.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_ZK_VERSION, fourLetter, modeOf, sleep, startLocalZooKeeper } from "../../rehearsal/zookeeper";
import { appliedOf, loadConfig, serversOf, type RawConfig } from "../../src/config";
import { planFleet } from "../../src/model";
import { renderPreflight } from "../../src/scripts";
import type { LeaderInfo } from "../../src/steps";
import { versionGuard } from "../../src/version-guard";
import { probeLeaders } from "../../src/zk";
import { binDir, runScript } from "../unit/scripts/harness";
import { TEST_SSH } from "../fixtures";

const TEST = { timeout: 600_000 };

/** A port free on 127.0.0.1 a moment ago (the servers bind it on 127.0.0.1, .2 and .3). */
function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as { port: number }).port;
            s.close(() => resolve(port));
        });
    });
}

describe("version guard with real ZooKeeper releases (ZOOKEEPER-3829/3830)", () => {
    const dir = mkdtempSync(join(tmpdir(), "zkmigrate-version-guard-cr-"));
    const servers: { stop(): Promise<void> }[] = [];
    let port = 0;
    const releases = ["3.6.1", "3.5.8", DEFAULT_ZK_VERSION];

    before(async () => {
        port = await freePort();
        // One at a time: the machine is shared, and each JVM start is the slow part.
        for (const [i, version] of releases.entries()) {
            const address = `127.0.0.${i + 1}`;
            servers.push(await startLocalZooKeeper({ dir: join(dir, `zk${i + 1}`), clientPort: port, version, settings: { clientPortAddress: address } }));
            // startLocalZooKeeper waits for 127.0.0.1: wait for this server's own address too (bounded).
            const deadline = Date.now() + 90_000;
            let last = "";
            for (;;) {
                try {
                    const answer = await fourLetter(address, port, "srvr", 2000);
                    if (modeOf(answer)) break;
                    last = answer.trim();
                } catch (err) {
                    last = (err as Error).message;
                }
                if (Date.now() > deadline) throw new Error(`ZooKeeper ${version} on ${address}:${port} did not serve within 90 s (last: ${last}); see ${join(dir, `zk${i + 1}`, "zookeeper.log")}`);
                await sleep(200);
            }
        }
    }, TEST);

    after(async () => {
        for (const s of servers) await s.stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
    });

    const raw = (phase: string): RawConfig => ({
        ...TEST_SSH,
        leaderProbe: true,
        ensembles: [
            {
                name: "kafka-cr",
                procedure: "mitosis",
                joinAs: "voter", // the seed's voter join (the default is observer)
                phase,
                source: [1, 2, 3].map((id) => ({ id, host: `127.0.0.${id}` })),
                target: [4, 5, 6].map((id) => ({ id, host: `127.0.0.${id}` })),
                targetEmpty: true,
                zookeeper: { clientPort: port, peerPort: port + 1, electionPort: port + 2 },
            },
        ],
    });

    it("the preview reads each release and refuses the step into `joined`, naming the tickets", TEST, async () => {
        const config = loadConfig(raw("joined"));
        const applied = Object.fromEntries(loadConfig(raw("separate")).ensembles.map((e) => [e.name, appliedOf(e)]));
        const plans = planFleet(config, applied);
        // As index.ts probes: srvr to every server of the ensemble, on its client port.
        const e = config.ensembles[0];
        const info: LeaderInfo = await probeLeaders(serversOf(e).map((s) => ({ id: s.id, address: s.host, port: e.ports.client })), 3000);
        assert.deepEqual(info.versions, { 1: "3.6.1", 2: "3.5.8", 3: DEFAULT_ZK_VERSION }, "the releases srvr reported (the targets do not run)");
        const g = versionGuard(config.ensembles, plans, { [e.name]: info });
        assert.equal(g.issues.length, 1);
        assert.equal(g.issues[0].path, "zkmigrate:ensembles[kafka-cr].phase");
        assert.match(
            g.issues[0].reason,
            /^this step restarts servers 1, 2, 3, 4, 5 into a new membership, and server 1 runs ZooKeeper 3\.6\.1, server 2 runs ZooKeeper 3\.5\.8 \(read with srvr\): ZOOKEEPER-3829\/ZOOKEEPER-3830: .*upgrade to 3\.5\.9, 3\.6\.2, 3\.7\.0 or later first/,
        );
        // The same servers, a step that changes no membership (the clients move): no refusal.
        const atClients = planFleet(loadConfig(raw("clients")), Object.fromEntries(config.ensembles.map((x) => [x.name, appliedOf(x)])));
        assert.deepEqual(versionGuard(config.ensembles, atClients, { [e.name]: info }).issues, []);
    });

    it("the preflight script refuses the 3.6.1 server it runs beside", TEST, async () => {
        const config = loadConfig(raw("separate"));
        const plan = planFleet(config, {}).get("kafka-cr")!;
        const step = plan.plan.steps.find((s) => s.kind === "preflight" && s.server === 1);
        assert.ok(step && step.kind === "preflight" && step.check.versionGuard === true, "the first phase's preflight asks for the version check");
        // Only the version check matters here: no reach, the zoo.cfg of the local server.
        const host = { ...step.settings, clientPort: port, paths: { ...step.settings.paths, configFile: join(dir, "zk1", "zoo.cfg"), dataDir: join(dir, "zk1", "data") } };
        const r = await runScript(renderPreflight({ host, reach: [], requireCommands: [], versionGuard: true }), { binDir: binDir(dir) });
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, /zkmigrate: FAILED: ZooKeeper 3\.6\.1 runs here: ZOOKEEPER-3829\/ZOOKEEPER-3830: on ZooKeeper 3\.5\.0–3\.5\.8 and 3\.6\.0–3\.6\.1 a membership change by rolling restart can leave a leader that cannot commit/);
    });
});
