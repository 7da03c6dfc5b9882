// The EC2 ensemble's user data, run for real: three hosts of a local fleet (network namespaces,
// sshd, no ZooKeeper running) each run the user data rendered for their myid, over SSH and all at
// once, as three instances booting together would. What differs from EC2 is set through the
// script's documented variables: ZKMIGRATE_ZK_DIST (the Maven-fetched jars instead of the Apache
// download), ZKMIGRATE_JAVA (the machine's java instead of a JRE package) and
// ZKMIGRATE_SERVICE_MANAGER=none (no systemd in a namespace: the script starts the launcher
// itself). The paths are under the hosts' own directory, so nothing of this machine is touched.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { after, describe, it } from "node:test";
import { hostsOf, runScript, sshRun, type LocalFleet, type FleetHost } from "../../rehearsal/fleet";
import { ensureZooKeeper, findCommand, fourLetter, modeOf } from "../../rehearsal/zookeeper";
import { launcherPath, renderUnit, renderUserData, renderZooCfg, resolveEc2Ensemble, hostSettingsOf, membershipOf, type Ec2Ensemble } from "../../src/ec2";
import { asRemoteCommand, renderHealthGate, renderWriteConfig, shellQuote } from "../../src/scripts";
import { VERSIONS, fleetName, useFleet } from "./helpers/fleet";
import { describeResult } from "./helpers/steps";
import { create, getData, openClient } from "./helpers/zk";

/** The ensemble as the component would resolve it, on the fleet's hosts and under their own directory. */
function ensembleOn(f: LocalFleet, version: string): Ec2Ensemble {
    const hosts = hostsOf(f, "ec2");
    const root = join(f.mountPoint, "ec2");
    return resolveEc2Ensemble("ec2ud", {
        owner: "zkmigrate-integration-tests",
        ttlHours: 1,
        version,
        vpcId: "vpc-local",
        subnetId: "subnet-local",
        subnetCidr: f.subnet,
        ids: hosts.map((h) => h.id),
        privateIps: hosts.map((h) => h.address),
        adminCidrs: [f.subnet],
        keyName: "local",
        heapMb: 128,
        readyTimeoutSeconds: 120,
        paths: {
            configFile: `${root}/etc/zookeeper/conf/zoo.cfg`,
            dataDir: `${root}/var/lib/zookeeper`,
            installDir: `${root}/opt/zookeeper`,
            logDir: `${root}/var/log/zookeeper`,
            unitFile: `${root}/etc/systemd/system/zookeeper.service`,
        },
    });
}

/** A path the hosts see under the mount point, as the test sees it for host `h`. */
const onHost = (f: LocalFleet, h: FleetHost, p: string) => join(h.dir, p.slice(f.mountPoint.length));

/** The user data over SSH, with the documented variables set for a namespace host. */
function runUserData(f: LocalFleet, h: FleetHost, script: string, env: Record<string, string>) {
    const vars = Object.entries(env)
        .map(([k, v]) => `${k}=${shellQuote(v)}`)
        .join(" ");
    return sshRun(f, h, `${vars} ${asRemoteCommand(script)}`, 240_000);
}

