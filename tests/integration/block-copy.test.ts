// Block & copy against a real fleet (one source server, one target server that already holds
// other data): the rendered copy commands of `precopy` and `final-copy` run as the component's
// local.Command runs them (bash -c, from the project directory), with changes on the source
// during the precopy (once its change journal records) and in between (an update, a create, a
// delete, a node under a digest ACL read with credentials from the environment). The final copy
// visits only the journal's paths; the target must end equal to the source under the path, its
// other data kept; the journal process is stopped by the final copy (and by the precopy's delete).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as zookeeper from "node-zookeeper-client";
import { hostsOf } from "../../rehearsal/fleet";
import { DEFAULT_ZK_VERSION } from "../../rehearsal/zookeeper";
import { loadConfig, type BlockCopyConfig } from "../../src/config";
import { blockCopySpec } from "../../src/procedures/block-copy";
import * as scripts from "../../src/scripts/block-copy";

const renderCopyScript = (e: BlockCopyConfig, mode: "full" | "incremental") => scripts.renderCopyScript(blockCopySpec(e), mode);
import { digestId } from "../../src/zk/copy";
import { call, connectClient } from "../../src/zk/session";
import { ROOT, TEST_SSH } from "../fixtures";
import { fleetName, useFleet } from "./helpers/fleet";

const ADMIN = "bc-admin:bc-secret";
const OPEN = [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id("world", "anyone"))];
const LOCKED = [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id("digest", digestId(ADMIN)))];

/** One client call, bounded (20 s). */
function p<T>(f: (cb: (err: unknown, v?: T) => void) => void): Promise<T> {
    return call<T>("ZooKeeper call", 20_000, f);
}

async function open(connect: string): Promise<zookeeper.Client> {
    const c = await connectClient(connect, 20_000, 20_000);
    c.addAuthInfo("digest", Buffer.from(ADMIN));
    await p((cb) => c.exists("/", cb));
    return c;
}
const create = (c: zookeeper.Client, path: string, data: string, acls = OPEN) => p((cb) => c.create(path, Buffer.from(data), acls, zookeeper.CreateMode.PERSISTENT, cb));
const setData = (c: zookeeper.Client, path: string, data: string) => p((cb) => c.setData(path, Buffer.from(data), -1, cb));
const remove = (c: zookeeper.Client, path: string) => p((cb) => c.remove(path, -1, cb));
const data = (c: zookeeper.Client, path: string) => p<Buffer>((cb) => c.getData(path, (e, d) => cb(e, d ?? Buffer.alloc(0)))).then((b) => (b ?? Buffer.alloc(0)).toString());
const exists = (c: zookeeper.Client, path: string) => p<zookeeper.Stat | null>((cb) => c.exists(path, cb)).then((s) => !!s);

const ENV = { ...process.env, ZK_SRC_AUTH: `digest:${ADMIN}`, ZK_DST_AUTH: `digest:${ADMIN}` };

/** Runs a rendered copy script as command:local:Command does (bash -c, the project directory). */
function run(script: string): { status: number | null; out: string } {
    const r = spawnSync("/bin/bash", ["-c", script], { cwd: ROOT, env: ENV, encoding: "utf8", timeout: 120_000 });
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

/** The same, in the background (to write while it runs); bounded (120 s). */
function runAsync(script: string): Promise<{ status: number | null; out: string }> {
    return new Promise((resolve) => {
        const c = spawn("/bin/bash", ["-c", script], { cwd: ROOT, env: ENV, timeout: 120_000 });
        let out = "";
        c.stdout.on("data", (b) => (out += b));
        c.stderr.on("data", (b) => (out += b));
        c.on("close", (status) => resolve({ status, out }));
    });
}

/** The journal's state file, or undefined while there is none. */
function journalState(file: string): { status: string; pid: number; paths: number } | undefined {
    try {
        return JSON.parse(readFileSync(file, "utf8"));
    } catch {
        return undefined;
    }
}

/** Whether a process runs (a zombie, ended but not reaped yet by its new parent, does not). */
function alive(pid: number): boolean {
    try {
        return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0] !== "Z";
    } catch {
        return false;
    }
}

