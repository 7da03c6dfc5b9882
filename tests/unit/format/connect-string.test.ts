// Connect strings: host:port,host:port[/chroot], IPv6 in brackets, default port 2181.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chrootProblem, ConnectStringError, formatConnectString, formatServer, parseConnectString, singleServerConnectString } from "../../../src/zk";

describe("connect strings", () => {
    const good: [string, { servers: { host: string; port: number }[]; chroot?: string }][] = [
        ["127.0.0.1:2181", { servers: [{ host: "127.0.0.1", port: 2181 }] }],
        ["zk1", { servers: [{ host: "zk1", port: 2181 }] }],
        ["zk1:2182,zk2,zk3:2183", { servers: [{ host: "zk1", port: 2182 }, { host: "zk2", port: 2181 }, { host: "zk3", port: 2183 }] }],
        ["zk1:2181,zk2:2181/kafka", { servers: [{ host: "zk1", port: 2181 }, { host: "zk2", port: 2181 }], chroot: "/kafka" }],
        ["zk1/kafka/cluster-a", { servers: [{ host: "zk1", port: 2181 }], chroot: "/kafka/cluster-a" }],
        ["zk1:2181/", { servers: [{ host: "zk1", port: 2181 }] }],
        ["[::1]:2181", { servers: [{ host: "::1", port: 2181 }] }],
        ["[2001:db8::7]", { servers: [{ host: "2001:db8::7", port: 2181 }] }],
        ["[::1]:2182,127.0.0.1:2183,localhost/chroot", { servers: [{ host: "::1", port: 2182 }, { host: "127.0.0.1", port: 2183 }, { host: "localhost", port: 2181 }], chroot: "/chroot" }],
        ["[fe80::1%eth0]:2181", { servers: [{ host: "fe80::1%eth0", port: 2181 }] }],
        ["zk-1.example.com:2181, zk-2.example.com:2181", { servers: [{ host: "zk-1.example.com", port: 2181 }, { host: "zk-2.example.com", port: 2181 }] }],
        ["  zk_internal:1  ", { servers: [{ host: "zk_internal", port: 1 }] }],
        ["zk:65535", { servers: [{ host: "zk", port: 65535 }] }],
        ["my-zk-0.my-zk.zookeeper.svc.cluster.local:2181/kafka", { servers: [{ host: "my-zk-0.my-zk.zookeeper.svc.cluster.local", port: 2181 }], chroot: "/kafka" }],
    ];
    for (const [input, expected] of good) {
        it(`parses ${JSON.stringify(input)}`, () => {
            assert.deepEqual(parseConnectString(input), expected);
        });
    }

    const bad: [string, RegExp][] = [
        ["", /it is empty/],
        ["   ", /it is empty/],
        ["/kafka", /no server before the chroot/],
        ["zk1,,zk2", /server 2 is empty/],
        ["zk1,", /server 2 is empty/],
        [",zk1", /server 1 is empty/],
        ["zk1:", /port "" is not a number/],
        ["zk1:abc", /port "abc" is not a number/],
        ["zk1:0", /port 0 is outside 1\.\.65535/],
        ["zk1:65536", /port 65536 is outside 1\.\.65535/],
        ["zk1:-1", /port "-1" is not a number/],
        [":2181", /no host before ":"/],
        ["::1", /IPv6 address must be written in brackets, e\.g\. \[::1\]:2181/],
        ["2001:db8::1:2181", /IPv6 address must be written in brackets/],
        ["[::1", /"\[" without a closing "\]"/],
        ["[::1]2181", /expected ":port" after "\]"/],
        ["[zk1]:2181", /"zk1" is not an IPv6 address/],
        ["[127.0.0.1]:2181", /is not an IPv6 address/],
        ["zk 1:2181", /"zk 1" is not a valid hostname/],
        ["zk1:2181/kafka/", /chroot "\/kafka\/" must not end with \//],
        ["zk1:2181/a//b", /must not contain an empty component/],
        ["zk1:2181/a/../b", /must not contain a relative component \(\.\.\)/],
        ["zk1:2181/a/./b", /relative component \(\.\)/],
        ["zk1/\u0001", /must not contain the character U\+0001/],
        ["zk1/emoji\u{1F600}", /must not contain the character U\+1F600/],
    ];
    for (const [input, message] of bad) {
        it(`refuses ${JSON.stringify(input)}`, () => {
            assert.throws(() => parseConnectString(input), (e: unknown) => {
                assert.ok(e instanceof ConnectStringError);
                assert.match(e.message, /^invalid connect string /);
                assert.match(e.message, message);
                return true;
            });
        });
    }

    it("formats servers back, IPv6 in brackets, and one server with the chroot", () => {
        const c = parseConnectString("[::1],zk1/kafka");
        assert.equal(formatServer(c.servers[0]), "[::1]:2181");
        assert.equal(formatServer(c.servers[1]), "zk1:2181");
        assert.equal(formatConnectString(c), "[::1]:2181,zk1:2181/kafka");
        assert.equal(singleServerConnectString(c.servers[1], c.chroot), "zk1:2181/kafka");
        assert.equal(singleServerConnectString(c.servers[1]), "zk1:2181");
    });

    it("validates chroots with ZooKeeper's path rules", () => {
        assert.equal(chrootProblem("/kafka"), undefined);
        assert.equal(chrootProblem("/ünïcode/ok"), undefined);
        assert.equal(chrootProblem("kafka"), "must start with /");
        assert.match(chrootProblem("/a\u007f")!, /U\+007F/);
    });
});