for (const VERSION of VERSIONS) {
    const NAME = fleetName("ec2ud", VERSION);
    describe(`EC2 user data on local hosts, ZooKeeper ${VERSION}`, { timeout: 900_000 }, () => {
        const fleet = useFleet({ name: NAME, version: VERSION, ensembles: [{ name: "ec2", servers: 3, start: false }] });
        after(() => {
            // destroyFleet kills whatever runs in the fleet's namespaces, our servers included: check.
            const left = execFileSync("sh", ["-c", "pgrep -af QuorumPeerMain || true"], { encoding: "utf8" })
                .split("\n")
                .filter((l) => l.includes(`/${NAME}/host/ec2/`));
            assert.deepEqual(left, [], "no server started by the user data survives the fleet");
        });

        let env: Record<string, string>;
        let e: Ec2Ensemble;

        it("three hosts run their user data at once: each installs, configures and starts its server, and waits until it serves", async () => {
            const f = fleet();
            e = ensembleOn(f, VERSION);
            // ZKMIGRATE_ZK_DIST: a directory of the release's jars (here those Maven fetched).
            const { classpath } = await ensureZooKeeper(VERSION);
            const dist = join(f.dir, "ec2-dist");
            mkdirSync(dist, { recursive: true });
            for (const jar of classpath.split(":")) {
                if (!existsSync(join(dist, basename(jar)))) symlinkSync(jar, join(dist, basename(jar)));
            }
            env = { ZKMIGRATE_ZK_DIST: dist, ZKMIGRATE_JAVA: findCommand("java")!, ZKMIGRATE_SERVICE_MANAGER: "none" };

            const hosts = hostsOf(f, "ec2");
            const results = await Promise.all(hosts.map((h) => runUserData(f, h, renderUserData(e, h.id), env)));
            results.forEach((r, i) => {
                const id = hosts[i].id;
                assert.equal(r.code, 0, describeResult(id, r));
                assert.match(r.stdout, new RegExp(`ZooKeeper ${VERSION.replace(/\./g, "\\.")} from ZKMIGRATE_ZK_DIST=.* not downloaded`));
                assert.match(r.stdout, new RegExp(`serving: myid ${id} of ec2ud, ZooKeeper ${VERSION.replace(/\./g, "\\.")}, Mode: (leader|follower)`), r.stdout);
            });
            console.log(`  user data runs: ${results.map((r, i) => `myid ${hosts[i].id} ${(r.ms / 1000).toFixed(1)} s`).join(", ")}`);

            // From outside: one leader, two followers, at the addresses zoo.cfg names.
            const modes = await Promise.all(hosts.map(async (h) => modeOf(await fourLetter(h.address, 2181, "srvr", 3000))));
            assert.deepEqual([...modes].sort(), ["follower", "follower", "leader"]);
        });

        it("wrote what src/ec2 rendered: zoo.cfg with the whole membership, myid, the launcher and the unit", () => {
            const f = fleet();
            for (const h of hostsOf(f, "ec2")) {
                assert.equal(readFileSync(onHost(f, h, e.paths.configFile), "utf8"), renderZooCfg(e));
                assert.equal(readFileSync(onHost(f, h, e.paths.myidFile), "utf8"), `${h.id}\n`);
                assert.equal(readFileSync(onHost(f, h, e.paths.unitFile), "utf8"), renderUnit(e, h.id));
                const launcher = onHost(f, h, launcherPath(e));
                assert.equal(statSync(launcher).mode & 0o777, 0o755);
                assert.match(readFileSync(launcher, "utf8"), /^exec .*java .*-Xmx128m .*-cp .*\/opt\/zookeeper\/conf:.*\/opt\/zookeeper\/lib\/\\\* org\.apache\.zookeeper\.server\.quorum\.QuorumPeerMain .*zoo\.cfg$/m);
                assert.ok(existsSync(onHost(f, h, `${e.paths.installDir}/lib/zookeeper-${VERSION}.jar`)), "the release's jar is installed");
            }
        });

        it("is an ensemble: a write through one server is read through another", async () => {
            const f = fleet();
            const [a, b] = hostsOf(f, "ec2");
            const ca = await openClient(`${a.address}:2181`);
            const cb = await openClient(`${b.address}:2181`);
            try {
                await create(ca, "/ec2ud-probe", "written through myid " + a.id);
                // sync-free read: retry until the follower has applied it (bounded).
                let seen = "";
                for (let i = 0; i < 50 && seen === ""; i++) {
                    seen = await getData(cb, "/ec2ud-probe").catch(() => "");
                    if (seen === "") await new Promise((r) => setTimeout(r, 100));
                }
                assert.equal(seen, "written through myid " + a.id);
            } finally {
                ca.close();
                cb.close();
            }
        });

        it("zkmigrate takes it over as it is: its config step finds zoo.cfg and myid unchanged, its health gate passes", async () => {
            const f = fleet();
            const host = { ...hostSettingsOf(e), healthTimeoutSeconds: 30 };
            for (const h of hostsOf(f, "ec2")) {
                const w = await runScript(f, h, renderWriteConfig({ host, myid: h.id, membership: membershipOf(e) }));
                assert.equal(w.code, 0, describeResult(h.id, w));
                assert.match(w.stdout, new RegExp(`${e.paths.configFile.replace(/[.]/g, "\\.")} unchanged`));
                assert.match(w.stdout, /myid unchanged \(holds \d+\)/);
                const g = await runScript(f, h, renderHealthGate({ host }));
                assert.equal(g.code, 0, describeResult(h.id, g));
                assert.match(g.stdout, /healthy: .* Mode: (leader|follower)/);
            }
        });

        it("running it again changes nothing: files kept, the running server left alone", async () => {
            const f = fleet();
            const h = hostsOf(f, "ec2")[0];
            const pidFile = onHost(f, h, `${e.paths.dataDir}/zookeeper_server.pid`);
            const pid = readFileSync(pidFile, "utf8").trim();
            const r = await runUserData(f, h, renderUserData(e, h.id), env);
            assert.equal(r.code, 0, describeResult(h.id, r));
            assert.match(r.stdout, new RegExp(`ZooKeeper ${VERSION.replace(/\./g, "\\.")} is installed in`));
            assert.match(r.stdout, /zoo\.cfg exists: kept/);
            assert.match(r.stdout, /myid exists: kept/);
            assert.match(r.stdout, new RegExp(`ZooKeeper already runs \\(pid ${pid},`));
            assert.match(r.stdout, /serving: myid/);
            assert.equal(readFileSync(pidFile, "utf8").trim(), pid);
        });
    });
}
