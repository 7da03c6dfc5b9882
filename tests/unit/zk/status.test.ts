// `zkmigrate status` as a child process against fake four-letter-word servers on 127.0.0.1:
// a leader (3.9 answers), a follower (3.5 answers), one whose whitelist refuses mntr, a silent one.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { collectStatus, parseConnectString, type StatusReport } from "../../../src/zk";
import {
    CONF_35_QUORUM,
    CONF_39_QUORUM,
    MNTR_35_FOLLOWER,
    MNTR_39_LEADER,
    NOT_SERVING,
    refusal,
    SRVR_35_FOLLOWER,
    SRVR_39_FOLLOWER,
    SRVR_39_LEADER,
} from "../cli/fixtures";
import { closedPort, type Fake, fakeFourLetterServer, runCli } from "../cli/helpers";

const answers = (m: Record<string, string>) => (w: string) => m[w] ?? "";

/** The cells of a table line (columns are separated by at least two spaces). */
const cells = (line: string) => line.trim().split(/\s{2,}/);

describe("zkmigrate status", () => {
    const fakes: Fake[] = [];
    let leader: Fake;
    let follower: Fake;
    let refusing: Fake;
    let silent: Fake;
    let notServing: Fake;
    let down = 0;
    before(async () => {
        leader = await fakeFourLetterServer(answers({ srvr: SRVR_39_LEADER, mntr: MNTR_39_LEADER, conf: CONF_39_QUORUM.replace("serverId=2", "serverId=1") }));
        follower = await fakeFourLetterServer(answers({ srvr: SRVR_35_FOLLOWER, mntr: MNTR_35_FOLLOWER, conf: CONF_35_QUORUM.replace("serverId=3", "serverId=2") }));
        refusing = await fakeFourLetterServer(answers({ srvr: SRVR_39_FOLLOWER, mntr: refusal("mntr"), conf: CONF_39_QUORUM.replace("serverId=2", "serverId=3") }));
        silent = await fakeFourLetterServer(() => undefined);
        notServing = await fakeFourLetterServer(() => NOT_SERVING);
        fakes.push(leader, follower, refusing, silent, notServing);
        down = await closedPort();
    });
    after(() => {
        for (const f of fakes) f.close();
    });

    const addr = (f: Fake) => `127.0.0.1:${f.port}`;

    it("prints an aligned table: mode, zxid, epoch, node count, synced followers, outstanding, latency, version", async () => {
        const r = await runCli(["status", [leader, follower, refusing, silent].map(addr).join(","), "--timeout", "700"]);
        assert.equal(r.code, 1, `a silent server fails the check\n${r.stdout}${r.stderr}`);
        assert.equal(r.stderr, "");
        const lines = r.stdout.split("\n");
        assert.deepEqual(cells(lines[0]), ["SERVER", "MYID", "MODE", "ZXID", "EPOCH", "ZNODES", "SYNCED", "OUTSTANDING", "LATENCY ms min/avg/max", "VERSION"]);
        assert.deepEqual(cells(lines[1]), [addr(leader), "1", "leader", "0x200000004", "2", "7", "2", "0", "0/0.73/5", "3.9.3"]);
        assert.deepEqual(cells(lines[2]), [addr(follower), "2", "follower", "0x100000048", "1", "5", "-", "0", "0/4/21", "3.5.10"]);
        assert.deepEqual(cells(lines[3]), [addr(refusing), "3", "follower", "0x200000004", "2", "7", "-", "1", "0/1.25/3", "3.9.3"]);
        assert.deepEqual(cells(lines[4]), [addr(silent), "-", "no answer", "-", "-", "-", "-", "-", "-", "-"]);
        // Aligned: every column starts at the same offset on every line (the last one shows it).
        const versionAt = lines.slice(0, 5).map((l) => l.length - cells(l).at(-1)!.length);
        assert.equal(new Set(versionAt).size, 1, `columns not aligned:\n${r.stdout}`);
        assert.ok(r.stdout.includes(`note: mntr is not in 4lw.commands.whitelist on ${addr(refusing)}`), r.stdout);
        assert.ok(r.stdout.includes(`note: ${addr(silent)} does not answer (no answer within 700 ms)`), r.stdout);
        assert.match(r.stdout, /^3 of 4 servers answered; 1 did not answer$/m);
        assert.deepEqual(refusing.words.filter((w) => w === "mntr").length >= 1, true);
    });

    it("--json gives typed fields, the parsed answers and the problems", async () => {
        const r = await runCli(["status", [leader, refusing, silent].map(addr).join(",") + "/kafka", "--json", "--timeout", "700"]);
        assert.equal(r.code, 1);
        const report = JSON.parse(r.stdout) as StatusReport;
        assert.equal(report.exitCode, 1);
        assert.equal(report.chroot, "/kafka");
        assert.equal(report.connect, [leader, refusing, silent].map(addr).join(",") + "/kafka");
        const [l, ref, sil] = report.servers;
        assert.equal(l.mode, "leader");
        assert.deepEqual(l.zxid, { hex: "0x200000004", epoch: 2, counter: 4 });
        assert.equal(l.epoch, 2);
        assert.equal(l.syncedFollowers, 2);
        assert.equal(l.nodeCount, 7);
        assert.equal(l.outstanding, 0);
        assert.equal(l.myid, 1);
        assert.equal(l.version, "3.9.3");
        assert.equal(l.mntr?.peerState, "leading - broadcast");
        assert.equal(l.conf?.membership.length, 4);
        assert.deepEqual(l.problems, []);
        assert.equal(ref.answered, true);
        assert.equal(ref.mode, "follower");
        assert.equal(ref.mntr, undefined);
        assert.deepEqual(
            ref.problems.map((p) => [p.word, p.kind]),
            [["mntr", "refused"]],
        );
        assert.deepEqual(ref.notes, [`mntr is not in 4lw.commands.whitelist on ${addr(refusing)}`]);
        assert.equal(sil.answered, false);
        assert.deepEqual(
            sil.problems.map((p) => [p.word, p.kind]),
            [
                ["srvr", "timeout"],
                ["mntr", "timeout"],
                ["conf", "timeout"],
            ],
        );
    });

    it("exits 0 when every server answers with a mode, a refused word included", async () => {
        const r = await runCli(["status", [leader, follower, refusing].map(addr).join(",")]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /^3 of 3 servers answered and serve$/m);
        assert.match(r.stdout, /note: mntr is not in 4lw\.commands\.whitelist/);
    });

    it("exits 3 when no server answers, naming each one and why", async () => {
        const r = await runCli(["status", `${addr(silent)},127.0.0.1:${down}`, "--timeout", "500"]);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.match(r.stdout, new RegExp(`note: ${addr(silent)} does not answer \\(no answer within 500 ms\\)`));
        assert.match(r.stdout, new RegExp(`note: 127\\.0\\.0\\.1:${down} does not answer \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${down}\\)`));
        assert.match(r.stdout, /^cannot connect: none of the 2 servers answered$/m);
        const j = await runCli(["status", `127.0.0.1:${down}`, "--json"]);
        assert.equal(j.code, 3);
        assert.equal((JSON.parse(j.stdout) as StatusReport).exitCode, 3);
    });

    it("exits 1 for a server that is not serving", async () => {
        const r = await runCli(["status", `${addr(leader)},${addr(notServing)}`]);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.deepEqual(cells(r.stdout.split("\n")[2]).slice(0, 3), [addr(notServing), "-", "not serving"]);
        assert.match(r.stdout, new RegExp(`note: ${addr(notServing)} is not serving requests`));
        assert.match(r.stdout, /^2 of 2 servers answered; 1 not serving$/m);
    });

    it("is a library call too (the CLI is thin)", async () => {
        const report = await collectStatus(parseConnectString(`${addr(follower)},${addr(refusing)}`), { timeoutMs: 1000 });
        assert.equal(report.exitCode, 0);
        assert.deepEqual(
            report.servers.map((s) => [s.mode, s.myid, s.epoch]),
            [
                ["follower", 2, 1],
                ["follower", 3, 2],
            ],
        );
    });

    it("falls back to mntr when srvr is refused", async () => {
        const onlyMntr = await fakeFourLetterServer(answers({ srvr: refusal("srvr"), mntr: MNTR_39_LEADER, conf: refusal("conf") }));
        fakes.push(onlyMntr);
        const report = await collectStatus(parseConnectString(addr(onlyMntr)), { timeoutMs: 1000 });
        const [s] = report.servers;
        assert.equal(s.mode, "leader");
        assert.equal(s.nodeCount, 7);
        assert.equal(s.syncedFollowers, 2);
        assert.equal(s.zxid, undefined);
        assert.deepEqual(s.notes, [`srvr is not in 4lw.commands.whitelist on ${addr(onlyMntr)}`, `conf is not in 4lw.commands.whitelist on ${addr(onlyMntr)}`]);
        assert.equal(report.exitCode, 0);
    });
});
