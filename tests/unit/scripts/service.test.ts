// renderRestart / renderHealthGate / renderStop against a fake ZooKeeper on 127.0.0.1, run with
// bash as on a host. Every fake server is killed by pid in `after`.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { renderHealthGate, renderRestart, renderStop, renderWriteConfig } from "../../../src/scripts";
import type { HostSettings, Membership } from "../../../src/types";
import { binDir, FakeZk, type FakeZkOptions, freePort, runScript, tempDir } from "./harness";

let root: string;
let bin: string;
const fakes: FakeZk[] = [];

before(() => {
    root = tempDir("service");
    bin = binDir(root);
});
after(() => {
    for (const f of fakes) f.kill();
    rmSync(root, { recursive: true, force: true });
});

/** A fake install with myid `myid` in its data dir. */
async function install(name: string, opts: FakeZkOptions = {}, myid = 2): Promise<FakeZk> {
    const zk = new FakeZk(join(root, name), await freePort(), opts);
    fakes.push(zk);
    writeFileSync(join(zk.dataDir, "myid"), `${myid}\n`);
    writeFileSync(join(zk.conf, "zoo.cfg"), "tickTime=2000\n");
    return zk;
}

const TEST = { timeout: 30_000 };

describe("renderRestart", () => {
    it("restarts, passes the health gate (mode and zxid printed), survives a service command reading stdin", TEST, async () => {
        const zk = await install("restart", { mode: "leader" });
        await zk.startNow();
        const host = zk.host();
        // A service command that reads stdin would eat the rest of a `bash -s` script if it could.
        host.service.restart = `cat >/dev/null; ${host.service.restart}`;
        const r = await runScript(renderRestart({ host, myid: 2, mode: "restart", wipeData: false, spacingSeconds: 0 }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /zkmigrate: myid file .* holds 2/);
        assert.match(r.stdout, /zkmigrate: service restart: /);
        assert.match(r.stdout, /zkmigrate: healthy: 127\.0\.0\.1:\d+ serves, Mode: leader, Zxid: 0x100000002/);
        assert.match(r.stdout, /zkmigrate: done: myid 2 serves/);
        assert.ok(zk.running());
    });

    it("starts a stopped server and waits until it serves", TEST, async () => {
        const zk = await install("start", { serveAfterMs: 1500 });
        const r = await runScript(renderRestart({ host: zk.host(), myid: 2, mode: "start", wipeData: false, spacingSeconds: 0 }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /service start: /);
        assert.match(r.stdout, /Mode: follower/);
        assert.ok(r.ms >= 1400, `the gate waited for the server to serve (${r.ms} ms)`);
    });

    it("waits spacingSeconds after the gate", TEST, async () => {
        const zk = await install("spacing");
        const r = await runScript(renderRestart({ host: zk.host(), myid: 2, mode: "start", wipeData: false, spacingSeconds: 2 }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /zkmigrate: waiting 2 s before the next restart in the chain/);
        assert.ok(r.ms >= 2000, `${r.ms} ms`);
    });

    it("wipeData: stops, moves version-2 aside (dataDir and dataLogDir), keeps myid, starts", TEST, async () => {
        const zk = await install("wipe");
        const logDir = join(zk.root, "txlog");
        for (const d of [join(zk.dataDir, "version-2"), join(logDir, "version-2")]) {
            mkdirSync(d, { recursive: true });
            writeFileSync(join(d, "acceptedEpoch"), "1\n");
        }
        writeFileSync(join(zk.dataDir, "version-2", "snapshot.0"), "snap");
        await zk.startNow();
        const host = zk.host({ dataLogDir: logDir });
        const r = await runScript(renderRestart({ host, myid: 2, mode: "restart", wipeData: true, spacingSeconds: 0 }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        for (const dir of [zk.dataDir, logDir]) {
            const moved = readdirSync(dir).filter((f) => /^version-2\.zkmigrate-\d{8}T\d{6}Z$/.test(f));
            assert.equal(moved.length, 1, `${dir}: ${readdirSync(dir)}`);
            assert.equal(readFileSync(join(dir, moved[0], "acceptedEpoch"), "utf8"), "1\n", "moved, not deleted");
            assert.equal(existsSync(join(dir, "version-2")), false);
        }
        assert.equal(readFileSync(join(zk.dataDir, "myid"), "utf8"), "2\n", "myid kept");
        assert.match(r.stdout, /service stop: [\s\S]*moved .*version-2 aside[\s\S]*service start: [\s\S]*healthy/);
        assert.ok(zk.running());
    });

    it("wipeData on a stopped server whose stop command fails, with nothing to move: says so and starts", TEST, async () => {
        const zk = await install("wipe-empty");
        const host = zk.host();
        host.service.stop = "echo 'not running' >&2; exit 5";
        const r = await runScript(renderRestart({ host, myid: 2, mode: "start", wipeData: true, spacingSeconds: 0 }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /warning: service stop exited 5, but nothing listens/);
        assert.match(r.stdout, /version-2 does not exist: nothing to move aside/);
        assert.ok(zk.running());
    });

    it("refuses a wrong or missing myid before touching the service", TEST, async () => {
        const zk = await install("wrong-myid", {}, 9);
        const script = renderRestart({ host: zk.host(), myid: 2, mode: "start", wipeData: true, spacingSeconds: 0 });
        const r = await runScript(script, { binDir: bin });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^zkmigrate: myid file .*\/data\/myid holds 9, expected 2: refusing to start$/m);
        assert.doesNotMatch(r.stdout, /service/);
        assert.equal(zk.running(), false);

        rmSync(join(zk.dataDir, "myid"));
        const missing = await runScript(script, { binDir: bin });
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /myid file .* does not exist, expected 2/);
    });

    it("with expect: writes the membership right before the restart, refusing a config edited by hand since", TEST, async () => {
        const zk = await install("expect");
        const host = zk.host({ dynamic: true });
        writeFileSync(host.paths.configFile, `tickTime=2000\ndynamicConfigFile=${host.paths.dynamicConfigFile}\n`);
        const m: Membership = {
            members: [
                { id: 2, address: "10.0.0.2", peerPort: 2888, electionPort: 3888 },
                { id: 1, address: "10.0.0.1", peerPort: 2888, electionPort: 3888 },
            ],
            quorumListenOnAllIPs: true,
        };
        const next: Membership = { members: [...m.members, { id: 3, address: "10.0.0.3", peerPort: 2888, electionPort: 3888 }], quorumListenOnAllIPs: true };
        const write = await runScript(renderWriteConfig({ host, myid: 2, membership: m }), { binDir: bin });
        assert.equal(write.code, 0, write.stderr);
        // ZooKeeper's own rewrite of the dynamic file (role and client port) is the same membership.
        writeFileSync(host.paths.dynamicConfigFile!, "server.2=10.0.0.2:2888:3888:participant;0.0.0.0:2181\nserver.1=10.0.0.1:2888:3888\n");
        const ok = await runScript(renderRestart({ host, myid: 2, mode: "start", wipeData: false, spacingSeconds: 0, expect: next, before: m }), { binDir: bin });
        assert.equal(ok.code, 0, ok.stderr);
        assert.match(readFileSync(host.paths.dynamicConfigFile!, "utf8"), /server\.3=10\.0\.0\.3:2888:3888/);
        // A re-run after a failure finds the membership it writes already there.
        const again = await runScript(renderRestart({ host, myid: 2, mode: "restart", wipeData: false, spacingSeconds: 0, expect: next, before: m }), { binDir: bin });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /holds the membership this step writes already/);

        // Edited by hand since: neither the recorded membership nor the step's.
        writeFileSync(host.paths.dynamicConfigFile!, "server.2=10.0.0.2:2888:3888\n");
        const refused = await runScript(renderRestart({ host, myid: 2, mode: "restart", wipeData: false, spacingSeconds: 0, expect: next, before: m }), { binDir: bin });
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /holds neither the membership the server runs by the applied record nor the one this step writes: refusing to touch it/);
        assert.match(refused.stderr, /found in .*:\n {4}server\.2=10\.0\.0\.2:2888:3888\n/);
        assert.doesNotMatch(refused.stdout, /service restart/);
        assert.equal(readFileSync(host.paths.dynamicConfigFile!, "utf8"), "server.2=10.0.0.2:2888:3888\n");
    });

    it("validates its input", () => {
        const host: HostSettings = new FakeZk(join(root, "validate"), 2181).host();
        assert.throws(() => renderRestart({ host, myid: 256, mode: "restart", wipeData: false, spacingSeconds: 0 }), /myid/);
        assert.throws(() => renderRestart({ host, myid: 1, mode: "restart", wipeData: false, spacingSeconds: -1 }), /spacingSeconds/);
        assert.throws(() => renderRestart({ host: { ...host, clientPort: 0 }, myid: 1, mode: "restart", wipeData: false, spacingSeconds: 0 }), /clientPort/);
        assert.throws(() => renderRestart({ host: { ...host, service: { ...host.service, restart: " " } }, myid: 1, mode: "restart", wipeData: false, spacingSeconds: 0 }), /service\.restart/);
    });
});

describe("health gate: fails after healthTimeoutSeconds with the precise reason", { concurrency: true }, () => {
    const gate = async (name: string, opts: FakeZkOptions | undefined) => {
        const zk = await install(name, opts ?? {});
        if (opts) await zk.startNow();
        const r = await runScript(renderHealthGate({ host: zk.host({ healthTimeoutSeconds: 3 }) }), { binDir: bin, timeoutMs: 20_000 });
        assert.equal(r.code, 1, r.stdout);
        assert.ok(r.ms >= 2900 && r.ms < 10_000, `bounded by the timeout: ${r.ms} ms`);
        assert.match(r.stderr, /^zkmigrate: health gate failed: 127\.0\.0\.1:\d+ did not answer srvr with a Mode within 3 s$/m);
        assert.match(r.stderr, /^zkmigrate: service status \(.*\) exited \d+:$/m);
        return r;
    };

    it("nothing listens: connection refused, and the status output", TEST, async () => {
        const r = await gate("gate-refused", undefined);
        assert.match(r.stderr, /^zkmigrate: last answer: connection refused on 127\.0\.0\.1:\d+: nothing listens there/m);
        assert.match(r.stderr, /exited 3:\n {4}fake-zk: inactive \(dead\)/);
    });

    it("not serving", TEST, async () => {
        const r = await gate("gate-not-serving", { serving: false });
        assert.match(r.stderr, /^zkmigrate: last answer: the server answers "This ZooKeeper instance is not currently serving requests"/m);
        assert.match(r.stderr, /exited 0:\n {4}fake-zk: active \(running\)/);
    });

    it("srvr not in the whitelist: names the setting", TEST, async () => {
        const r = await gate("gate-whitelist", { allow: ["ruok"] });
        assert.match(r.stderr, /^zkmigrate: last answer: srvr is refused by the server: it is not in the whitelist \(the zoo\.cfg setting 4lw\.commands\.whitelist lacks srvr/m);
    });
});

describe("renderHealthGate", () => {
    it("passes on a serving server and prints the mode", TEST, async () => {
        const zk = await install("gate-ok", { mode: "observer" });
        await zk.startNow();
        const r = await runScript(renderHealthGate({ host: zk.host() }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Mode: observer, Zxid: 0x100000002/);
    });
});

describe("renderStop", () => {
    it("waits until the port is closed", TEST, async () => {
        const zk = await install("stop-slow", { stopDelayMs: 1500 });
        await zk.startNow();
        const r = await runScript(renderStop({ host: zk.host(), disable: false }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.ms >= 1400, `waited for the slow shutdown (${r.ms} ms)`);
        assert.match(r.stdout, /zkmigrate: stopped: 127\.0\.0\.1:\d+ no longer accepts connections/);
        assert.equal(zk.running(), false);
        assert.equal(existsSync(join(zk.root, "disabled")), false);
    });

    it("is fine when already stopped; stop-and-disable runs the disable command", TEST, async () => {
        const zk = await install("stop-stopped");
        const r = await runScript(renderStop({ host: zk.host(), disable: true }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /ZooKeeper looks stopped already/);
        assert.match(r.stdout, /zkmigrate: disabled/);
        assert.ok(existsSync(join(zk.root, "disabled")));
    });

    it("tolerates a failing stop command when nothing listens", TEST, async () => {
        const zk = await install("stop-fails");
        const host = zk.host();
        host.service.stop = "echo 'no such process' >&2; exit 5";
        const r = await runScript(renderStop({ host, disable: false }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /warning: service stop exited 5, but nothing listens/);
    });

    it("fails when the server keeps listening", TEST, async () => {
        const zk = await install("stop-stuck");
        await zk.startNow();
        const host = zk.host({ healthTimeoutSeconds: 2 });
        host.service.stop = "true";
        const r = await runScript(renderStop({ host, disable: true }), { binDir: bin });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^zkmigrate: 127\.0\.0\.1:\d+ still accepts connections 2 s after stop$/m);
        assert.equal(existsSync(join(zk.root, "disabled")), false, "not disabled");
    });
});
