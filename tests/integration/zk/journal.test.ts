// The change journal of block & copy against real ZooKeeper: `zkmigrate journal start` before
// the precopy, changes while the precopy reads and after it, then the final copy with --journal
// visits only the changed paths (and --verify over the whole tree is clean). A session that
// expires (the journal process stopped past its session timeout) and a server before 3.6 make the
// final copy fall back to the scan, saying so, and the copy is still complete.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as zookeeper from "node-zookeeper-client";
import { main } from "../../../cli/zkmigrate";
import { connectString, hostsOf } from "../../../rehearsal/fleet";
import { ZK_VERSIONS, resolveVersion } from "../../../rehearsal/zookeeper";
import { type CopySummary, type JournalState, copyTree, readJournalState, stopJournal } from "../../../src/zk/copy";
import { call, connectClient } from "../../../src/zk/session";
import { useFleet } from "../helpers/fleet";

const OPEN = [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id("world", "anyone"))];

function p<T>(f: (cb: (err: unknown, v?: T) => void) => void): Promise<T> {
    return call<T>("ZooKeeper call", 20_000, f);
}
const create = (c: zookeeper.Client, path: string, data = "") => p<string>((cb) => c.create(path, Buffer.from(data), OPEN, zookeeper.CreateMode.PERSISTENT, cb));
const set = (c: zookeeper.Client, path: string, data: string) => p((cb) => c.setData(path, Buffer.from(data), -1, cb));
const remove = (c: zookeeper.Client, path: string) => p((cb) => c.remove(path, -1, cb));

