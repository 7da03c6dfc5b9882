// Block & copy against a real fleet (one source server, one target server that already holds
// other data): the rendered copy commands of `precopy` and `final-copy` run as the component's
// local.Command runs them (bash -c, from the project directory), with changes on the source in
// between (an update, a create, a delete, a node under a digest ACL read with credentials from
// the environment). The target must end equal to the source under the path, its other data kept.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
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
import { ROOT, TEST_PRIVATE_KEY } from "../fixtures";
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

/** Runs a rendered copy script as command:local:Command does (bash -c, the project directory). */
function run(script: string): { status: number | null; out: string } {
    const r = spawnSync("/bin/bash", ["-c", script], {
        cwd: ROOT,
        env: { ...process.env, ZK_SRC_AUTH: `digest:${ADMIN}`, ZK_DST_AUTH: `digest:${ADMIN}` },
        encoding: "utf8",
        timeout: 120_000,
    });
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
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
            sshPrivateKey: TEST_PRIVATE_KEY,
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

        const t0 = Date.now();
        const pre = run(renderCopyScript(e, "full"));
        const preMs = Date.now() - t0;
        assert.equal(pre.status, 0, pre.out);
        assert.ok(existsSync(e.copy.stateFile), "the precopy wrote the state file");
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
        assert.equal(await data(d, "/moved/kafka/config"), "v2");
        assert.equal(await data(d, "/moved/kafka/brokers/b50"), "broker 50");
        assert.equal(await exists(d, "/moved/kafka/gone"), false, "--delete removed what the source deleted");
        assert.equal(await data(d, "/moved/kafka/secure"), "changed");
        assert.equal(await data(d, "/other"), "target's own");
        // The secret never appears in what pulumi would show.
        assert.doesNotMatch(renderCopyScript(e, "incremental"), /bc-secret/);
        console.log(`  block-copy: precopy ${preMs} ms, final copy ${finMs} ms (54 nodes, 4 changed; each includes starting the CLI)`);
    });

    it("carries a later change on a re-run, and fails (exit 1, as `pulumi up` would) when --verify finds a difference", async () => {
        await setData(s, "/kafka/config", "v3");
        const again = run(renderCopyScript(e, "incremental"));
        assert.equal(again.status, 0, again.out);
        assert.equal(await data(d, "/moved/kafka/config"), "v3");
        // A write on the target under the path (a client that was not blocked): the source did not
        // change, so the incremental copy leaves it, and the verification must refuse.
        await setData(d, "/moved/kafka/brokers/b7", "written on the target");
        const bad = run(renderCopyScript(e, "incremental"));
        assert.equal(bad.status, 1, bad.out);
        assert.match(bad.out, /brokers\/b7/);
    });
});
