// The srvr, mntr and conf parsers on answers of ZooKeeper 3.5 and 3.9.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatTable, latencyStats, parseConf, parseMntr, parseServerSpec, parseSrvr, parseZxid, shortVersion } from "../../../src/zk";
import {
    CONF_35_QUORUM,
    CONF_35_STANDALONE,
    CONF_39_QUORUM,
    MNTR_35_FOLLOWER,
    MNTR_35_LEADER,
    MNTR_39_FOLLOWER,
    MNTR_39_LEADER,
    NOT_SERVING,
    SRVR_35_FOLLOWER,
    SRVR_35_LEADER,
    SRVR_35_STANDALONE,
    SRVR_39_FOLLOWER,
    SRVR_39_LEADER,
} from "../cli/fixtures";

describe("zxid", () => {
    it("splits epoch (zxid >> 32) and counter", () => {
        assert.deepEqual(parseZxid("0x200000004"), { hex: "0x200000004", epoch: 2, counter: 4 });
        assert.deepEqual(parseZxid("0x0"), { hex: "0x0", epoch: 0, counter: 0 });
        assert.deepEqual(parseZxid("0xffffffffffffffff"), { hex: "0xffffffffffffffff", epoch: 0xffffffff, counter: 0xffffffff });
        assert.deepEqual(parseZxid("0x1A00000000"), { hex: "0x1a00000000", epoch: 26, counter: 0 });
        assert.deepEqual(parseZxid("4294967297"), { hex: "0x100000001", epoch: 1, counter: 1 });
        assert.equal(parseZxid("zxid"), undefined);
        assert.equal(parseZxid(""), undefined);
    });
});

describe("srvr", () => {
    it("parses a 3.5 follower", () => {
        const s = parseSrvr(SRVR_35_FOLLOWER);
        assert.equal(s.serving, true);
        assert.equal(s.version, "3.5.10");
        assert.equal(s.versionText, "3.5.10-a32c7183d42325b03e44a06aade6a0f16955bf13, built on 05/29/2022 16:59 GMT");
        assert.deepEqual(s.latency, { min: 0, avg: 4, max: 21 });
        assert.equal(s.received, 50);
        assert.equal(s.sent, 54);
        assert.equal(s.connections, 3);
        assert.equal(s.outstanding, 0);
        assert.deepEqual(s.zxid, { hex: "0x100000048", epoch: 1, counter: 0x48 });
        assert.equal(s.mode, "follower");
        assert.equal(s.nodeCount, 5);
        assert.equal(s.proposalSizes, undefined);
    });

    it("parses a 3.5 leader with its proposal sizes, and a standalone server", () => {
        const s = parseSrvr(SRVR_35_LEADER);
        assert.equal(s.mode, "leader");
        assert.deepEqual(s.zxid, { hex: "0x100000000", epoch: 1, counter: 0 });
        assert.deepEqual(s.proposalSizes, { last: -1, min: -1, max: -1 });
        const st = parseSrvr(SRVR_35_STANDALONE);
        assert.equal(st.mode, "standalone");
        assert.deepEqual(st.zxid, { hex: "0x0", epoch: 0, counter: 0 });
    });

    it("parses 3.9 (decimal average latency)", () => {
        const l = parseSrvr(SRVR_39_LEADER);
        assert.equal(l.version, "3.9.3");
        assert.deepEqual(l.latency, { min: 0, avg: 0.7273, max: 5 });
        assert.deepEqual(l.zxid, { hex: "0x200000004", epoch: 2, counter: 4 });
        assert.equal(l.mode, "leader");
        assert.equal(l.nodeCount, 7);
        assert.deepEqual(l.proposalSizes, { last: 48, min: 36, max: 92 });
        const f = parseSrvr(SRVR_39_FOLLOWER);
        assert.equal(f.mode, "follower");
        assert.equal(f.outstanding, 1);
        assert.deepEqual(f.latency, { min: 0, avg: 1.25, max: 3 });
    });

    it("says when the server is not serving, and survives CRLF and the stat command's client list", () => {
        const n = parseSrvr(NOT_SERVING);
        assert.equal(n.serving, false);
        assert.equal(n.mode, undefined);
        const stat = parseSrvr(
            "Zookeeper version: 3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC\r\nClients:\r\n /127.0.0.1:50000[0](queued=0,recved=1,sent=0)\r\n\r\nLatency min/avg/max: 0/0.0/0\r\nMode: observer\r\nNode count: 4\r\n",
        );
        assert.equal(stat.version, "3.8.4");
        assert.equal(stat.mode, "observer");
        assert.equal(stat.nodeCount, 4);
        assert.equal(stat.zxid, undefined);
    });
});

