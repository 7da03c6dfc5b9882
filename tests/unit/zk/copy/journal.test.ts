// The change journal without a server: which nodes a journal's paths make the final copy visit,
// and the refusals and fallbacks decided from its files alone.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { journalVisits } from "../../../../src/zk/copy";
import { consumeJournal, journalPaths, readJournalState } from "../../../../src/zk/copy/journal";
import { parseEndpoint } from "../../../../src/zk/copy/options";

const dir = mkdtempSync(join(tmpdir(), "zkmigrate-journal-unit-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("journal: the nodes a final copy visits", () => {
    const table: [string, string[], string, string[]][] = [
        ["a changed path and its parent", ["/kafka/brokers/topics/t1"], "/kafka", ["/brokers/topics/t1", "/brokers/topics"]],
        ["the root itself (its parent is outside the copy)", ["/kafka"], "/kafka", [""]],
        ["a child of the root", ["/kafka/a"], "/kafka", ["/a", ""]],
        ["paths outside the subtree are ignored", ["/other/x", "/kafkaesque"], "/kafka", []],
        ["the whole tree: /zookeeper left out", ["/zookeeper/config", "/a/b"], "/", ["/a/b", "/a"]],
        ["duplicates once", ["/k/a/x", "/k/a/y", "/k/a"], "/k", ["/a/x", "/a", "/a/y", ""]],
    ];
    for (const [name, paths, root, want] of table) {
        it(name, () => assert.deepEqual(journalVisits(paths, root), want));
    }
});

describe("journal: files", () => {
    it("reads the paths file (zxid, type, path per line; a path may hold spaces)", () => {
        const f = join(dir, "j1.json");
        writeFileSync(`${f}.paths`, "1a 3 /k/a\n- 1 /k/with space\n");
        assert.deepEqual(journalPaths(f), ["/k/a", "/k/with space"]);
    });

    it("refuses a file that is not a journal, naming it", () => {
        const f = join(dir, "bad.json");
        writeFileSync(f, JSON.stringify({ version: 1, zxid: "1" }));
        assert.throws(() => readJournalState(f), new RegExp(`^CopyError: --journal ${f}: not a zkmigrate journal state file$`));
    });

    it("is not used (and left as it is) without a state file, or when it is missing or not recording", async () => {
        const src = parseEndpoint("127.0.0.1:2181/k", "source");
        assert.deepEqual(await consumeJournal(join(dir, "none.json"), src, 5n, 1n), { ok: false, reason: `no journal file ${join(dir, "none.json")}` });
        const f = join(dir, "j2.json");
        const state = { version: 1, kind: "zkmigrate-journal", source: "127.0.0.1:2181/k", pid: 1, status: "unsupported", reason: "127.0.0.1:2181 answers no addWatch (ZooKeeper before 3.6)", paths: 0, events: 0, startedAt: "", endsBy: "" };
        writeFileSync(f, JSON.stringify(state));
        const noState = await consumeJournal(f, src, undefined, 1n);
        assert.equal(noState.ok, false);
        assert.match(noState.ok ? "" : noState.reason, /^no state file of a previous copy/);
        const old = await consumeJournal(f, src, 5n, 1n);
        assert.equal(old.ok ? "" : old.reason, "the journal is unsupported: 127.0.0.1:2181 answers no addWatch (ZooKeeper before 3.6)");
        writeFileSync(f, JSON.stringify({ ...state, status: "stopped", reason: undefined, stoppedAt: "2026-12-02T20:00:00.000Z" }));
        const stopped = await consumeJournal(f, src, 5n, 1n);
        assert.equal(stopped.ok ? "" : stopped.reason, "the journal was stopped before this copy (at 2026-12-02T20:00:00.000Z): changes since are not in it");
    });
});
