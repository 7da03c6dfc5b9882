// The command line: --help, usage errors (exit 2), and smoke without a server (exit 3).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseArgv } from "../../../cli/zkmigrate";
import type { SmokeReport } from "../../../src/zk";
import { closedPort, type Fake, fakeFourLetterServer, runCli } from "./helpers";

describe("zkmigrate --help", () => {
    it("lists the commands, the connect string format and the exit codes", async () => {
        for (const args of [["--help"], ["-h"], ["help"]]) {
            const r = await runCli(args);
            assert.equal(r.code, 0, r.stderr);
            assert.match(r.stdout, /^Usage: zkmigrate <command> \[options\]/);
            assert.match(r.stdout, /^ {2}smoke {3}/m);
            assert.match(r.stdout, /^ {2}status {2}/m);
            assert.match(r.stdout, /host:port\[,host:port\.\.\.\]\[\/chroot\]/);
            assert.match(r.stdout, /Exit codes: 0 ok, 1 a check failed, 2 usage error, 3 cannot connect/);
            assert.equal(r.stderr, "");
        }
    });

    it("has a help for each command", async () => {
        const smoke = await runCli(["smoke", "--help"]);
        assert.equal(smoke.code, 0);
        assert.match(smoke.stdout, /^Usage: zkmigrate smoke <connect> \[--timeout <ms>\] \[--count <n>\] \[--json\]/);
        assert.match(smoke.stdout, /--timeout <ms>/);
        assert.match(smoke.stdout, /ephemeral/);
        const status = await runCli(["help", "status"]);
        assert.equal(status.code, 0);
        assert.match(status.stdout, /^Usage: zkmigrate status <connect> \[--timeout <ms>\] \[--json\]/);
        assert.match(status.stdout, /4lw\.commands\.whitelist/);
        // --help wins over a missing or bad connect string.
        assert.equal((await runCli(["status", "::1", "-h"])).code, 0);
    });
});

describe("usage errors exit 2 with the reason on stderr", () => {
    const cases: [string[], RegExp][] = [
        [[], /zkmigrate: no command given\nRun 'zkmigrate --help' for usage\./],
        [["frobnicate"], /unknown command "frobnicate" \(commands: copy, journal, smoke, status\)/],
        [["--json"], /expected a command before "--json"/],
        [["help", "nope"], /unknown command "nope"/],
        [["status"], /status needs a connect string\nRun 'zkmigrate status --help' for its usage\./],
        [["smoke", "a:1", "b:2"], /smoke takes one connect string, got 2: "a:1" "b:2" \(separate servers with commas, without spaces\)/],
        [["status", "zk1:99999"], /invalid connect string "zk1:99999": server 1 "zk1:99999": port 99999 is outside 1\.\.65535/],
        [["status", "::1"], /an IPv6 address must be written in brackets/],
        [["status", "zk1", "--bogus"], /unknown option "--bogus"/],
        [["status", "zk1", "--count", "3"], /unknown option "--count"/],
        [["smoke", "zk1", "--timeout"], /--timeout needs a value <ms>/],
        [["smoke", "zk1", "--timeout", "soon"], /--timeout takes a whole number, not "soon"/],
        [["smoke", "zk1", "--timeout=5"], /--timeout must be between 100 and 600000 \(got 5\)/],
        [["smoke", "zk1", "--count", "0"], /--count must be between 1 and 10000/],
        [["smoke", "zk1", "--json=yes"], /--json takes no value/],
        [["status", "zk1/a/"], /chroot "\/a\/" must not end with \//],
        [["journal", "frob", "zk1/x", "--file", "j.json"], /journal takes start, stop or status, not "frob"/],
        [["journal", "start", "zk1/x"], /--file <journal-file> is required\nRun 'zkmigrate journal --help' for its usage\./],
        [["journal", "start"], /journal takes <start\|stop\|status> <src-connect>\/<path>, got 1 argument\(s\): "start"/],
        [["journal", "start", "zk1/x", "--file", "j.json", "--session-timeout", "10"], /--session-timeout must be between 4000 and 600000 \(got 10\)/],
        [["copy", "a:1/x", "b:2/y", "--journal"], /--journal needs a value <file>/],
    ];
    for (const [args, message] of cases) {
        it(`zkmigrate ${args.join(" ") || "(nothing)"}`, async () => {
            const r = await runCli(args);
            assert.equal(r.code, 2, r.stdout + r.stderr);
            assert.equal(r.stdout, "");
            assert.match(r.stderr, /^zkmigrate: /);
            assert.match(r.stderr, message);
        });
    }

    it("parses options in any order, with = or a separate value, and -- before the connect string", () => {
        const p = parseArgv(["smoke", "--json", "--timeout=300", "--", "zk1:2181/x"]);
        assert.equal(p.kind, "run");
        if (p.kind === "run") {
            assert.deepEqual(p.opts, { json: true, timeout: "300" });
            assert.deepEqual(p.connect, { servers: [{ host: "zk1", port: 2181 }], chroot: "/x" });
        }
    });
});

describe("zkmigrate smoke without a ZooKeeper", () => {
    let down = 0;
    let mute: Fake;
    before(async () => {
        down = await closedPort();
        mute = await fakeFourLetterServer(() => undefined);
    });
    after(() => mute.close());

    it("exits 3 when no server gives a session, saying why per server", async () => {
        const started = Date.now();
        const r = await runCli(["smoke", `127.0.0.1:${down},127.0.0.1:${mute.port}`, "--timeout", "800"]);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.ok(Date.now() - started < 15000, "bounded by --timeout");
        assert.match(r.stdout, new RegExp(`FAILED 127\\.0\\.0\\.1:${down}: no session within 800 ms: connect ECONNREFUSED`));
        assert.match(r.stdout, new RegExp(`FAILED 127\\.0\\.0\\.1:${mute.port}: no session within 800 ms: the server accepts connections but does not answer`));
        assert.match(r.stdout, /^cannot connect: no session with any of the 2 servers$/m);
    });

    it("--json reports the same", async () => {
        const r = await runCli(["smoke", `127.0.0.1:${down}/chroot`, "--timeout", "500", "--json"]);
        assert.equal(r.code, 3);
        const report = JSON.parse(r.stdout) as SmokeReport;
        assert.equal(report.exitCode, 3);
        assert.equal(report.ok, false);
        assert.equal(report.chroot, "/chroot");
        assert.equal(report.servers[0].session, false);
        assert.match(report.servers[0].failures[0], /ECONNREFUSED/);
        assert.match(report.root, /^\/zkmigrate-smoke\/[0-9a-f]{8}$/);
    });
});
