// The local cluster's DNS (rehearsal/kubernetes/dns.ts): answers for <service>.<namespace>.svc.<domain>.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { answer, parseQuestion, type ServiceRecord } from "../../../rehearsal/kubernetes/dns";

function query(name: string, type = 1, id = 0x1234): Buffer {
    const labels = name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
    const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    return Buffer.concat([header, ...labels, Buffer.from([0, type >> 8, type & 0xff, 0, 1])]);
}
const SERVICES: ServiceRecord[] = [
    { name: "zk-1", namespace: "zookeeper", clusterIP: "10.120.4.7" },
    { name: "zk-headless", namespace: "zookeeper", clusterIP: "None" },
];
const rcode = (r: Buffer) => r.readUInt16BE(2) & 0xf;
const answers = (r: Buffer) => r.readUInt16BE(6);

describe("cluster DNS", () => {
    it("parses the question (lower case)", () => {
        assert.deepEqual(parseQuestion(query("ZK-1.zookeeper.svc.cluster.local")), { id: 0x1234, name: "zk-1.zookeeper.svc.cluster.local", type: 1, cls: 1, end: 12 + 34 + 4 });
    });
    it("answers a Service's ClusterIP as an A record of the same id, authoritative", () => {
        const r = answer(query("zk-1.zookeeper.svc.cluster.local"), "cluster.local", SERVICES)!;
        assert.equal(r.readUInt16BE(0), 0x1234);
        assert.equal(r.readUInt16BE(2) & 0x8400, 0x8400);
        assert.equal(rcode(r), 0);
        assert.equal(answers(r), 1);
        assert.deepEqual([...r.subarray(r.length - 4)], [10, 120, 4, 7]);
    });
    it("NXDOMAIN for an unknown Service in the domain, an empty answer for another type or a headless Service", () => {
        assert.equal(rcode(answer(query("zk-9.zookeeper.svc.cluster.local"), "cluster.local", SERVICES)!), 3);
        const aaaa = answer(query("zk-1.zookeeper.svc.cluster.local", 28), "cluster.local", SERVICES)!;
        assert.deepEqual([rcode(aaaa), answers(aaaa)], [0, 0]);
        const headless = answer(query("zk-headless.zookeeper.svc.cluster.local"), "cluster.local", SERVICES)!;
        assert.deepEqual([rcode(headless), answers(headless)], [0, 0]);
    });
    it("refuses names outside the cluster domain", () => {
        assert.equal(rcode(answer(query("example.com"), "cluster.local", SERVICES)!), 5);
    });
    it("FORMERR for a message that is not one question; nothing for a runt", () => {
        const bad = query("zk-1.zookeeper.svc.cluster.local");
        bad.writeUInt16BE(2, 4);
        assert.equal(rcode(answer(bad, "cluster.local", SERVICES)!), 1);
        assert.equal(answer(Buffer.from([1, 2, 3]), "cluster.local", SERVICES), undefined);
    });
});
