// `zkmigrate smoke` and `zkmigrate status` against real ZooKeeper (standalone servers on
// 127.0.0.1 from rehearsal/zookeeper.ts), for the oldest and the newest supported line.
// A missing prerequisite (java, mvn) fails these tests with the Debian package to install.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requireCommand, startLocalZooKeeper } from "../../../rehearsal/zookeeper";
import { call, closeSession, openSession, parseConnectString, type Session, type SmokeReport, type StatusReport } from "../../../src/zk";
import { closedPort, runCli } from "../../unit/cli/helpers";

type Server = Awaited<ReturnType<typeof startLocalZooKeeper>>;

/** A free port on 127.0.0.1 (bound, then released). */
const freePort = closedPort;

/**
 * A standalone ZooKeeper on 127.0.0.1 for the enclosing suite: started in its before hook (java
 * and mvn named first, so that a missing tool fails with its Debian package), stopped and its
 * directory removed in its after hook.
 */
function suiteZooKeeper(label: string, version: string, settings?: Record<string, string>): { readonly port: number; readonly server: Server } {
    let dir = "";
    let server: Server | undefined;
    let port = 0;
    before(async () => {
        requireCommand("java", "to run ZooKeeper for the zkmigrate CLI tests");
        requireCommand("mvn", "to fetch ZooKeeper for the zkmigrate CLI tests");
        dir = mkdtempSync(join(tmpdir(), `zkmigrate-cli-${label}-`));
        port = await freePort();
        server = await startLocalZooKeeper({ dir: join(dir, "zk"), clientPort: port, version, ...(settings ? { settings } : {}) });
    });
    after(async () => {
        await server?.stop();
        if (dir) rmSync(dir, { recursive: true, force: true });
    });
    return {
        get port() {
            return port;
        },
        get server() {
            if (!server) throw new Error(`the ZooKeeper ${version} of this suite did not start`);
            return server;
        },
    };
}

/** Top-level znodes, through a session of our own (bounded). */
async function withSession<T>(connect: string, f: (s: Session) => Promise<T>): Promise<T> {
    const c = parseConnectString(connect);
    const s = await openSession(c.servers[0], c.chroot, 10_000);
    try {
        return await f(s);
    } finally {
        await closeSession(s);
    }
}
const children = (s: Session, path: string) => call<string[]>(`list ${path}`, 10_000, (cb) => s.client.getChildren(path, cb));

