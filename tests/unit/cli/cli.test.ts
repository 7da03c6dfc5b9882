// The command line: the bin, --version, --help per command, usage errors (exit 2), JSON errors
// under --json, internal errors (exit 70), --verbose, and smoke/copy without a server (exit 3,
// at once when the port refuses).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXIT, main, parseArgv } from "../../../cli/zkmigrate";
import type { SmokeReport } from "../../../src/zk";
import { closedPort, type Fake, fakeFourLetterServer, REPO, runCli } from "./helpers";

const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

/** `npx --no-install zkmigrate ...` in the repository (the package's own bin). */
function npx(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile("npx", ["--no-install", "zkmigrate", ...args], { cwd: REPO, timeout: 60_000, killSignal: "SIGKILL" }, (err, stdout, stderr) =>
            resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
        );
    });
}

interface JsonError {
    ok: false;
    exitCode: number;
    error: { kind: string; message: string; command?: string };
}

describe("the zkmigrate bin and --version", () => {
    it("package.json declares the bin, a script that loads tsx and runs the TypeScript CLI", () => {
        const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { bin: Record<string, string>; dependencies: Record<string, string> };
        assert.deepEqual(pkg.bin, { zkmigrate: "cli/zkmigrate.cjs" });
        // An installed package has no devDependencies: the bin's loader must be a dependency.
        assert.ok(pkg.dependencies.tsx, "tsx is a dependency");
        assert.match(readFileSync(join(REPO, "cli", "zkmigrate.cjs"), "utf8"), /^#!\/usr\/bin\/env node\n/);
    });

    it("npx zkmigrate --version prints the package version", async () => {
        const r = await npx(["--version"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `zkmigrate ${VERSION}\n`);
        assert.equal(r.stderr, "");
    });

    it("the bin runs commands from any directory, with their exit codes", async () => {
        const down = await closedPort();
        const r = await runCli(["status", `127.0.0.1:${down}`], 60_000, { bin: true, cwd: "/" });
        assert.equal(r.code, EXIT.cannotConnect, r.stdout + r.stderr);
        assert.match(r.stdout, /^cannot connect: none of the 1 server answered$/m);
        const usage = await runCli(["status"], 60_000, { bin: true, cwd: "/" });
        assert.equal(usage.code, EXIT.usage);
        assert.match(usage.stderr, /^zkmigrate: status needs a connect string$/m);
    });

    it("--version in process, and only before the command", async () => {
        assert.deepEqual(await main(["--version"]), { exitCode: 0, stdout: `zkmigrate ${VERSION}\n`, stderr: "" });
        const after = await main(["status", "zk1", "--version"]);
        assert.equal(after.exitCode, EXIT.usage);
        assert.match(after.stderr, /unknown option "--version"/);
    });
});

describe("zkmigrate --help", () => {
    it("lists the commands, the options, the connect string format and the exit codes", async () => {
        for (const args of [["--help"], ["-h"], ["help"]]) {
            const r = await main(args);
            assert.equal(r.exitCode, 0, r.stderr);
            assert.match(r.stdout, /^Usage: zkmigrate \[--verbose\] <command> \[options\]/);
            assert.match(r.stdout, /^ {2}copy {3}/m);
            assert.match(r.stdout, /^ {2}smoke {2}/m);
            assert.match(r.stdout, /^ {2}status {1}/m);
            assert.match(r.stdout, /^ {2}--version /m);
            assert.match(r.stdout, /^ {2}-v, --verbose /m);
            assert.match(r.stdout, /host:port\[,host:port\.\.\.\]\[\/chroot\]/);
            assert.match(r.stdout, /Exit codes: 0 ok, 1 a check failed, 2 usage error, 3 cannot connect to any server, 4 a write failed \(copy\),\n70 internal error/);
            assert.match(r.stdout, /With --json, errors are JSON on stdout too/);
            assert.equal(r.stderr, "");
        }
        // Through the process too (the help goes to stdout, exit 0).
        const p = await runCli(["-h"]);
        assert.equal(p.code, 0);
        assert.match(p.stdout, /^Usage: zkmigrate /);
    });

    it("has a help for each command, with its options and the common ones", async () => {
        const smoke = await main(["smoke", "--help"]);
        assert.equal(smoke.exitCode, 0);
        assert.match(smoke.stdout, /^Usage: zkmigrate smoke <connect> \[--timeout <ms>\] \[--count <n>\] \[--json\]/);
        assert.match(smoke.stdout, /^ {2}--timeout <ms> +bound of the session setup/m);
        assert.match(smoke.stdout, /^ {2}-v, --verbose +say what is being done, on stderr/m);
        assert.match(smoke.stdout, /^ {2}-h, --help +this help$/m);
        assert.match(smoke.stdout, /ephemeral/);
        const status = await main(["help", "status"]);
        assert.equal(status.exitCode, 0);
        assert.match(status.stdout, /^Usage: zkmigrate status <connect> \[--timeout <ms>\] \[--json\]/);
        assert.match(status.stdout, /4lw\.commands\.whitelist/);
        const copy = await main(["copy", "-h"]);
        assert.match(copy.stdout, /^ {2}--auth <scheme:credentials> +authentication for both sides/m);
        // --help wins over a missing or bad connect string, and over a bad option.
        assert.equal((await main(["status", "::1", "-h"])).exitCode, 0);
        assert.equal((await main(["status", "--bogus", "--help"])).exitCode, 0);
        assert.equal((await main(["copy", "--help"])).exitCode, 0);
    });
});

describe("usage errors exit 2 with the reason on stderr", () => {
    const cases: [string[], RegExp][] = [
        [[], /^zkmigrate: no command given\nRun 'zkmigrate --help' for usage\.\n$/],
        [["frobnicate"], /unknown command "frobnicate" \(commands: adopt, copy, journal, plan, smoke, status\)/],
        [["--bogus"], /expected a command before "--bogus"/],
        [["--verbose"], /^zkmigrate: no command given/],
        [["help", "nope"], /unknown command "nope"/],
        [["status"], /status needs a connect string\nRun 'zkmigrate status --help' for its usage\./],
        [["smoke", "a:1", "b:2"], /smoke takes one connect string, got 2: "a:1" "b:2" \(separate servers with commas, without spaces\)/],
        [["status", "zk1:99999"], /invalid connect string "zk1:99999": server 1 "zk1:99999": port 99999 is outside 1\.\.65535/],
        [["status", "::1"], /an IPv6 address must be written in brackets/],
        [["status", "zk1", "--bogus"], /unknown option "--bogus"/],
        [["status", "zk1", "-x"], /unknown option "-x"/],
        [["status", "zk1", "--bogus=1"], /unknown option "--bogus=1"/],
        [["status", "zk1", "--count", "3"], /unknown option "--count"/],
        [["smoke", "zk1", "--timeout"], /--timeout needs a value <ms>/],
        [["smoke", "zk1", "--timeout", "--verbose"], /--timeout needs a value <ms>, not the option "--verbose" \(write --timeout=--verbose if that is the value\)/],
        [["smoke", "zk1", "--timeout", "soon"], /--timeout takes a whole number, not "soon"/],
        [["smoke", "zk1", "--timeout=5"], /--timeout must be between 100 and 600000 \(got 5\)/],
        [["smoke", "zk1", "--count", "0"], /--count must be between 1 and 10000/],
        [["smoke", "zk1", "--json=yes"], /--json takes no value/],
        [["smoke", "zk1", "--verbose=1"], /--verbose takes no value/],
        [["status", "zk1/a/"], /chroot "\/a\/" must not end with \//],
        [["journal", "frob", "zk1/x", "--file", "j.json"], /journal takes start, stop or status, not "frob"/],
        [["journal", "start", "zk1/x"], /--file <journal-file> is required\nRun 'zkmigrate journal --help' for its usage\./],
        [["journal", "start"], /journal takes <start\|stop\|status> <src-connect>\/<path>, got 1 argument\(s\): "start"/],
        [["journal", "start", "zk1/x", "--file", "j.json", "--session-timeout", "10"], /--session-timeout must be between 4000 and 600000 \(got 10\)/],
        [["copy", "a:1/x", "b:2/y", "--journal"], /--journal needs a value <file>/],
        [["copy", "zk1/a"], /copy takes <src-connect>\/<path> <dst-connect>\/<path>, got 1 argument\(s\): "zk1\/a"/],
        [["copy", "zk1/a", "zk2/b", "--acl", "mine"], /--acl takes source or open, not "mine"/],
    ];
    for (const [args, message] of cases) {
        it(`zkmigrate ${args.join(" ") || "(nothing)"}`, async () => {
            const r = await main(args);
            assert.equal(r.exitCode, EXIT.usage, r.stdout + r.stderr);
            assert.equal(r.stdout, "");
            assert.match(r.stderr, /^zkmigrate: /);
            assert.match(r.stderr, message);
        });
    }

    it("exit 2 through the process too", async () => {
        const r = await runCli(["smoke", "zk1", "--count", "0"]);
        assert.equal(r.code, 2);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /^zkmigrate: --count must be between 1 and 10000 \(got 0\)\nRun 'zkmigrate smoke --help' for its usage\.\n$/);
    });

    it("parses options in any order, with = or a separate value, repeated, -v, --verbose before the command, and -- before the connect string", () => {
        const p = parseArgv(["smoke", "--json", "--timeout=300", "-v", "--", "zk1:2181/x"]);
        assert.equal(p.kind, "run");
        if (p.kind === "run") {
            assert.deepEqual(p.opts, { json: true, timeout: "300", verbose: true });
            assert.deepEqual(p.connect, { servers: [{ host: "zk1", port: 2181 }], chroot: "/x" });
        }
        const g = parseArgv(["--verbose", "status", "zk1"]);
        assert.ok(g.kind === "run" && g.opts.verbose === true);
        const c = parseArgv(["copy", "a/x", "--auth", "digest:a:b", "b/y", "--auth=digest:c:d", "--timeout", "2000"]);
        assert.ok(c.kind === "run");
        if (c.kind === "run") {
            assert.deepEqual(c.positionals, ["a/x", "b/y"]);
            assert.deepEqual(c.opts, { auth: ["digest:a:b", "digest:c:d"], timeout: "2000" });
        }
    });
});

describe("--json: errors are JSON on stdout", () => {
    it("a usage error: { ok: false, exitCode: 2, error: { kind: usage, message, command } }, nothing on stderr", async () => {
        const r = await main(["status", "--json"]);
        assert.equal(r.exitCode, 2);
        assert.equal(r.stderr, "");
        assert.deepEqual(JSON.parse(r.stdout), { ok: false, exitCode: 2, error: { kind: "usage", message: "status needs a connect string", command: "status" } });
        const bad = JSON.parse((await main(["smoke", "zk1", "--json", "--count=x"])).stdout) as JsonError;
        assert.deepEqual(bad.error, { kind: "usage", message: '--count takes a whole number, not "x"', command: "smoke" });
        const none = await main(["--json"]);
        assert.deepEqual(JSON.parse(none.stdout), { ok: false, exitCode: 2, error: { kind: "usage", message: 'expected a command before "--json" (commands: adopt, copy, journal, plan, smoke, status)' } });
        // After `--`, --json is an argument, not the option.
        const arg = await main(["status", "--", "--json"]);
        assert.equal(arg.stdout, "");
        assert.match(arg.stderr, /^zkmigrate: invalid connect string "--json"/);
    });

    it("copy to a refused port: { kind: connect, exitCode 3 } naming the address, within seconds", async () => {
        const down = await closedPort();
        const started = Date.now();
        const r = await runCli(["copy", `127.0.0.1:${down}/a`, `127.0.0.1:${down}/b`, "--json"]);
        const elapsed = Date.now() - started;
        assert.equal(r.code, EXIT.cannotConnect, r.stdout + r.stderr);
        const j = JSON.parse(r.stdout) as JsonError;
        assert.equal(j.ok, false);
        assert.equal(j.exitCode, 3);
        assert.equal(j.error.kind, "connect");
        assert.equal(j.error.command, "copy");
        assert.match(j.error.message, new RegExp(`^cannot reach the source ensemble 127\\.0\\.0\\.1:${down}: 127\\.0\\.0\\.1:${down}: connect ECONNREFUSED 127\\.0\\.0\\.1:${down}$`));
        // The copy's connect timeout is 10 s: a refusal must not wait for it (the process start is most of this).
        assert.ok(elapsed < 8000, `copy took ${elapsed} ms`);
        const text = await runCli(["copy", `127.0.0.1:${down}/a`, `127.0.0.1:${down}/b`]);
        assert.equal(text.code, 3);
        assert.equal(text.stdout, "");
        assert.match(text.stderr, new RegExp(`^zkmigrate copy: cannot reach the source ensemble 127\\.0\\.0\\.1:${down}: `));
    });
});

describe("internal errors exit 70", () => {
    it("an error thrown in a command: exit 70, the message, 'a bug', and the stack only with --verbose", async () => {
        const down = await closedPort();
        const boom = () => {
            throw new TypeError("boom");
        };
        // The --verbose log is the one thing this test can break from outside.
        const r = await main(["status", `127.0.0.1:${down}`, "--verbose"], boom);
        assert.equal(r.exitCode, EXIT.internal);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /^zkmigrate: internal error: boom \(a bug in zkmigrate\)\nTypeError: boom\n {4}at /);
        const j = await main(["status", `127.0.0.1:${down}`, "--verbose", "--json"], boom);
        assert.equal(j.exitCode, 70);
        assert.deepEqual((JSON.parse(j.stdout) as JsonError).error, { kind: "internal", message: "internal error: boom (a bug in zkmigrate)", command: "status" });
    });

    it("an error escaping every promise (a library callback): the process reports it and exits 70", async () => {
        const inject = ["--require", join(__dirname, "inject-fault.cjs")];
        const r = await runCli(["smoke", "127.0.0.1:2181"], 60_000, { nodeArgs: inject });
        assert.equal(r.code, 70, r.stdout + r.stderr);
        assert.match(r.stderr, /^zkmigrate: internal error: injected fault: net\.connect is broken \(a bug in zkmigrate; --verbose shows where\)\n$/);
        const v = await runCli(["smoke", "127.0.0.1:2181", "-v"], 60_000, { nodeArgs: inject });
        assert.equal(v.code, 70);
        assert.match(v.stderr, /TypeError: injected fault: net\.connect is broken\n {4}at /);
        const j = await runCli(["smoke", "127.0.0.1:2181", "--json"], 60_000, { nodeArgs: inject });
        assert.equal(j.code, 70);
        assert.equal((JSON.parse(j.stdout) as JsonError).error.kind, "internal");
    });
});

describe("--verbose", () => {
    it("says what is being done on stderr, with elapsed seconds; stdout is the same as without it", async () => {
        const down = await closedPort();
        const lines: string[] = [];
        const r = await main(["--verbose", "status", `127.0.0.1:${down}`], (l) => lines.push(l));
        assert.equal(r.exitCode, 3);
        assert.equal(r.stdout, (await main(["status", `127.0.0.1:${down}`])).stdout);
        assert.match(lines[0], /^\[\d+\.\d{3}s\] status: srvr, mntr and conf of 1 server\(s\) in parallel, timeout 3000 ms each$/);
        assert.ok(lines.some((l) => l.endsWith(`status: 127.0.0.1:${down}: no answer; srvr unreachable, mntr unreachable, conf unreachable`)), lines.join("\n"));
        assert.match(lines[lines.length - 1], /\] status: exit 3$/);
        // Without --verbose nothing is logged.
        const quiet: string[] = [];
        await main(["status", `127.0.0.1:${down}`], (l) => quiet.push(l));
        assert.deepEqual(quiet, []);
        // Through the process: on stderr.
        const p = await runCli(["smoke", `127.0.0.1:${down}`, "-v"]);
        assert.equal(p.code, 3);
        assert.match(p.stderr, /^\[\d+\.\d{3}s\] smoke: 1 server\(s\), 10 rounds each, timeout 5000 ms$/m);
        assert.match(p.stderr, /\] smoke: exit 3$/m);
    });
});