/** Waits (bounded) until `f` holds. */
async function until(what: string, timeoutMs: number, f: () => boolean): Promise<void> {
    const t0 = Date.now();
    while (!f()) {
        if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

function suite(version: string, body: (ctx: { src: () => string; dst: () => string; dir: () => string }) => void) {
    describe(`change journal, ZooKeeper ${version}`, { timeout: 600_000 }, () => {
        const fleet = useFleet({
            name: `it-journal-${version.replace(/\./g, "")}`,
            version,
            ensembles: [
                { name: "source", servers: 1 },
                { name: "target", servers: 1 },
            ],
        });
        let dir = "";
        const started: string[] = [];
        before(() => {
            dir = mkdtempSync(join(tmpdir(), "zkmigrate-journal-"));
        });
        after(async () => {
            // Stop every journal process this suite started (by its pid, through its state file).
            for (const f of started) await stopJournal(f).catch(() => undefined);
            if (dir) rmSync(dir, { recursive: true, force: true });
        });
        body({
            src: () => connectString(fleet(), hostsOf(fleet(), "source")),
            dst: () => connectString(fleet(), hostsOf(fleet(), "target")),
            dir: () => {
                started.push(join(dir, `journal-${started.length}.json`));
                return started[started.length - 1];
            },
        });
    });
}

async function journalStart(source: string, file: string, extra: string[] = []): Promise<JournalState> {
    const r = await main(["journal", "start", source, "--file", file, "--json", ...extra]);
    assert.equal(r.exitCode, 0, r.stderr + r.stdout);
    return JSON.parse(r.stdout) as JournalState;
}

suite(resolveVersion(ZK_VERSIONS["3.9"]), ({ src, dst, dir }) => {
    let s: zookeeper.Client;
    before(async () => {
        s = await connectClient(src(), 20_000);
    });
    after(() => s?.close());

    it("records the changes made during and after the precopy; the final copy visits only those paths, --verify clean", async () => {
        await create(s, "/j");
        for (let i = 0; i < 40; i++) {
            await create(s, `/j/n${i}`, `v${i}`);
            for (let k = 0; k < 5; k++) await create(s, `/j/n${i}/c${k}`, `c${k}`);
        }
        const file = dir();
        const state = `${file}.copy-state`;
        const j = await journalStart(`${src()}/j`, file);
        assert.equal(j.status, "recording");
        assert.match(j.startZxid ?? "", /^[0-9a-f]+$/);
        // The precopy, with changes while it runs.
        const precopy = copyTree(`${src()}/j`, `${dst()}/j`, { mtimeSince: state });
        await set(s, "/j/n1", "during the precopy");
        await create(s, "/j/n2/new-during", "x");
        const pre = await precopy;
        assert.equal(pre.mode, "full");
        // After the precopy: data, a new subtree, a deleted node, a sequential child.
        await set(s, "/j/n3/c0", "after");
        await create(s, "/j/fresh", "f");
        await create(s, "/j/fresh/kid", "k");
        await remove(s, "/j/n4/c4");
        await p((cb) => s.create("/j/n5/seq-", Buffer.from("q"), OPEN, zookeeper.CreateMode.PERSISTENT_SEQUENTIAL, cb));
        const fin: CopySummary = await copyTree(`${src()}/j`, `${dst()}/j`, { mtimeSince: state, journal: file, delete: true, verify: true });
        assert.ok(fin.journal, `the journal was used: ${fin.warnings.join("; ")}`);
        assert.ok(fin.journal.paths >= 7 && fin.journal.paths <= 12, `changed paths recorded: ${fin.journal.paths}`);
        assert.ok(fin.sourceNodes < 30, `only the changed paths and their parents read on the source (${fin.sourceNodes} of 241)`);
        assert.equal(fin.verify?.ok, true, JSON.stringify(fin.verify?.differences));
        assert.equal(fin.verify?.compared, 241 + 1 + 2 + 1 - 1);
        assert.equal(readJournalState(file).status, "stopped");
        // A stopped journal is not used again: the next copy scans, and says so.
        const again = await copyTree(`${src()}/j`, `${dst()}/j`, { mtimeSince: state, journal: file, delete: true });
        assert.equal(again.journal, undefined);
        assert.ok(again.warnings.some((w) => /^change journal not used: the journal was stopped before this copy/.test(w)), again.warnings.join("\n"));
    });

    it("keeps its session under a steady write load longer than its session timeout (node-zookeeper-client pings only on an idle socket)", async () => {
        await create(s, "/busy");
        const file = dir();
        const j = await journalStart(`${src()}/busy`, file, ["--session-timeout", "4000"]);
        assert.equal(j.status, "recording");
        // 10 s of writes, one every 20 ms: the notifications keep the journal's socket busy.
        for (let i = 0, t0 = Date.now(); Date.now() - t0 < 10_000; i++) {
            await create(s, `/busy/n${i}`, "x");
            await new Promise((r) => setTimeout(r, 20));
        }
        const stopped = await stopJournal(file);
        assert.equal(stopped.status, "stopped", `${stopped.status}: ${stopped.reason ?? ""}`);
    });

    it("a journal whose session expired: the final copy falls back to the scan, says why, and copies everything", async () => {
        await create(s, "/e");
        for (let i = 0; i < 20; i++) await create(s, `/e/n${i}`, `v${i}`);
        const file = dir();
        const state = `${file}.copy-state`;
        const j = await journalStart(`${src()}/e`, file, ["--session-timeout", "4000"]);
        assert.equal(j.status, "recording");
        await copyTree(`${src()}/e`, `${dst()}/e`, { mtimeSince: state });
        // The journal process frozen past its session timeout: the server expires the session.
        process.kill(j.pid, "SIGSTOP");
        try {
            await set(s, "/e/n1", "while the journal was frozen");
            await new Promise((r) => setTimeout(r, 12_000));
        } finally {
            process.kill(j.pid, "SIGCONT");
        }
        await until("the journal notices its session is gone", 30_000, () => readJournalState(file).status === "broken");
        assert.match(readJournalState(file).reason ?? "", /session (with \S+ expired|lost its connection)/);
        const fin = await copyTree(`${src()}/e`, `${dst()}/e`, { mtimeSince: state, journal: file, delete: true, verify: true });
        assert.equal(fin.journal, undefined);
        assert.ok(fin.warnings.some((w) => /^change journal not used: the journal is broken: the journal's session .*; every node's stat was scanned instead$/.test(w)), fin.warnings.join("\n"));
        assert.equal(fin.sourceNodes, 21, "the scan read every node");
        assert.equal(fin.plan.setData, 1);
        assert.equal(fin.verify?.ok, true, JSON.stringify(fin.verify?.differences));
    });

    it("a journal started after the precopy's reads is not used (changes in between could be missing)", async () => {
        await create(s, "/late");
        await create(s, "/late/a", "1");
        const file = dir();
        const state = `${file}.copy-state`;
        await copyTree(`${src()}/late`, `${dst()}/late`, { mtimeSince: state });
        await set(s, "/late/a", "2"); // before the journal: only the scan sees it
        await journalStart(`${src()}/late`, file);
        const fin = await copyTree(`${src()}/late`, `${dst()}/late`, { mtimeSince: state, journal: file, verify: true });
        assert.equal(fin.journal, undefined);
        assert.ok(fin.warnings.some((w) => /^change journal not used: the journal started \(zxid 0x[0-9a-f]+\) after the previous copy's reads/.test(w)), fin.warnings.join("\n"));
        assert.equal(fin.verify?.ok, true, JSON.stringify(fin.verify?.differences));
    });
});

// ZooKeeper 3.5 has no addWatch: the journal says so and the final copy scans.
suite(resolveVersion(ZK_VERSIONS["3.5"]), ({ src, dst, dir }) => {
    it("a server before 3.6: the journal is unsupported (start exits 0), the final copy falls back to the scan", async () => {
        const s = await connectClient(src(), 20_000);
        try {
            await create(s, "/old");
            for (let i = 0; i < 10; i++) await create(s, `/old/n${i}`, `v${i}`);
            const file = dir();
            const state = `${file}.copy-state`;
            const j = await journalStart(`${src()}/old`, file);
            assert.equal(j.status, "unsupported");
            assert.match(j.reason ?? "", /answers no addWatch \(ZooKeeper before 3\.6\)/);
            await copyTree(`${src()}/old`, `${dst()}/old`, { mtimeSince: state });
            await set(s, "/old/n3", "changed");
            const r = await main(["copy", `${src()}/old`, `${dst()}/old`, "--mtime-since", state, "--journal", file, "--delete", "--verify"]);
            assert.equal(r.exitCode, 0, r.stderr + r.stdout);
            assert.match(r.stdout, /warning: change journal not used: the journal is unsupported: .* answers no addWatch \(ZooKeeper before 3\.6\); every node's stat was scanned instead/);
            assert.match(r.stdout, /set data 1/);
            assert.match(r.stdout, /verify: identical/);
        } finally {
            s.close();
        }
    });
});