describe("mntr", () => {
    it("parses a 3.5 leader: synced followers, znodes, outstanding requests, state", () => {
        const m = parseMntr(MNTR_35_LEADER);
        assert.equal(m.serving, true);
        assert.equal(m.version, "3.5.10");
        assert.equal(m.serverState, "leader");
        assert.equal(m.znodeCount, 5);
        assert.equal(m.outstandingRequests, 0);
        assert.equal(m.followers, 2);
        assert.equal(m.syncedFollowers, 2);
        assert.equal(m.pendingSyncs, 0);
        assert.deepEqual(m.latency, { min: 0, avg: 0, max: 0 });
        assert.equal(m.approximateDataSize, 182);
        assert.equal(m.values.zk_max_file_descriptor_count, "20000");
    });

    it("parses a 3.5 follower (no leader-only keys)", () => {
        const m = parseMntr(MNTR_35_FOLLOWER);
        assert.equal(m.serverState, "follower");
        assert.equal(m.syncedFollowers, undefined);
        assert.equal(m.followers, undefined);
    });

    it("parses 3.9: decimal latency, peer state with spaces, learners, many keys", () => {
        const m = parseMntr(MNTR_39_LEADER);
        assert.equal(m.version, "3.9.3");
        assert.equal(m.serverState, "leader");
        assert.equal(m.syncedFollowers, 2);
        assert.equal(m.znodeCount, 7);
        assert.equal(m.ephemeralsCount, 1);
        assert.deepEqual(m.latency, { min: 0, avg: 0.7273, max: 5 });
        assert.equal(m.peerState, "leading - broadcast");
        assert.equal(m.uptimeMs, 392741);
        assert.equal(m.values.zk_learners, "2");
        assert.equal(m.values.zk_p99_commit_propagation_latency, "3");
        assert.equal(m.followers, undefined, "3.9 reports zk_learners, not zk_followers");
        const f = parseMntr(MNTR_39_FOLLOWER);
        assert.equal(f.serverState, "follower");
        assert.equal(f.peerState, "following - broadcast");
        assert.equal(f.outstandingRequests, 1);
    });

    it("says when the server is not serving; ignores lines that are not zk_ keys", () => {
        assert.equal(parseMntr(NOT_SERVING).serving, false);
        assert.deepEqual(parseMntr(NOT_SERVING).values, {});
        assert.deepEqual(parseMntr("zk_server_state standalone\nnoise\n").values, { zk_server_state: "standalone" });
        // 3.7+ per-namespace metrics are named after top-level znodes, dashes included.
        assert.equal(parseMntr("zk_avg_zkmigrate-smoke_read_per_namespace\t103.0952\n").values["zk_avg_zkmigrate-smoke_read_per_namespace"], "103.0952");
    });
});

describe("conf", () => {
    it("parses a 3.5 quorum member: settings, myid and membership", () => {
        const c = parseConf(CONF_35_QUORUM);
        assert.equal(c.clientPort, 41183);
        assert.equal(c.serverId, 3);
        assert.equal(c.tickTime, 500);
        assert.equal(c.initLimit, 10);
        assert.equal(c.syncLimit, 5);
        assert.equal(c.electionPort, 41909);
        assert.equal(c.quorumPort, 41908);
        assert.equal(c.dataDir, "/tmp/zkdev/q3/data/version-2");
        assert.equal(c.configVersion, "0");
        assert.deepEqual(
            c.membership.map((s) => [s.id, s.host, s.quorumPort, s.electionPort, s.role, s.clientAddress]),
            [
                [1, "127.0.0.1", 41888, 41889, "participant", undefined],
                [2, "127.0.0.1", 41898, 41899, "participant", undefined],
                [3, "127.0.0.1", 41908, 41909, "participant", undefined],
            ],
        );
        assert.equal(c.values.version, undefined, "the membership version is not a setting");
    });

    it("parses a 3.5 standalone server (serverId 0, no membership)", () => {
        const c = parseConf(CONF_35_STANDALONE);
        assert.equal(c.serverId, 0);
        assert.deepEqual(c.membership, []);
        assert.equal(c.configVersion, undefined);
        assert.equal(c.maxSessionTimeout, 10000);
    });

    it("parses 3.9: new keys kept, client addresses, IPv6 and observers", () => {
        const c = parseConf(CONF_39_QUORUM);
        assert.equal(c.serverId, 2);
        assert.equal(c.values.clientPortListenBacklog, "-1");
        assert.equal(c.configVersion, "200000000");
        assert.equal(c.membership.length, 4);
        assert.deepEqual(c.membership[0], { id: 1, spec: "10.0.0.1:2888:3888:participant;0.0.0.0:2181", host: "10.0.0.1", quorumPort: 2888, electionPort: 3888, role: "participant", clientAddress: "0.0.0.0:2181" });
        assert.deepEqual(c.membership[2], { id: 3, spec: "[2001:db8::3]:2888:3888:participant;[::]:2181", host: "2001:db8::3", quorumPort: 2888, electionPort: 3888, role: "participant", clientAddress: "[::]:2181" });
        assert.equal(c.membership[3].role, "observer");
    });

    it("reads server specs without a role or with only a client port", () => {
        assert.deepEqual(parseServerSpec(5, "zk5:2888:3888;2181"), { id: 5, spec: "zk5:2888:3888;2181", host: "zk5", quorumPort: 2888, electionPort: 3888, role: "participant", clientAddress: "2181" });
        assert.equal(parseConf(NOT_SERVING).serving, false);
    });
});

describe("small helpers", () => {
    it("shortens versions", () => {
        assert.equal(shortVersion("3.8.0--1, built on Tue, 27 Sep 2022 12:00:00 +0000"), "3.8.0");
        assert.equal(shortVersion("weird"), "weird");
    });

    it("computes min/median/max", () => {
        assert.deepEqual(latencyStats("get", [3, 1, 2]), { op: "get", samples: 3, minMs: 1, medianMs: 2, maxMs: 3 });
        assert.deepEqual(latencyStats("get", [4, 1, 2, 3]), { op: "get", samples: 4, minMs: 1, medianMs: 2.5, maxMs: 4 });
        assert.deepEqual(latencyStats("set", [0.12345]), { op: "set", samples: 1, minMs: 0.123, medianMs: 0.123, maxMs: 0.123 });
    });

    it("aligns tables", () => {
        assert.equal(formatTable(["A", "BB"], [["xyz", "1"], ["q", "22"]], ["left", "right"]), "A    BB\nxyz   1\nq    22");
    });
});