describe("zkmigrate smoke without a ZooKeeper", () => {
    let down = 0;
    let down2 = 0;
    let mute: Fake;
    before(async () => {
        down = await closedPort();
        down2 = await closedPort();
        mute = await fakeFourLetterServer(() => undefined);
    });
    after(() => mute.close());

    it("exits 3 when no server gives a session, saying why per server", async () => {
        const started = Date.now();
        const r = await runCli(["smoke", `127.0.0.1:${down},127.0.0.1:${mute.port}`, "--timeout", "800"]);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.ok(Date.now() - started < 15000, "bounded by --timeout");
        assert.match(r.stdout, new RegExp(`FAILED 127\\.0\\.0\\.1:${down}: no session: connect ECONNREFUSED 127\\.0\\.0\\.1:${down}\\n`));
        assert.match(r.stdout, new RegExp(`FAILED 127\\.0\\.0\\.1:${mute.port}: no session within 800 ms: the server accepts connections but does not answer`));
        assert.match(r.stdout, /^cannot connect: no session with any of the 2 servers$/m);
    });

    it("when every server refuses, it fails at once instead of waiting for --timeout", async () => {
        // In process: no process start in the figure. --timeout 20 s: only a refusal ends this early.
        const started = Date.now();
        const r = await main(["smoke", `127.0.0.1:${down},127.0.0.1:${down2}`, "--timeout", "20000"]);
        const elapsed = Date.now() - started;
        assert.equal(r.exitCode, 3, r.stdout);
        assert.ok(elapsed < 1500, `smoke took ${elapsed} ms`);
        for (const p of [down, down2]) assert.match(r.stdout, new RegExp(`FAILED 127\\.0\\.0\\.1:${p}: no session: connect ECONNREFUSED 127\\.0\\.0\\.1:${p}\\n`));
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