for (const version of ["3.5", "3.9"]) {
    describe(`zkmigrate against ZooKeeper ${version} (standalone on 127.0.0.1)`, { timeout: 600_000 }, () => {
        const zk = suiteZooKeeper(version, version);

        it("smoke passes on every server of the connect string (the same server as 127.0.0.1 and localhost)", async () => {
            const r = await runCli(["smoke", `127.0.0.1:${zk.port},localhost:${zk.port}`, "--count", "5", "--timeout", "10000"]);
            assert.equal(r.code, 0, r.stdout + r.stderr);
            assert.match(r.stdout, /^SERVER\s+PEER\s+OP\s+N\s+MIN ms\s+MEDIAN ms\s+MAX ms\s+RESULT$/m);
            assert.match(r.stdout, new RegExp(`^127\\.0\\.0\\.1:${zk.port}\\s+localhost:${zk.port}\\s+connect\\s+1\\s+[\\d.]+\\s+[\\d.]+\\s+[\\d.]+\\s+ok$`, "m"));
            assert.match(r.stdout, new RegExp(`^localhost:${zk.port}\\s+127\\.0\\.0\\.1:${zk.port}\\s+connect\\s+1\\s+`, "m"));
            for (const op of ["create", "get", "get-peer", "set", "watch", "delete", "ephemeral", "sync-peer", "exists-peer"]) {
                assert.match(r.stdout, new RegExp(`^\\s+${op}\\s+\\d+\\s+\\d+\\.\\d\\d\\s+\\d+\\.\\d\\d\\s+\\d+\\.\\d\\d$`, "m"), `${op} row:\n${r.stdout}`);
            }
            assert.match(r.stdout, /^smoke ok: 2 servers, test znodes \/zkmigrate-smoke\/[0-9a-f]{8}-\* removed$/m);
            const left = await withSession(`127.0.0.1:${zk.port}`, (s) => children(s, "/"));
            assert.deepEqual(left.filter((c) => c.startsWith("zkmigrate-smoke")), [], "smoke removes its znodes");
        });

        it("smoke --json: per server and operation min <= median <= max, every sample counted", async () => {
            const r = await runCli(["smoke", `127.0.0.1:${zk.port},localhost:${zk.port}`, "--count", "4", "--json"]);
            assert.equal(r.code, 0, r.stdout + r.stderr);
            const report = JSON.parse(r.stdout) as SmokeReport;
            assert.equal(report.ok, true);
            assert.equal(report.servers.length, 2);
            for (const s of report.servers) {
                assert.equal(s.ok, true, s.failures.join("\n"));
                assert.equal(s.session, true);
                const byOp = Object.fromEntries(s.latencies.map((l) => [l.op, l]));
                assert.equal(byOp.connect.samples, 1);
                assert.equal(byOp.create.samples, 5, "the test znode and 4 children");
                assert.equal(byOp.set.samples, 4);
                assert.equal(byOp.watch.samples, 4);
                assert.equal(byOp.delete.samples, 6, "4 children, the ephemeral, the test znode");
                assert.equal(byOp["exists-peer"].samples, 1);
                for (const l of s.latencies) {
                    assert.ok(l.minMs > 0 && l.minMs <= l.medianMs && l.medianMs <= l.maxMs && l.maxMs < 10_000, JSON.stringify(l));
                }
            }
        });

        it("two smoke runs at once share /zkmigrate-smoke and both pass", async () => {
            const runs = await Promise.all([1, 2].map(() => runCli(["smoke", `127.0.0.1:${zk.port}`, "--count", "10"])));
            for (const r of runs) assert.equal(r.code, 0, r.stdout + r.stderr);
            const left = await withSession(`127.0.0.1:${zk.port}`, (s) => children(s, "/"));
            assert.deepEqual(left.filter((c) => c.startsWith("zkmigrate-smoke")), []);
        });

        it("smoke honours the chroot, and names a missing one", async () => {
            await withSession(`127.0.0.1:${zk.port}`, (s) => call<string>("create /zkm-chroot", 10_000, (cb) => s.client.create("/zkm-chroot", cb)));
            const ok = await runCli(["smoke", `127.0.0.1:${zk.port}/zkm-chroot`, "--count", "2", "--json"]);
            assert.equal(ok.code, 0, ok.stdout + ok.stderr);
            const report = JSON.parse(ok.stdout) as SmokeReport;
            assert.equal(report.chroot, "/zkm-chroot");
            assert.deepEqual(await withSession(`127.0.0.1:${zk.port}`, (s) => children(s, "/zkm-chroot")), [], "nothing left under the chroot");

            const missing = await runCli(["smoke", `127.0.0.1:${zk.port}/zkm-missing`, "--count", "1"]);
            assert.equal(missing.code, 1, missing.stdout + missing.stderr);
            assert.match(missing.stdout, new RegExp(`FAILED 127\\.0\\.0\\.1:${zk.port}: create /zkmigrate-smoke: NO_NODE \\(through 127\\.0\\.0\\.1:${zk.port}\\) \\(the chroot /zkm-missing does not exist: create it first\\)`));
            assert.match(missing.stdout, /^smoke FAILED: 1 of 1 server failed$/m);
        });

        it("status shows the standalone server twice, from srvr, mntr and conf", async () => {
            const r = await runCli(["status", `127.0.0.1:${zk.port},localhost:${zk.port}`]);
            assert.equal(r.code, 0, r.stdout + r.stderr);
            const lines = r.stdout.split("\n");
            assert.match(lines[0], /^SERVER\s+MYID\s+MODE\s+ZXID\s+EPOCH\s+ZNODES\s+SYNCED\s+OUTSTANDING\s+LATENCY ms min\/avg\/max\s+VERSION$/);
            assert.match(lines[1], new RegExp(`^127\\.0\\.0\\.1:${zk.port}\\s+0\\s+standalone\\s+0x[0-9a-f]+\\s+\\d+\\s+\\d+\\s+-\\s+\\d+\\s+[\\d.]+/[\\d.]+/[\\d.]+\\s+${zk.server.version.replace(/\./g, "\\.")}$`));
            assert.match(lines[2], new RegExp(`^localhost:${zk.port}\\s+0\\s+standalone\\s+`));
            assert.match(r.stdout, /^2 of 2 servers answered and serve$/m);

            const j = await runCli(["status", `127.0.0.1:${zk.port}`, "--json"]);
            assert.equal(j.code, 0);
            const [s] = (JSON.parse(j.stdout) as StatusReport).servers;
            assert.equal(s.mode, "standalone");
            assert.equal(s.version, zk.server.version);
            assert.equal(s.myid, 0);
            assert.equal(s.conf?.clientPort, zk.port);
            assert.equal(s.mntr?.serverState, "standalone");
            assert.ok(s.nodeCount !== undefined && s.nodeCount >= 4, `node count ${s.nodeCount}`);
            assert.equal(s.nodeCount, s.mntr?.znodeCount);
            assert.ok(s.zxid && s.epoch === s.zxid.epoch);
            assert.deepEqual(s.problems, []);
        });

        it("the bin (npx zkmigrate) with --verbose: the same checks, what it does on stderr", async () => {
            const r = await runCli(["--verbose", "smoke", `127.0.0.1:${zk.port}`, "--count", "2"], 60_000, { bin: true, cwd: "/" });
            assert.equal(r.code, 0, r.stdout + r.stderr);
            assert.match(r.stdout, /^smoke ok: 1 server, test znodes /m);
            assert.match(r.stderr, /^\[\d+\.\d{3}s\] smoke: 1 server\(s\), 2 rounds each, timeout 5000 ms$/m);
            assert.match(r.stderr, new RegExp(`^\\[\\d+\\.\\d{3}s\\] smoke: 127\\.0\\.0\\.1:${zk.port} \\(peer 127\\.0\\.0\\.1:${zk.port}\\) /zkmigrate-smoke/[0-9a-f]{8}-1$`, "m"));
            assert.match(r.stderr, /\] smoke: exit 0$/m);
            const st = await runCli(["status", `127.0.0.1:${zk.port}`, "-v"], 60_000, { bin: true });
            assert.equal(st.code, 0, st.stdout + st.stderr);
            assert.match(st.stderr, new RegExp(`status: 127\\.0\\.0\\.1:${zk.port}: answered \\(standalone\\)$`, "m"));
        });

        it("copy: --verbose names the stages; a missing source path is a JSON error of kind check (exit 1) under --json", async () => {
            await withSession(`127.0.0.1:${zk.port}`, async (s) => {
                await call<string>("create /cli-copy", 10_000, (cb) => s.client.create("/cli-copy", Buffer.from("x"), cb));
                await call<string>("create /cli-copy/a", 10_000, (cb) => s.client.create("/cli-copy/a", Buffer.from("y"), cb));
            });
            const ok = await runCli(["copy", `127.0.0.1:${zk.port}/cli-copy`, `127.0.0.1:${zk.port}/cli-copied`, "--verbose", "--verify"]);
            assert.equal(ok.code, 0, ok.stdout + ok.stderr);
            assert.match(ok.stderr, /\] copy: 127\.0\.0\.1:\d+\/cli-copy -> 127\.0\.0\.1:\d+\/cli-copied: batches of at most 1000 ops, target jute\.maxbuffer 1048575$/m);
            assert.match(ok.stderr, /\] copy: read source done: 2 znodes$/m);
            assert.match(ok.stderr, /\] copy: read target done: \d+ znodes$/m);
            assert.match(ok.stderr, /\] copy: write done: 2\/2 znodes$/m);
            assert.match(ok.stderr, /\] copy: exit 0$/m);
            assert.deepEqual(await withSession(`127.0.0.1:${zk.port}`, (s) => children(s, "/cli-copied")), ["a"]);
            const missing = await runCli(["copy", `127.0.0.1:${zk.port}/cli-nothing`, `127.0.0.1:${zk.port}/cli-never`, "--json"]);
            assert.equal(missing.code, 1, missing.stdout + missing.stderr);
            assert.deepEqual(JSON.parse(missing.stdout), {
                ok: false,
                exitCode: 1,
                error: { kind: "check", message: `source path /cli-nothing does not exist on 127.0.0.1:${zk.port}`, command: "copy" },
            });
            assert.equal(missing.stderr, "");
        });

        it("a server down among live ones fails the check (exit 1) and is named", async () => {
            const down = await closedPort();
            const st = await runCli(["status", `127.0.0.1:${zk.port},127.0.0.1:${down}`, "--timeout", "2000"]);
            assert.equal(st.code, 1, st.stdout + st.stderr);
            assert.match(st.stdout, new RegExp(`note: 127\\.0\\.0\\.1:${down} does not answer \\(connect ECONNREFUSED`));
            const sm = await runCli(["smoke", `127.0.0.1:${zk.port},127.0.0.1:${down}`, "--count", "2", "--timeout", "2000"]);
            assert.equal(sm.code, 1, sm.stdout + sm.stderr);
            assert.match(sm.stdout, new RegExp(`FAILED 127\\.0\\.0\\.1:${down}: no session: connect ECONNREFUSED`));
            assert.match(sm.stdout, new RegExp(`^127\\.0\\.0\\.1:${zk.port}\\s+127\\.0\\.0\\.1:${zk.port}\\s+connect\\s+1\\s+.*ok$`, "m"), "the live server is checked with a second session of its own");
        });

        it("once the server is stopped, smoke, copy and status exit 3 at once and say why", async () => {
            await zk.server.stop();
            // --timeout 20 s: only the refusal can end these within seconds.
            let started = Date.now();
            const sm = await runCli(["smoke", `127.0.0.1:${zk.port},localhost:${zk.port}`, "--timeout", "20000"]);
            assert.ok(Date.now() - started < 8000, `smoke took ${Date.now() - started} ms`);
            assert.equal(sm.code, 3, sm.stdout + sm.stderr);
            assert.match(sm.stdout, new RegExp(`FAILED 127\\.0\\.0\\.1:${zk.port}: no session: connect ECONNREFUSED`));
            assert.match(sm.stdout, /^cannot connect: no session with any of the 2 servers$/m);
            started = Date.now();
            const cp = await runCli(["copy", `127.0.0.1:${zk.port}/a`, `127.0.0.1:${zk.port}/b`, "--timeout", "20000"]);
            assert.ok(Date.now() - started < 8000, `copy took ${Date.now() - started} ms`);
            assert.equal(cp.code, 3, cp.stdout + cp.stderr);
            assert.match(cp.stderr, new RegExp(`^zkmigrate copy: cannot reach the source ensemble 127\\.0\\.0\\.1:${zk.port}: 127\\.0\\.0\\.1:${zk.port}: connect ECONNREFUSED`));
            const st = await runCli(["status", `127.0.0.1:${zk.port}`, "--timeout", "2000"]);
            assert.equal(st.code, 3, st.stdout + st.stderr);
            assert.match(st.stdout, new RegExp(`note: 127\\.0\\.0\\.1:${zk.port} does not answer \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${zk.port}\\)`));
            assert.match(st.stdout, /^cannot connect: none of the 1 server answered$/m);
        });
    });
}

