// The copy's diff without a server: which nodes changed, what the target needs (creates parents
// first, data updates, extra nodes), counters, and the refusals that come before any write.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyAcls, changeTest, compareTrees, deleteOrder, emptyChangeSet, raiseCounters, refuseOversize, selectCopied, targetReadsNeeded } from "../../../../src/zk/copy/diff";
import { CopyError } from "../../../../src/zk/copy/options";
import { FAITHFUL } from "../../../../src/zk/copy/rules";
import type { NodeStat, ZNode } from "../../../../src/zk/copy/znode";
import { digestId } from "../../../../src/zk/copy/znode";

function stat(over: Partial<NodeStat> = {}): NodeStat {
    return { czxid: 1n, mzxid: 1n, ctime: 1000, mtime: 1000, version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: 0, numChildren: 0, pzxid: 1n, ...over };
}

function node(rel: string, data: string, children: string[] = [], over: Partial<NodeStat> = {}): ZNode {
    return { rel, stat: stat({ numChildren: children.length, ...over }), data: Buffer.from(data), children };
}

function tree(...nodes: ZNode[]): Map<string, ZNode> {
    return new Map(nodes.map((n) => [n.rel, n]));
}

const roots = { src: "/s", dst: "/d" };

describe("copy diff: which source nodes changed", () => {
    const n = node("/a", "x", [], { czxid: 5n, mzxid: 9n, pzxid: 5n, mtime: 2000, ctime: 1500, aversion: 2 });
    const table: [string, Parameters<typeof changeTest>[0], { changed: boolean; acl: boolean; children: boolean; incremental: boolean }][] = [
        ["full copy: every node", undefined, { changed: true, acl: false, children: false, incremental: false }],
        ["state zxid before the change", { zxid: 8n, mtime: 0, state: { version: 1, source: "", rootCzxid: "1", zxid: "8", mtime: 0, aversions: {}, writtenAt: "" } }, { changed: true, acl: true, children: false, incremental: true }],
        ["state zxid after it, ACL version recorded", { zxid: 9n, mtime: 0, state: { version: 1, source: "", rootCzxid: "1", zxid: "9", mtime: 0, aversions: { "/a": 2 }, writtenAt: "" } }, { changed: false, acl: false, children: false, incremental: true }],
        ["a time before the mtime", { mtime: 1999 }, { changed: true, acl: false, children: false, incremental: true }],
        ["a time after both", { mtime: 2001 }, { changed: false, acl: false, children: false, incremental: true }],
        ["a state file that does not exist yet: full", { file: "/tmp/none" }, { changed: true, acl: false, children: false, incremental: false }],
    ];
    for (const [name, since, want] of table) {
        it(name, () => {
            const t = changeTest(since);
            assert.deepEqual({ changed: t.changed(n), acl: t.aclChanged(n), children: t.childrenChanged(n), incremental: t.incremental }, want);
        });
    }
    it("an incremental run reads on the target the changed nodes, their parents, and parents whose children changed", () => {
        const src = tree(node("", "", ["a", "b"], { pzxid: 20n }), node("/a", "", ["x"]), node("/a/x", "new", [], { mzxid: 30n }), node("/b", ""));
        const t = changeTest({ zxid: 10n, mtime: 0 });
        assert.deepEqual(targetReadsNeeded(src, t).sort(), ["", "/a", "/a/x"]);
    });
});

