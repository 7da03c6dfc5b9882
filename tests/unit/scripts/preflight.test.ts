// renderPreflight, run with bash: every failed check is reported, then exit 1.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { firewallChainName, renderPreflight } from "../../../src/scripts";
import { binDir, FakeZk, type FakeZkOptions, freePort, runScript, tempDir } from "./harness";

const chain = firewallChainName("kafka-main");
const TEST = { timeout: 40_000 };

describe("renderPreflight", () => {
    let root: string;
    let bin: string;
    const fakes: FakeZk[] = [];
    before(() => {
        root = tempDir("preflight");
        bin = binDir(root);
    });
    after(() => {
        for (const f of fakes) f.kill();
        rmSync(root, { recursive: true, force: true });
    });

    async function install(name: string, opts?: FakeZkOptions): Promise<{ zk: FakeZk; env: Record<string, string> }> {
        const zk = new FakeZk(join(root, name), await freePort(), opts ?? {});
        fakes.push(zk);
        writeFileSync(join(zk.conf, "zoo.cfg"), "tickTime=2000\n");
        if (opts) await zk.startNow();
        // The fake iptables keeps its state beside the install.
        return { zk, env: { FAKE_IPTABLES_DIR: zk.root } };
    }

    it("passes when everything is fine", TEST, async () => {
        const { zk, env } = await install("fine", { znodes: 5 });
        const script = renderPreflight({
            host: zk.host(),
            reach: [{ address: "127.0.0.1", port: zk.port }],
            requireCommands: ["bash", "awk", "iptables"],
            noLeftoverChain: chain,
            emptyTarget: { maxZnodes: 5 },
            resolveNames: ["localhost"],
        });
        const r = await runScript(script, { binDir: bin, env });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, "");
        for (const line of [
            /ok: zoo\.cfg .* exists and is readable/,
            /ok: command awk: /,
            new RegExp(`ok: 127\\.0\\.0\\.1:${zk.port} accepts TCP connections`),
            /ok: localhost resolves: /,
            new RegExp(`ok: iptables has no chain ${chain}-IN`),
            new RegExp(`ok: ip6tables has no chain ${chain}-OUT`),
            /ok: target is empty: 5 znodes \(at most 5\)/,
            /zkmigrate: preflight passed/,
        ]) {
            assert.match(r.stdout, line);
        }
    });

    it("reports every failed check, then exits 1", TEST, async () => {
        const { zk, env } = await install("all-wrong", { znodes: 1234 });
        rmSync(join(zk.conf, "zoo.cfg"));
        execFileSync(join(bin, "iptables"), ["-N", `${chain}-IN`], { env: { ...process.env, ...env } });
        const closed = await freePort();
        const script = renderPreflight({
            host: zk.host(),
            reach: [
                { address: "127.0.0.1", port: closed },
                { address: "127.0.0.1", port: zk.port },
                // A server that does not run yet: refused is fine (the path is open).
                { address: "127.0.0.1", port: closed, listening: false },
            ],
            requireCommands: ["bash", "zkmigrate-no-such-command"],
            noLeftoverChain: chain,
            emptyTarget: { maxZnodes: 5 },
            resolveNames: ["localhost", "zkmigrate-does-not-exist.invalid"],
        });
        const r = await runScript(script, { binDir: bin, env });
        assert.equal(r.code, 1, r.stdout);
        const failed = r.stderr.split("\n").filter((l) => l.startsWith("zkmigrate: FAILED: "));
        assert.equal(failed.length, 6, r.stderr);
        assert.match(r.stderr, /FAILED: zoo\.cfg .*\/conf\/zoo\.cfg does not exist/);
        assert.match(r.stderr, /FAILED: command zkmigrate-no-such-command is not installed/);
        assert.match(r.stderr, new RegExp(`FAILED: 127\\.0\\.0\\.1:${closed} does not accept TCP connections: .*Connection refused`));
        assert.match(r.stderr, /FAILED: zkmigrate-does-not-exist\.invalid does not resolve \(getent hosts/);
        assert.match(r.stderr, new RegExp(`FAILED: iptables chain ${chain}-IN exists: a leftover firewall split`));
        assert.match(r.stderr, /FAILED: target is not empty: 1234 znodes \(at most 5/);
        assert.match(r.stderr, /^zkmigrate: preflight failed: 6 check\(s\) failed/m);
        // The checks that passed are still reported.
        assert.match(r.stdout, /ok: command bash/);
        assert.match(r.stdout, /ok: localhost resolves/);
        assert.match(r.stdout, new RegExp(`ok: 127\\.0\\.0\\.1:${closed} is reachable \\(refused: its server does not run yet\\)`));
        assert.match(r.stdout, new RegExp(`ok: iptables has no chain ${chain}-OUT`));
    });

    it("counts znodes with srvr when mntr is not in the whitelist", TEST, async () => {
        const { zk, env } = await install("srvr-only", { allow: ["srvr"], znodes: 42 });
        const r = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [], emptyTarget: { maxZnodes: 5 } }), { binDir: bin, env });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /FAILED: target is not empty: 42 znodes/);
    });

    it("a server that does not answer: empty only without snapshots", TEST, async () => {
        const { zk, env } = await install("stopped");
        const script = renderPreflight({ host: zk.host(), reach: [], requireCommands: [], emptyTarget: { maxZnodes: 5 } });
        const empty = await runScript(script, { binDir: bin, env });
        assert.equal(empty.code, 0, empty.stderr);
        assert.match(empty.stdout, /ok: target is empty: the local server does not answer and .* holds no snapshot/);

        mkdirSync(join(zk.dataDir, "version-2"));
        writeFileSync(join(zk.dataDir, "version-2", "snapshot.1a2b"), "x");
        const full = await runScript(script, { binDir: bin, env });
        assert.equal(full.code, 1);
        assert.match(full.stderr, /FAILED: target is not empty: the local server does not answer \(connection refused .*\) and .*version-2 holds snapshots: .*snapshot\.1a2b/);
    });

    it("a server that is not serving falls back to the snapshots too", TEST, async () => {
        const { zk, env } = await install("not-serving", { serving: false });
        mkdirSync(join(zk.dataDir, "version-2"));
        writeFileSync(join(zk.dataDir, "version-2", "snapshot.0"), "x");
        const r = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [], emptyTarget: { maxZnodes: 5 } }), { binDir: bin, env });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /does not answer \(the server answers "This ZooKeeper instance is not currently serving requests"/);
    });

    it("fails on observers in the config (zkmigrate would write them as voters)", TEST, async () => {
        const { zk, env } = await install("observer");
        writeFileSync(join(zk.conf, "zoo.cfg"), "tickTime=2000\nserver.1=a:2888:3888\nserver.4=b:2888:3888:observer\n");
        const r = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [] }), { binDir: bin, env });
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, /FAILED: observers in the config that the plan does not declare, which zkmigrate would write as voters: .*zoo\.cfg: server\.4=b:2888:3888:observer/);
        // The observer join's planned observers pass; peerType=observer only on a planned observer.
        writeFileSync(join(zk.conf, "zoo.cfg"), "tickTime=2000\npeerType=observer\nserver.1=a:2888:3888\nserver.4=b:2888:3888:observer\n");
        const planned = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [], observers: { ids: [4], observer: true } }), { binDir: bin, env });
        assert.equal(planned.code, 0, planned.stderr);
        assert.match(planned.stdout, /ok: no observer in the config but the planned ones \(4\)/);
        const notThis = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [], observers: { ids: [4], observer: false } }), { binDir: bin, env });
        assert.equal(notThis.code, 1, notThis.stdout);
        assert.match(notThis.stderr, /zoo\.cfg: peerType=observer/);
        writeFileSync(join(zk.conf, "zoo.cfg"), "tickTime=2000\nserver.1=a:2888:3888\n");
        const ok = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [] }), { binDir: bin, env });
        assert.match(ok.stdout, /ok: no observer in the config/);
    });

    // ZOOKEEPER-3829/3830: the releases whose rolling membership changes can leave a leader that cannot commit.
    for (const [version, affected] of [["3.5.0", true], ["3.5.8", true], ["3.6.1", true], ["3.5.9", false], ["3.6.2", false], ["3.9.3", false], ["3.4.14", false]] as const) {
        it(`the version guard ${affected ? "refuses" : "passes"} ZooKeeper ${version}`, TEST, async () => {
            const { zk, env } = await install(`version-${version}`, { version });
            const r = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [], versionGuard: true }), { binDir: bin, env });
            if (affected) {
                assert.equal(r.code, 1, r.stdout);
                assert.match(
                    r.stderr,
                    new RegExp(
                        `FAILED: ZooKeeper ${version.replace(/\./g, "\\.")} runs here: ZOOKEEPER-3829/ZOOKEEPER-3830: on ZooKeeper 3\\.5\\.0–3\\.5\\.8 and 3\\.6\\.0–3\\.6\\.1 a membership change by rolling restart can leave a leader that cannot commit; upgrade to 3\\.5\\.9, 3\\.6\\.2, 3\\.7\\.0 or later first`,
                    ),
                );
            } else {
                assert.equal(r.code, 0, r.stderr);
                assert.match(r.stdout, new RegExp(`ok: ZooKeeper ${version.replace(/\./g, "\\.")} is not affected by ZOOKEEPER-3829/ZOOKEEPER-3830`));
            }
        });
    }

    it("the version guard warns when the version cannot be read, and runs only when asked", TEST, async () => {
        const { zk, env } = await install("version-unknown", { allow: ["mntr"], version: "3.6.1" });
        const r = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [], versionGuard: true }), { binDir: bin, env });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /warning: the ZooKeeper version could not be read \(srvr is refused by the server: it is not in the whitelist.*\): ZOOKEEPER-3829/);
        const off = await runScript(renderPreflight({ host: zk.host(), reach: [], requireCommands: [] }), { binDir: bin, env });
        assert.equal(off.code, 0, off.stderr);
        assert.doesNotMatch(off.stdout + off.stderr, /ZOOKEEPER-3829/);
    });

    it("validates its input", () => {
        const host = new FakeZk(join(root, "validate"), 2181).host();
        assert.throws(() => renderPreflight({ host, reach: [{ address: "a b", port: 1 }], requireCommands: [] }), /reach address/);
        assert.throws(() => renderPreflight({ host, reach: [{ address: "a", port: 70000 }], requireCommands: [] }), /reach port/);
        assert.throws(() => renderPreflight({ host, reach: [], requireCommands: ["rm -rf"] }), /plain command name/);
        assert.throws(() => renderPreflight({ host, reach: [], requireCommands: [], noLeftoverChain: "bad chain" }), /firewall chain/);
        assert.throws(() => renderPreflight({ host, reach: [], requireCommands: [], resolveNames: ["x\ny"] }), /name to resolve/);
    });
});
