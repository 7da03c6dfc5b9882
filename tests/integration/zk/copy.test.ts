// `zkmigrate copy` against real ZooKeeper ensembles of the local fleet. One test per fault that
// users of older copy tools report (open ACLs instead of the source's, ephemerals copied as
// persistent nodes, large znodes over jute.maxbuffer, lost sequential counters); each also runs
// the old behaviour (the test double legacy-copy.ts) to show that its check catches the fault.
// Then a round trip with --verify through the CLI, the incremental copy, the refusals, and
// ZooKeeper 3.5 (no read-only multi).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as zookeeper from "node-zookeeper-client";
import { connectString, hostsOf, type LocalFleet } from "../../../rehearsal/fleet";
import { ZK_VERSIONS, resolveVersion } from "../../../rehearsal/zookeeper";
import { main } from "../../../cli/zkmigrate";
import { CopyError, copyTree, digestId, type AuthInfo, type CopyOptions } from "../../../src/zk/copy";
import { call, connectClient, ZkOperationError } from "../../../src/zk/session";
import { useFleet } from "../helpers/fleet";
import { type LegacyFaults, legacyCopy } from "./legacy-copy";

const ADMIN = "copy-admin:admin-secret";
const OTHER = "copy-other:other-secret";
const ADMIN_ID = digestId(ADMIN);
const OTHER_ID = digestId(OTHER);
const ALL = zookeeper.Permission.ALL;
const READ = zookeeper.Permission.READ;

function acl(perms: number, scheme: string, id: string): zookeeper.ACL {
    return new zookeeper.ACL(perms, new zookeeper.Id(scheme, id));
}
const OPEN = [acl(ALL, "world", "anyone")];

/** One client call, bounded (20 s). */
function p<T>(f: (cb: (err: unknown, v?: T) => void) => void): Promise<T> {
    return call<T>("ZooKeeper call", 20_000, f);
}

class Zk {
    private constructor(readonly client: zookeeper.Client) {}
    static async open(connect: string, auth: string[] = []): Promise<Zk> {
        const c = await connectClient(connect, 20_000, 20_000);
        for (const a of auth) c.addAuthInfo("digest", Buffer.from(a));
        const z = new Zk(c);
        await z.exists("/"); // the auth packets went first
        return z;
    }
    create(path: string, data: Buffer | string = "", acls: zookeeper.ACL[] = OPEN, mode = zookeeper.CreateMode.PERSISTENT): Promise<string> {
        return p((cb) => this.client.create(path, typeof data === "string" ? Buffer.from(data) : data, acls, mode, cb));
    }
    async data(path: string): Promise<Buffer> {
        return (await p<Buffer>((cb) => this.client.getData(path, (e, d) => cb(e, d ?? Buffer.alloc(0))))) ?? Buffer.alloc(0);
    }
    set(path: string, data: string): Promise<unknown> {
        return p((cb) => this.client.setData(path, Buffer.from(data), -1, cb));
    }
    remove(path: string): Promise<unknown> {
        return p((cb) => this.client.remove(path, -1, cb));
    }
    async acl(path: string): Promise<string> {
        const list = await p<zookeeper.ACL[]>((cb) => this.client.getACL(path, cb));
        return list.map((a) => `${a.id.scheme}:${a.id.id}:${(a as unknown as { permission: number }).permission}`).join(",");
    }
    setAcl(path: string, acls: zookeeper.ACL[]): Promise<unknown> {
        return p((cb) => this.client.setACL(path, acls, -1, cb));
    }
    async exists(path: string): Promise<zookeeper.Stat | undefined> {
        return (await p<zookeeper.Stat | null>((cb) => this.client.exists(path, cb))) ?? undefined;
    }
    children(path: string): Promise<string[]> {
        return p<string[]>((cb) => this.client.getChildren(path, (e, c) => cb(e, c))).then((c) => c.sort());
    }
    close(): void {
        this.client.close();
    }
}

const auth = (...creds: string[]): AuthInfo[] => creds.map((c) => ({ scheme: "digest", credentials: c }));

/** The error name of a failed call (NODE_EXISTS, ...). */
async function failure(x: Promise<unknown>): Promise<string> {
    try {
        await x;
    } catch (e) {
        return e instanceof ZkOperationError ? e.code : String(e);
    }
    return "no error";
}