describe("zkmigrate status against ZooKeeper 3.9 whose 4lw.commands.whitelist allows only srvr", { timeout: 600_000 }, () => {
    const zk = suiteZooKeeper("whitelist", "3.9", { "4lw.commands.whitelist": "srvr" });

    it("names the refused words and shows what srvr gave", async () => {
        const r = await runCli(["status", `127.0.0.1:${zk.port}`]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, new RegExp(`^127\\.0\\.0\\.1:${zk.port}\\s+\\?\\s+standalone\\s+0x[0-9a-f]+\\s+\\d+\\s+\\d+\\s+-\\s+\\d+\\s+\\S+\\s+3\\.9\\.\\d+$`, "m"));
        assert.ok(r.stdout.includes(`note: mntr is not in 4lw.commands.whitelist on 127.0.0.1:${zk.port}`), r.stdout);
        assert.ok(r.stdout.includes(`note: conf is not in 4lw.commands.whitelist on 127.0.0.1:${zk.port}`), r.stdout);
        const j = JSON.parse((await runCli(["status", `127.0.0.1:${zk.port}`, "--json"])).stdout) as StatusReport;
        assert.deepEqual(
            j.servers[0].problems.map((p) => [p.word, p.kind]),
            [
                ["mntr", "refused"],
                ["conf", "refused"],
            ],
        );
        // smoke needs no four-letter word.
        const sm = await runCli(["smoke", `127.0.0.1:${zk.port}`, "--count", "2"]);
        assert.equal(sm.code, 0, sm.stdout + sm.stderr);
    });
});