/** Whether the process ended within 5 s (it writes its last state just before it exits). */
async function ends(pid: number): Promise<boolean> {
    for (const t0 = Date.now(); Date.now() - t0 < 5000; ) {
        if (!alive(pid)) return true;
        await new Promise((r) => setTimeout(r, 20));
    }
    return false;
}

describe(`block & copy: precopy, change, final copy (ZooKeeper ${DEFAULT_ZK_VERSION})`, { timeout: 900_000 }, () => {
    const fleet = useFleet({
        name: fleetName("bc", DEFAULT_ZK_VERSION),
        version: DEFAULT_ZK_VERSION,
        ensembles: [
            { name: "source", servers: 1 },
            { name: "target", servers: 1 },
        ],
    });
    let dir: string;
    let e: BlockCopyConfig;
    let s: zookeeper.Client;
    let d: zookeeper.Client;

    before(async () => {
        dir = mkdtempSync(join(tmpdir(), "zkmigrate-bc-"));
        const f = fleet();
        const server = (ens: string) => hostsOf(f, ens).map((h) => ({ id: h.id, host: h.address }));
        const config = loadConfig({
            ...TEST_SSH,
            defaults: { zookeeper: { clientPort: f.hostSettings.clientPort } },
            ensembles: [
                {
                    name: "it-bc",
                    procedure: "block-copy",
                    phase: "final-copy",
                    source: server("source"),
                    target: server("target"),
                    allowSingleServer: true,
                    path: "/kafka",
                    targetPath: "/moved/kafka",
                    copy: { stateFile: join(dir, "state.json"), sourceAuthEnv: "ZK_SRC_AUTH", targetAuthEnv: "ZK_DST_AUTH" },
                    clients: { hosts: [{ host: "192.0.2.21" }], block: "true", switch: "true" },
                },
            ],
        });
        e = config.ensembles[0] as BlockCopyConfig;
        s = await open(hostsOf(f, "source").map((h) => `${h.address}:${f.hostSettings.clientPort}`).join(","));
        d = await open(hostsOf(f, "target").map((h) => `${h.address}:${f.hostSettings.clientPort}`).join(","));
    });
    after(() => {
        // Never leave the journal process behind, whatever failed: the precopy's delete stops it.
        if (e) run(scripts.renderJournalStopScript(blockCopySpec(e)));
        s?.close();
        d?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("refuses the final copy when no precopy ran here (no state file)", () => {
        const r = run(renderCopyScript(e, "incremental"));
        assert.equal(r.status, 1, r.out);
        assert.match(r.out, /no state file .*state\.json where the copy runs: the precopy ran elsewhere/);
    });

    it("copies in full while live, then only the changes, verified; the target's other data stays", async () => {
        // The target is not empty: that is why this is block & copy and not mitosis.
        await create(d, "/other", "target's own");
        await create(s, "/kafka", "root");
        await create(s, "/kafka/brokers", "");
        for (let i = 0; i < 50; i++) await create(s, `/kafka/brokers/b${i}`, `broker ${i}`);
        await create(s, "/kafka/config", "v1");
        await create(s, "/kafka/gone", "deleted before the final copy");
        await create(s, "/kafka/secure", "needs credentials", LOCKED);

        const journal = `${e.copy.stateFile}.journal`;
        const t0 = Date.now();
        const precopy = runAsync(renderCopyScript(e, "full"));
        // During the precopy, once its journal records (it starts before the copy reads): writes
        // the copy may or may not have read; the journal has them either way.
        const bound = Date.now() + 60_000;
        while (journalState(journal)?.status !== "recording") {
            assert.ok(Date.now() < bound, `the precopy's journal did not record within 60 s: ${JSON.stringify(journalState(journal))}`);
            await new Promise((r) => setTimeout(r, 20));
        }
        await create(s, "/kafka/during", "written during the precopy");
        await setData(s, "/kafka/brokers/b3", "changed during the precopy");
        const pre = await precopy;
        const preMs = Date.now() - t0;
        assert.equal(pre.status, 0, pre.out);
        assert.ok(existsSync(e.copy.stateFile), "the precopy wrote the state file");
        const recording = journalState(journal)!;
        assert.equal(recording.status, "recording", "the journal outlives the precopy, until the final copy");
        assert.ok(alive(recording.pid), "the journal process runs in the background");
        assert.equal(await data(d, "/moved/kafka/brokers/b49"), "broker 49");
        assert.equal(await data(d, "/moved/kafka/secure"), "needs credentials");

        // While the clients still run (between precopy and blocked): writes the final copy must carry.
        await setData(s, "/kafka/config", "v2");
        await create(s, "/kafka/brokers/b50", "broker 50");
        await remove(s, "/kafka/gone");
        await setData(s, "/kafka/secure", "changed");

        const t1 = Date.now();
        const fin = run(renderCopyScript(e, "incremental"));
        const finMs = Date.now() - t1;
        assert.equal(fin.status, 0, fin.out);
        // The final copy visited the journal's paths only, and stopped it.
        assert.match(fin.out, /change journal .*: \d+ changed paths .*nodes visited instead of every node's stat/, fin.out);
        assert.doesNotMatch(fin.out, /change journal not used/, fin.out);
        assert.equal(journalState(journal)!.status, "stopped");
        assert.ok(await ends(recording.pid), "the final copy ended the journal process");
        assert.equal(await data(d, "/moved/kafka/during"), "written during the precopy");
        assert.equal(await data(d, "/moved/kafka/brokers/b3"), "changed during the precopy");
        assert.equal(await data(d, "/moved/kafka/config"), "v2");
        assert.equal(await data(d, "/moved/kafka/brokers/b50"), "broker 50");
        assert.equal(await exists(d, "/moved/kafka/gone"), false, "--delete removed what the source deleted");
        assert.equal(await data(d, "/moved/kafka/secure"), "changed");
        assert.equal(await data(d, "/other"), "target's own");
        // The secret never appears in what pulumi would show.
        assert.doesNotMatch(renderCopyScript(e, "incremental"), /bc-secret/);
        console.log(`  block-copy: precopy ${preMs} ms (with the journal's start), final copy ${finMs} ms (55 nodes, 6 changed, by the journal; each includes starting the CLI)`);
    });

    it("carries a later change on a re-run (the journal is consumed: the scan, saying so), and fails (exit 1, as `pulumi up` would) when --verify finds a difference", async () => {
        await setData(s, "/kafka/config", "v3");
        const again = run(renderCopyScript(e, "incremental"));
        assert.equal(again.status, 0, again.out);
        assert.match(again.out, /change journal not used: the journal was stopped before this copy/);
        assert.equal(await data(d, "/moved/kafka/config"), "v3");
        // A write on the target under the path (a client that was not blocked): the source did not
        // change, so the incremental copy leaves it, and the verification must refuse.
        await setData(d, "/moved/kafka/brokers/b7", "written on the target");
        const bad = run(renderCopyScript(e, "incremental"));
        assert.equal(bad.status, 1, bad.out);
        assert.match(bad.out, /brokers\/b7/);
    });

    it("a re-run precopy stops the journal it left recording; the precopy's delete stops the new one", async () => {
        const journal = `${e.copy.stateFile}.journal`;
        const first = runAsync(renderCopyScript(e, "full"));
        const bound = Date.now() + 60_000;
        while (journalState(journal)?.status !== "recording") {
            assert.ok(Date.now() < bound, "the journal did not record within 60 s");
            await new Promise((r) => setTimeout(r, 20));
        }
        const old = journalState(journal)!.pid;
        const r = await first;
        assert.equal(r.status, 0, r.out);
        const again = run(renderCopyScript(e, "full"));
        assert.equal(again.status, 0, again.out);
        assert.ok(await ends(old), "the re-run stopped the journal the first run left");
        const now = journalState(journal)!;
        assert.equal(now.status, "recording");
        const del = run(scripts.renderJournalStopScript(blockCopySpec(e)));
        assert.equal(del.status, 0, del.out);
        assert.equal(journalState(journal)!.status, "stopped");
        assert.ok(await ends(now.pid), "the precopy's delete ended the journal process");
        // Nothing left to stop: the delete still succeeds (destroy after the final copy).
        assert.equal(run(scripts.renderJournalStopScript(blockCopySpec(e))).status, 0);
    });
});
