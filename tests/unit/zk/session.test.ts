// Session helpers without a server: the one-server client (IPv6, chroot), bounded calls, and a
// refused connection failing at once (node-zookeeper-client alone retries it until the timeout).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as zookeeper from "node-zookeeper-client";
import { abort, call, createSingleServerClient, openSession, whenEveryServerRefuses, ZkOperationError } from "../../../src/zk";
import { closedPort, type Fake, fakeFourLetterServer } from "../cli/helpers";

type Internals = { connectionManager: { servers: { host: string; port: number | string }[]; chrootPath?: string } };

describe("sessions", () => {
    it("a client of one server keeps the chroot, and reaches a bracketed IPv6 address", () => {
        const v4 = createSingleServerClient({ host: "10.0.0.1", port: 2182 }, "/kafka", 4000) as unknown as Internals;
        assert.deepEqual(
            v4.connectionManager.servers.map((s) => [s.host, Number(s.port)]),
            [["10.0.0.1", 2182]],
        );
        assert.equal(v4.connectionManager.chrootPath, "/kafka");
        // node-zookeeper-client alone would split "[::1]:2181" on every ":".
        const v6 = createSingleServerClient({ host: "2001:db8::7", port: 2181 }, "/a/b", 4000) as unknown as Internals;
        assert.deepEqual(v6.connectionManager.servers, [{ host: "2001:db8::7", port: 2181 }]);
        assert.equal(v6.connectionManager.chrootPath, "/a/b");
        const plain = createSingleServerClient({ host: "zk1", port: 2181 }, undefined, 4000) as unknown as Internals;
        assert.equal(plain.connectionManager.chrootPath, undefined);
    });

    it("bounds every call and names ZooKeeper's error", async () => {
        assert.equal(await call<number>("ok", 1000, (cb) => cb(null, 7)), 7);
        await assert.rejects(
            call("get /x", 1000, (cb) => cb(new zookeeper.Exception(zookeeper.Exception.NO_NODE, "NO_NODE", "/x", Object))),
            (e: unknown) => e instanceof ZkOperationError && e.code === "NO_NODE" && e.message === "get /x: NO_NODE",
        );
        await assert.rejects(
            call("set /y", 50, () => {}),
            (e: unknown) => e instanceof ZkOperationError && e.code === "TIMEOUT" && e.message === "set /y: no answer within 50 ms",
        );
        await assert.rejects(
            call("create bad", 1000, () => {
                throw new Error("Node path must start with / character.");
            }),
            /create bad: Node path must start with \/ character\./,
        );
    });
});

describe("a refused connection fails at once", () => {
    let down1 = 0;
    let down2 = 0;
    let mute: Fake;
    before(async () => {
        down1 = await closedPort();
        down2 = await closedPort();
        mute = await fakeFourLetterServer(() => undefined);
    });
    after(() => mute.close());

    it("openSession rejects with REFUSED, naming the address, long before its timeout", async () => {
        const started = Date.now();
        await assert.rejects(openSession({ host: "127.0.0.1", port: down1 }, undefined, 20_000), (e: unknown) => {
            assert.ok(e instanceof ZkOperationError);
            assert.equal(e.code, "REFUSED");
            assert.equal(e.message, `no session with 127.0.0.1:${down1}: connect ECONNREFUSED 127.0.0.1:${down1}`);
            return true;
        });
        assert.ok(Date.now() - started < 1000, `refused after ${Date.now() - started} ms`);
    });

    it("a server that accepts but does not answer is not refusing: the timeout decides", async () => {
        const started = Date.now();
        await assert.rejects(openSession({ host: "127.0.0.1", port: mute.port }, undefined, 600), (e: unknown) => e instanceof ZkOperationError && e.code === "TIMEOUT");
        assert.ok(Date.now() - started >= 550);
    });

    it("watches every server of a client: fires once all refused their latest attempt, with each address", async () => {
        const both = zookeeper.createClient(`127.0.0.1:${down1},127.0.0.1:${down2}`, { sessionTimeout: 10_000, spinDelay: 50, retries: 0 });
        const why = await new Promise<string>((resolve) => {
            whenEveryServerRefuses(both, resolve);
            both.connect();
        });
        abort(both);
        for (const p of [down1, down2]) assert.ok(why.includes(`127.0.0.1:${p}: connect ECONNREFUSED 127.0.0.1:${p}`), why);

        // One refusing and one silent server: never "every server refuses".
        const mixed = zookeeper.createClient(`127.0.0.1:${down1},127.0.0.1:${mute.port}`, { sessionTimeout: 2000, spinDelay: 50, retries: 0 });
        let fired = false;
        whenEveryServerRefuses(mixed, () => (fired = true));
        mixed.connect();
        await new Promise((r) => setTimeout(r, 1500));
        abort(mixed);
        assert.equal(fired, false);
    });

    it("an unknown host name counts as refused (getaddrinfo ENOTFOUND)", async () => {
        await assert.rejects(openSession({ host: "no-such-host.invalid", port: 2181 }, undefined, 20_000), (e: unknown) => {
            assert.ok(e instanceof ZkOperationError && e.code === "REFUSED", String(e));
            assert.match(e.message, /^no session with no-such-host\.invalid:2181: getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid$/);
            return true;
        });
    });
});