describe("copy diff: what the target needs", () => {
    it("an absent target: every node created, parents first, siblings by name; ephemerals skipped, containers as persistent", () => {
        const src = tree(
            node("", "r", ["b", "a", "eph", "box"]),
            node("/b", "b", ["y"]),
            node("/a", "a"),
            node("/b/y", "y"),
            node("/eph", "e", [], { ephemeralOwner: 0x1234n }),
            node("/box", "c", [], { ephemeralOwner: 0x8000000000000000n }),
        );
        const cs = emptyChangeSet();
        const copied = selectCopied(src, false, cs);
        const warnings: string[] = [];
        const c = compareTrees(copied, src, new Map([["", null]]), changeTest(undefined), { aclMode: "source", dstRoot: "/d" }, cs, warnings);
        assert.deepEqual(
            cs.creates.map((x) => x.rel),
            ["", "/a", "/b", "/box", "/b/y"],
        );
        assert.deepEqual(cs.skippedEphemeral, ["/eph"]);
        assert.deepEqual(cs.asPersistent, [{ rel: "/box", kind: "container" }]);
        assert.deepEqual(c.aclNeeded, ["", "/a", "/b", "/box", "/b/y"]);
        assert.deepEqual(c.extraRoots, []);
    });

    it("an existing target: changed data set, equal data left, target-only children found (a stale persistent copy of an ephemeral named)", () => {
        const src = tree(node("", "", ["a", "b", "eph"]), node("/a", "same"), node("/b", "new"), node("/eph", "e", [], { ephemeralOwner: 7n }));
        const dst = new Map<string, ZNode | null>([
            ["", node("", "", ["a", "b", "eph", "old"])],
            ["/a", node("/a", "same")],
            ["/b", node("/b", "old")],
        ]);
        const cs = emptyChangeSet();
        const copied = selectCopied(src, false, cs);
        const c = compareTrees(copied, src, dst, changeTest(undefined), { aclMode: "source", dstRoot: "/d" }, cs, []);
        assert.deepEqual(cs.creates, []);
        assert.deepEqual(
            cs.setData.map((x) => [x.rel, x.data.toString()]),
            [["/b", "new"]],
        );
        assert.deepEqual(c.extraRoots, ["/eph", "/old"]);
        assert.deepEqual(cs.persistentOverEphemeral, ["/eph"]);
        assert.deepEqual(deleteOrder(["/old", "/old/x/y", "/eph", "/old/x"]), ["/old/x/y", "/old/x", "/eph", "/old"]);
    });

    it("sequential counters: a created parent's cversion is raised to the source's, less one per created child", () => {
        const src = tree(node("", "", ["q"], { cversion: 1 }), node("/q", "", ["item-0000000007", "item-0000000008"], { cversion: 9 }), node("/q/item-0000000007", ""), node("/q/item-0000000008", ""));
        const cs = emptyChangeSet();
        const copied = selectCopied(src, false, cs);
        const c = compareTrees(copied, src, new Map([["", null]]), changeTest(undefined), { aclMode: "source", dstRoot: "/d" }, cs, []);
        assert.deepEqual(raiseCounters(cs, copied, new Map([["", null]]), c.toCreate), [{ rel: "/q", from: 2, to: 9 }]);
    });
});

describe("copy diff: refusals before any write", () => {
    it("a value over the target's request limit (the ACL allowed 4 KB)", () => {
        const src = tree(node("", ""), node("/big", "x".repeat(70_000)));
        assert.throws(
            () => refuseOversize(src, changeTest(undefined), roots, 65536, FAITHFUL),
            (e: unknown) => e instanceof CopyError && e.kind === "check" && /^1 znode\(s\) are larger than the target accepts \(jute\.maxbuffer 65536 bytes.*\/s\/big \(70000 bytes\)/.test(e.message),
        );
        assert.doesNotThrow(() => refuseOversize(src, changeTest(undefined), roots, 200_000, FAITHFUL));
    });

    it("a masked digest ACL (no ADMIN on the node)", () => {
        const cs = emptyChangeSet();
        cs.creates.push({ rel: "", data: Buffer.alloc(0), acl: [] });
        const sourceAcls = new Map([["", [{ perms: 3, scheme: "digest", id: "other:x" }]]]);
        assert.throws(
            () => applyAcls(cs, { aclNeeded: [""], sourceAcls, targetAcls: new Map(), aclMode: "source", digests: new Set(), roots, maxBuffer: 0xfffff }, FAITHFUL, []),
            /^CopyError: 1 ACL\(s\) came back with their digest hashes hidden, e\.g\. \/s \(digest:other:x:rw\)/,
        );
    });

    it("an ACL that locks the copy out of the children: created with the copy's identity, the real ACL set after the children", () => {
        const me = digestId("admin:secret");
        const other = [{ perms: 31, scheme: "digest", id: "other:hash" }];
        const cs = emptyChangeSet();
        cs.creates.push({ rel: "", data: Buffer.alloc(0), acl: [] }, { rel: "/c", data: Buffer.alloc(0), acl: [] });
        const sourceAcls = new Map([
            ["", other],
            ["/c", other],
        ]);
        applyAcls(cs, { aclNeeded: ["", "/c"], sourceAcls, targetAcls: new Map(), aclMode: "source", digests: new Set([me]), roots, maxBuffer: 0xfffff }, FAITHFUL, []);
        assert.deepEqual(cs.creates[0].acl, [...other, { perms: 31, scheme: "digest", id: me }]);
        assert.deepEqual(cs.creates[1].acl, other);
        assert.deepEqual(cs.setAcl, [{ rel: "", acl: other, deferred: true }]);
    });
});
