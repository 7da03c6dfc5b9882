// The policy pack reads zkmigrate's rendered host scripts back: the parser against the renderers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConnect, parseMembership, restartOutcome, scriptParams, writtenMembership, zooSettings } from "../../policy/lib";
import { formatConnectString as formatConnect } from "../../src/format/connect-string";
import { renderFirewallApply, renderRestart, renderStop, renderWriteConfig } from "../../src/scripts";
import { renderReconfigStart } from "../../src/scripts/reconfig";
import type { Membership } from "../../src/types";
import { devFleet } from "../fixtures";

const host = devFleet().ensembles[0].host;
const membership: Membership = {
    members: [
        { id: 1, address: "192.0.2.1", peerPort: 2888, electionPort: 3888 },
        { id: 2, address: "2001:db8::2", peerPort: 2888, electionPort: 3888 },
        { id: 3, address: "zk-3.zookeeper.svc.cluster.local", peerPort: 12888, electionPort: 13888 },
    ],
    quorumListenOnAllIPs: true,
};

describe("rendered scripts read back", () => {
    it("the membership a config write puts on disk", () => {
        assert.deepEqual(writtenMembership(scriptParams(renderWriteConfig({ host, myid: 2, membership }))), membership);
    });
    it("the membership a restart leaves running, and a stop", () => {
        const restart = renderRestart({ host, myid: 1, mode: "restart", wipeData: false, spacingSeconds: 10, expect: membership });
        assert.deepEqual(restartOutcome(scriptParams(restart)), { running: true, membership });
        assert.deepEqual(restartOutcome(scriptParams(renderStop({ host, disable: false }))), { running: false });
    });
    it("a reconfig mitosis's start leaves its seed running (SEED_LINES: roles and client ports)", () => {
        const seed = [
            { id: 1, address: "192.0.2.1", peerPort: 2888, electionPort: 3888 },
            { id: 4, address: "192.0.2.4", peerPort: 2888, electionPort: 3888, observer: true as const },
        ];
        const start = renderReconfigStart({ host, myid: 4, seed, wipeData: true, spacingSeconds: 0 });
        assert.deepEqual(restartOutcome(scriptParams(start)), { running: true, membership: { members: seed, quorumListenOnAllIPs: false } });
    });
    it("observers keep their flag (the observer join): from a restart's expected membership and ZooKeeper's own dynamic lines", () => {
        const joint: Membership = { members: [...membership.members, { id: 9, address: "192.0.2.9", peerPort: 2888, electionPort: 3888, observer: true }], quorumListenOnAllIPs: false };
        const restart = renderRestart({ host, myid: 9, mode: "restart", wipeData: true, spacingSeconds: 10, expect: joint });
        assert.deepEqual(restartOutcome(scriptParams(restart)), { running: true, membership: joint });
        assert.deepEqual(parseMembership(["server.4=h4:2888:3888:observer;2181", "server.1=h1:2888:3888:participant;2181"]).members, [
            { id: 1, address: "h1", peerPort: 2888, electionPort: 3888 },
            { id: 4, address: "h4", peerPort: 2888, electionPort: 3888, observer: true },
        ]);
    });
    it("the peers a firewall split cuts off, quotes and all", () => {
        const params = scriptParams(renderFirewallApply({ chain: "ZKM-x", tag: "zkmigrate:it's", peers: ["192.0.2.1", "2001:db8::1"] }));
        assert.deepEqual(params.get("PEERS_V4"), ["192.0.2.1"]);
        assert.deepEqual(params.get("PEERS_V6"), ["2001:db8::1"]);
        assert.equal(params.get("TAG"), "zkmigrate:it's");
    });
    it("membership lines and connect strings as the model formats them", () => {
        assert.deepEqual(parseMembership(["server.2=[2001:db8::2]:2888:3888;2181", "server.1=h1:2888:3888", "quorumListenOnAllIPs=false"]), {
            members: [
                { id: 1, address: "h1", peerPort: 2888, electionPort: 3888 },
                { id: 2, address: "2001:db8::2", peerPort: 2888, electionPort: 3888 },
            ],
            quorumListenOnAllIPs: false,
        });
        const connect = formatConnect({ servers: [{ id: 1, host: "192.0.2.1", port: 2181 }, { id: 2, host: "2001:db8::2", port: 2181 }], chroot: "/kafka" });
        assert.deepEqual(parseConnect(connect), [{ address: "192.0.2.1", port: 2181 }, { address: "2001:db8::2", port: 2181 }]);
    });
    it("ZooKeeper settings in zoo.cfg lines and Java properties", () => {
        assert.deepEqual(zooSettings("# admin.enableServer=true\nadmin.enableServer = false\n4lw.commands.whitelist=srvr, ruok\nJVMFLAGS=\"-Dzookeeper.admin.serverAddress=0.0.0.0\""), [
            { key: "admin.enableServer", value: "false" },
            { key: "4lw.commands.whitelist", value: "srvr, ruok" },
            { key: "admin.serverAddress", value: "0.0.0.0" },
        ]);
    });
});