function suite(version: string, layout: { source: number; target: number }, body: (ctx: { fleet: () => LocalFleet; src: () => string; dst: () => string }) => void) {
    describe(`zkmigrate copy, ZooKeeper ${version}`, { timeout: 900_000 }, () => {
        const fleet = useFleet({
            name: `it-copy-${version.replace(/\./g, "")}`,
            version,
            ensembles: [
                { name: "source", servers: layout.source },
                { name: "target", servers: layout.target },
            ],
        });
        body({ fleet, src: () => connectString(fleet(), hostsOf(fleet(), "source")), dst: () => connectString(fleet(), hostsOf(fleet(), "target")) });
    });
}

suite(resolveVersion(ZK_VERSIONS["3.9"]), { source: 3, target: 3 }, ({ src, dst }) => {
    let s: Zk;
    let d: Zk;
    let dir: string;
    before(async () => {
        s = await Zk.open(src(), [ADMIN, OTHER]);
        d = await Zk.open(dst(), [ADMIN]);
        dir = mkdtempSync(join(tmpdir(), "zkmigrate-copy-"));
    });
    after(() => {
        s?.close();
        d?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
    });
    const copy = (from: string, to: string, o: CopyOptions = {}) => copyTree(`${src()}${from}`, `${dst()}${to}`, { sourceAuth: auth(ADMIN, OTHER), targetAuth: auth(ADMIN), ...o });
    /** The same with the fault of an older copy tool (legacy-copy.ts). */
    const oldCopy = (from: string, to: string, faults: LegacyFaults, o: CopyOptions = {}) => legacyCopy(`${src()}${from}`, `${dst()}${to}`, { sourceAuth: auth(ADMIN, OTHER), targetAuth: auth(ADMIN), ...o }, faults);

    it("copies ACLs as they are, digest ACLs verbatim, also one that locks the copy out of its children (the old copy wrote open ACLs)", async () => {
        await s.create("/acl", "root", OPEN);
        await s.create("/acl/admin", "a", [acl(ALL, "digest", ADMIN_ID), acl(READ, "world", "anyone")]);
        await s.create("/acl/admin/child", "c", OPEN);
        await s.create("/acl/readonly", "r", [acl(READ, "world", "anyone")]);
        // Only OTHER may create under it; the target session is ADMIN: created with ADMIN added,
        // the real ACL set after the children.
        await s.create("/acl/other", "o", [acl(ALL, "digest", OTHER_ID)]);
        await s.create("/acl/other/child", "oc", [acl(ALL, "digest", OTHER_ID), acl(READ, "digest", ADMIN_ID)]);
        await copy("/acl", "/acl");
        // Checked with a session that may read everything (the copy's target session may not
        // read /acl/other any more: its ACL names OTHER only, as on the source).
        const check = await copy("/acl", "/acl", { targetAuth: auth(ADMIN, OTHER), dryRun: true, verify: true });
        assert.equal(check.verify?.ok, true, JSON.stringify(check.verify?.differences));
        const dAll = await Zk.open(dst(), [ADMIN, OTHER]);
        try {
            for (const path of ["/acl", "/acl/admin", "/acl/admin/child", "/acl/readonly", "/acl/other", "/acl/other/child"]) {
                assert.equal(await dAll.acl(path), await s.acl(path), path);
            }
            assert.equal(await dAll.acl("/acl/other"), `digest:${OTHER_ID}:31`);
            assert.deepEqual(await dAll.children("/acl/other"), ["child"]);
        } finally {
            dAll.close();
        }
        // The old behaviour: every ACL open. The same check sees it.
        const old = await oldCopy("/acl", "/acl-old", { acl: "open" }, { verify: true });
        assert.equal(await d.acl("/acl-old/admin"), "world:anyone:31");
        assert.notEqual(await d.acl("/acl-old/admin"), await s.acl("/acl/admin"));
        assert.equal(old.verify?.ok, true, "verify compares with what was asked (--acl open)");
    });

    it("refuses, before any write, ACLs whose digest hashes ZooKeeper hides from the copy's session (no ADMIN on the node)", async () => {
        await s.create("/masked", "", OPEN);
        await s.create("/masked/n", "m", [acl(READ | zookeeper.Permission.WRITE, "digest", OTHER_ID)]);
        await assert.rejects(copy("/masked", "/masked"), (e: unknown) => {
            assert.ok(e instanceof CopyError);
            assert.equal(e.kind, "check");
            assert.match(e.message, /^1 ACL\(s\) came back with their digest hashes hidden, e\.g\. \/masked\/n \(digest:copy-other:x:rw\).*nothing was written$/);
            return true;
        });
        assert.equal(await d.exists("/masked"), undefined);
        const open = await copy("/masked", "/masked", { acl: "open" });
        assert.equal(open.plan.creates, 2);
        assert.equal(await d.acl("/masked/n"), "world:anyone:31");
    });

    it("skips ephemeral nodes, and --delete removes the stale persistent copy an older tool left (Kafka refuses to start on it)", async () => {
        await s.create("/eph", "", OPEN);
        await s.create("/eph/brokers", "", OPEN);
        await s.create("/eph/brokers/ids", "", OPEN);
        await s.create("/eph/brokers/topics", "t", OPEN);
        const broker = await Zk.open(src());
        try {
            await broker.create("/eph/brokers/ids/1", '{"host":"b1"}', OPEN, zookeeper.CreateMode.EPHEMERAL);
            // The old behaviour: the registration becomes a persistent node on the target.
            await oldCopy("/eph", "/eph", { copyEphemeralAsPersistent: true });
            const stale = await d.exists("/eph/brokers/ids/1");
            assert.ok(stale, "the old behaviour copied the ephemeral node");
            assert.equal(stale!.ephemeralOwner.readBigInt64BE(0), 0n, "as a persistent node");
            // Without --delete it is kept, with a warning; with --delete it goes.
            const kept = await copy("/eph", "/eph");
            assert.ok(await d.exists("/eph/brokers/ids/1"));
            assert.ok(kept.warnings.some((w) => w.includes("/eph/brokers/ids/1") && w.includes("persistent node where the source's is ephemeral")), kept.warnings.join("\n"));
            const fixed = await copy("/eph", "/eph", { delete: true, verify: true });
            assert.equal(fixed.plan.skippedEphemeral, 1);
            assert.equal(await d.exists("/eph/brokers/ids/1"), undefined);
            assert.deepEqual(await d.children("/eph/brokers"), ["ids", "topics"]);
            assert.equal(fixed.verify?.ok, true, JSON.stringify(fixed.verify?.differences));
        } finally {
            broker.close();
        }
    });

    it("writes large znodes in batches under jute.maxbuffer (the old count-only batch is refused by the server, and nothing of it applied)", async () => {
        await s.create("/big", "", OPEN);
        const value = Buffer.alloc(600_000, 7);
        for (let i = 0; i < 5; i++) await s.create(`/big/n${i}`, value, OPEN);
        const ok = await copy("/big", "/big", { verify: true });
        assert.equal(ok.verify?.ok, true, JSON.stringify(ok.verify?.differences));
        assert.ok(ok.written.batches >= 5, `one 600 KB znode per batch at most (${ok.written.batches} batches)`);
        // The old behaviour: one multi of 3 MB. The server drops it; the multi changed nothing.
        await assert.rejects(oldCopy("/big", "/big-old", { ignoreByteBound: true }, { stallTimeoutMs: 15_000 }), (e: unknown) => {
            assert.ok(e instanceof CopyError, String(e));
            assert.equal(e.kind, "write", e.message);
            return true;
        });
        assert.equal(await d.exists("/big-old"), undefined, "no half-applied batch");
    });

    it("refuses, before any write, a znode larger than the target accepts", async () => {
        await assert.rejects(copy("/big", "/big-small-target", { juteMaxBuffer: 500_000 }), (e: unknown) => {
            assert.ok(e instanceof CopyError);
            assert.equal(e.kind, "check");
            assert.match(e.message, /5 znode\(s\) are larger than the target accepts \(jute.maxbuffer 500000 bytes.*\/big\/n0 \(600000 bytes\).*nothing was written/);
            return true;
        });
        assert.equal(await d.exists("/big-small-target"), undefined);
    });

    it("keeps sequential counters: the next sequential child on the target does not collide (the old copy's did)", async () => {
        await s.create("/seq", "", OPEN);
        const names: string[] = [];
        for (let i = 0; i < 6; i++) names.push(await s.create("/seq/item-", `v${i}`, OPEN, zookeeper.CreateMode.PERSISTENT_SEQUENTIAL));
        for (const n of names.slice(0, 3)) await s.remove(n);
        assert.deepEqual(await s.children("/seq"), ["item-0000000003", "item-0000000004", "item-0000000005"]);
        const summary = await copy("/seq", "/seq", { verify: true });
        assert.equal(summary.verify?.ok, true, JSON.stringify(summary.verify?.differences));
        assert.equal(summary.plan.cversionBumps, 1);
        // The next sequential child on the target comes after every copied one, and not before
        // the source's next. (ZooKeeper numbers sequential children by a counter that a delete
        // does not always move the way it moves stat.cversion: here the source's next is 6 while
        // its cversion is 9; the copy brings the target's cversion to 9, so it goes on from 9.)
        const next = await d.create("/seq/item-", "new", OPEN, zookeeper.CreateMode.PERSISTENT_SEQUENTIAL);
        const sourceNext = await s.create("/seq/item-", "new", OPEN, zookeeper.CreateMode.PERSISTENT_SEQUENTIAL);
        assert.ok(Number(next.slice(-10)) > 5, `${next} comes after the copied children`);
        assert.ok(Number(next.slice(-10)) >= Number(sourceNext.slice(-10)), `${next} not before the source's ${sourceNext}`);
        // The old behaviour: the counter restarts at the number of copied children, and the next
        // sequential create collides with the first copied one.
        await oldCopy("/seq", "/seq-old", { keepCounters: false });
        assert.deepEqual(await d.children("/seq-old"), ["item-0000000003", "item-0000000004", "item-0000000005", sourceNext.slice("/seq/".length)]);
        assert.equal(await failure(d.create("/seq-old/item-", "new", OPEN, zookeeper.CreateMode.PERSISTENT_SEQUENTIAL)), "NODE_EXISTS");
    });

    it("round trip with --verify through the CLI: binary data, unicode names, empty and 1 MB values, deep paths", async () => {
        await s.create("/rt", "", OPEN);
        await s.create("/rt/binary", Buffer.from(Array.from({ length: 256 }, (_, i) => i)), OPEN);
        for (const name of ["zürich", "日本語", "ñandú", "Ωmega", "with space", "dots.and-dashes_"]) await s.create(`/rt/${name}`, name, OPEN);
        await s.create("/rt/empty", Buffer.alloc(0), OPEN);
        await s.create("/rt/megabyte", Buffer.alloc(1_000_000, 0xab), OPEN);
        let deep = "/rt/deep";
        await s.create(deep, "0", OPEN);
        for (let i = 1; i <= 40; i++) {
            deep += `/d${i}`;
            await s.create(deep, String(i), OPEN);
        }
        const r = await main(["copy", `${src()}/rt`, `${dst()}/rt`, "--verify", "--json", "--auth", `digest:${ADMIN}`]);
        assert.equal(r.exitCode, 0, r.stderr + r.stdout);
        const summary = JSON.parse(r.stdout);
        assert.equal(summary.verify.ok, true, JSON.stringify(summary.verify.differences));
        assert.equal(summary.verify.compared, 1 + 1 + 6 + 1 + 1 + 41);
        assert.deepEqual(await d.data(deep), Buffer.from("40"));
        assert.deepEqual(await d.data("/rt/binary"), await s.data("/rt/binary"));
        assert.equal((await d.data("/rt/megabyte")).length, 1_000_000);
        assert.equal((await d.data("/rt/日本語")).toString(), "日本語");
        // A difference makes --verify fail: change the target behind the copy's back.
        await d.set("/rt/ñandú", "changed");
        const again = await main(["copy", `${src()}/rt`, `${dst()}/rt`, "--verify", "--dry-run", "--auth", `digest:${ADMIN}`]);
        assert.equal(again.exitCode, 1, again.stdout);
        assert.match(again.stdout, /set data \(1\):\n {2}\/rt\/ñandú/);
        assert.match(again.stdout, /verify: 1 difference\(s\)[\s\S]*data \/rt\/ñandú/);
        assert.equal((await d.data("/rt/ñandú")).toString(), "changed", "--dry-run wrote nothing");
    });

    it("incremental: a state file, then only what changed (data, new and deleted nodes, an ACL) is written", async () => {
        await s.create("/inc", "", OPEN);
        for (let i = 0; i < 50; i++) {
            await s.create(`/inc/n${i}`, `v${i}`, OPEN);
            await s.create(`/inc/n${i}/leaf`, `l${i}`, OPEN);
        }
        const state = join(dir, "inc.json");
        const first = await copy("/inc", "/inc", { mtimeSince: state });
        assert.equal(first.mode, "full");
        assert.equal(first.stateFile, state);
        await s.set("/inc/n1", "changed");
        await s.set("/inc/n2/leaf", "changed too");
        await s.create("/inc/n3/new", "new");
        await s.remove("/inc/n4/leaf");
        await s.setAcl("/inc/n5", [acl(ALL, "digest", ADMIN_ID)]);
        const inc = await copy("/inc", "/inc", { mtimeSince: state, delete: true, verify: true });
        assert.equal(inc.mode, "incremental");
        assert.deepEqual(
            { creates: inc.plan.creates, setData: inc.plan.setData, deletes: inc.plan.deletes, setAcl: inc.plan.setAcl },
            { creates: 1, setData: 2, deletes: 1, setAcl: 1 },
        );
        assert.equal(inc.verify?.ok, true, JSON.stringify(inc.verify?.differences));
        assert.equal((await d.data("/inc/n1")).toString(), "changed");
        // Nothing changed since: nothing written.
        const idle = await copy("/inc", "/inc", { mtimeSince: state, delete: true });
        assert.equal(idle.written.ops, 0);
        // --delete needs the zxid of a state file, not a bare time.
        await assert.rejects(copy("/inc", "/inc", { mtimeSince: Date.now() - 60_000, delete: true }), /--delete with --mtime-since <ms> cannot find deleted nodes/);
    });

    it("refuses bad input before any write: unreachable ensemble, missing source path, overlapping paths on the same ensemble", async () => {
        await s.create("/ovl", "", OPEN);
        await s.create("/ovl/a", "a", OPEN);
        const rootBefore = await d.children("/");
        await assert.rejects(copyTree("127.0.0.1:1/x", `${dst()}/never`, { connectTimeoutMs: 1500 }), (e: unknown) => {
            assert.ok(e instanceof CopyError);
            assert.equal(e.kind, "connect");
            assert.match(e.message, /^cannot reach the source ensemble 127\.0\.0\.1:1: /);
            return true;
        });
        await assert.rejects(copy("/does-not-exist", "/never"), /^CopyError: source path \/does-not-exist does not exist on /);
        await assert.rejects(copyTree(`${src()}/ovl`, `${src()}/ovl/inside`), /target \/ovl\/inside and source \/ovl overlap on the same ensemble/);
        // The same ensemble through other servers of it is recognised too (/zookeeper/config).
        const [a, b] = src().split(",");
        await assert.rejects(copyTree(`${a}/ovl/a`, `${b}/ovl`), /overlap on the same ensemble/);
        const cli = await main(["copy", `${src()}/x`, "--dry-run"]);
        assert.equal(cli.exitCode, 2);
        assert.match(cli.stderr, /copy takes <src-connect>\/<path> <dst-connect>\/<path>, got 1 argument/);
        const badAuth = await main(["copy", `${src()}/x`, `${dst()}/y`, "--auth", "nocolon"]);
        assert.equal(badAuth.exitCode, 2);
        assert.match(badAuth.stderr, /--auth "nocolon": expected scheme:credentials/);
        assert.deepEqual(await d.children("/"), rootBefore, "nothing was written");
        assert.deepEqual(await s.children("/ovl"), ["a"]);
    });
});

// ZooKeeper 3.5 answers no read-only multi: the copy reads one request per node.
suite(resolveVersion(ZK_VERSIONS["3.5"]), { source: 1, target: 1 }, ({ src, dst }) => {
    it("round trip with --verify on ZooKeeper 3.5 (no read-only multi)", async () => {
        const s = await Zk.open(src());
        try {
            await s.create("/old", "o", OPEN);
            for (let i = 0; i < 20; i++) await s.create(`/old/n${i}`, Buffer.alloc(i * 100, i), OPEN);
            await s.create("/old/n3/seq-", "x", OPEN, zookeeper.CreateMode.PERSISTENT_SEQUENTIAL);
            const summary = await copyTree(`${src()}/old`, `${dst()}/old`, { verify: true });
            assert.equal(summary.verify?.ok, true, JSON.stringify(summary.verify?.differences));
            assert.ok(summary.warnings.some((w) => w.includes("no read-only multi")), summary.warnings.join("\n"));
            assert.equal(summary.sourceNodes, 22);
        } finally {
            s.close();
        }
    });
});
