// Session helpers without a server: the one-server client (IPv6, chroot) and bounded calls.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as zookeeper from "node-zookeeper-client";
import { call, createSingleServerClient, ZkOperationError } from "../../../src/zk";

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
