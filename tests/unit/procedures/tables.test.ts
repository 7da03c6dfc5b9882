// The phase tables of DESIGN.md, server by server: what each server has written, what it runs
// with, whether it runs, the firewall and the connect string, for every phase.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubernetesConfig, MitosisConfig } from "../../../src/config";
import { desiredState } from "../../../src/model";
import { KUBERNETES_PHASES } from "../../../src/procedures/kubernetes";
import { MITOSIS_PHASES } from "../../../src/procedures/mitosis";
import { formatConnectString as formatConnect } from "../../../src/format/connect-string";
import type { DesiredState, Membership } from "../../../src/types";
import { devFleet } from "../../fixtures";

const fleet = devFleet();
const mitosis = fleet.ensembles[0] as MitosisConfig;
const kube = fleet.ensembles[1] as KubernetesConfig;

const ids = (m: Membership) => m.members.map((l) => l.id).join("");
/** Per server: `<written>/<running with>` membership ids, `-` when stopped, `d` when dormant. */
const row = (d: DesiredState) =>
    d.servers.map((s) => `${s.id}:${ids(s.written)}/${s.running ? ids(s.runningWith) : "-"}${s.dormant ? "d" : ""}`).join(" ");

describe("mitosis phase table", () => {
    const table: Record<string, { servers: string; firewall: string; clients: "S" | "T"; preflight: boolean }> = {
        separate: { servers: "1:123/123 2:123/123 3:123/123 4:456/456 5:456/456 6:456/456", firewall: "", clients: "S", preflight: true },
        joined: { servers: "1:12345/12345 2:12345/12345 3:12345/12345 4:12345/12345 5:12345/12345 6:456/-d", firewall: "", clients: "S", preflight: false },
        clients: { servers: "1:12345/12345 2:12345/12345 3:12345/12345 4:12345/12345 5:12345/12345 6:456/-d", firewall: "", clients: "T", preflight: false },
        // The split's read-only preflight, nothing written: a zoo.cfg is written only by the
        // restart that reads it, so written and running never differ.
        prepared: { servers: "1:12345/12345 2:12345/12345 3:12345/12345 4:12345/12345 5:12345/12345 6:456/-d", firewall: "", clients: "T", preflight: true },
        split: { servers: "1:12345/12345 2:12345/12345 3:12345/12345 4:456/456 5:456/456 6:456/456", firewall: "4,5,6", clients: "T", preflight: false },
        "source-restarted": { servers: "1:123/123 2:123/123 3:123/123 4:456/456 5:456/456 6:456/456", firewall: "4,5,6", clients: "T", preflight: false },
        done: { servers: "1:123/123 2:123/123 3:123/123 4:456/456 5:456/456 6:456/456", firewall: "", clients: "T", preflight: false },
    };
    assert.deepEqual(Object.keys(table), [...MITOSIS_PHASES]);
    for (const phase of MITOSIS_PHASES) {
        it(phase, () => {
            const d = desiredState(mitosis, phase);
            const t = table[phase];
            assert.equal(row(d), t.servers);
            assert.equal(d.firewall.map((f) => f.id).join(","), t.firewall);
            for (const f of d.firewall) assert.deepEqual(f.peers, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
            assert.equal(formatConnect(d.clients.current), t.clients === "S" ? "192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka" : "192.0.2.4:2181,192.0.2.5:2181,192.0.2.6:2181/kafka");
            assert.equal(d.preflight, t.preflight);
            assert.ok(d.servers.every((s) => s.location === "host" && !s.runningWith.quorumListenOnAllIPs));
        });
    }
    it("wipes a target's data only when it first joins: active targets at the join, dormant ones at the split, all of them back at separate", () => {
        // The table says where a start may empty a target; a restart empties it only when it joins
        // another ensemble than it ran in (host-steps wipesOnRestart), never for an edited setting.
        const wipes = (phase: string) => desiredState(mitosis, phase).servers.filter((s) => s.wipeDataOnStart).map((s) => s.id).join(",");
        assert.deepEqual(
            MITOSIS_PHASES.map((p) => `${p}:${wipes(p)}`),
            ["separate:4,5,6", "joined:4,5", "clients:4,5", "prepared:4,5", "split:6", "source-restarted:6", "done:6"],
        );
    });

    it("the joint membership lists the hosts with the peer and election ports", () => {
        const d = desiredState(mitosis, "joined");
        assert.deepEqual(d.servers[0].written.members[4], { id: 5, address: "192.0.2.5", peerPort: 2888, electionPort: 3888 });
    });
});

describe("kubernetes phase table", () => {
    const svc = (id: number) => `zk-shared-${id}.zookeeper.svc.cluster.local`;
    const table: [string, number[], { addresses: "hosts" | "services"; listenAll: boolean; services: boolean; pods: string; replicas?: number; clients: "hosts" | "services" }][] = [
        ["hosts", [], { addresses: "hosts", listenAll: false, services: false, pods: "", clients: "hosts" }],
        ["services", [], { addresses: "hosts", listenAll: false, services: true, pods: "", clients: "hosts" }],
        ["clients", [], { addresses: "hosts", listenAll: false, services: true, pods: "", clients: "services" }],
        ["peers", [], { addresses: "services", listenAll: true, services: true, pods: "", clients: "services" }],
        ["pods", [12], { addresses: "services", listenAll: true, services: true, pods: "12", replicas: 1, clients: "services" }],
        ["pods", [12, 11], { addresses: "services", listenAll: true, services: true, pods: "11,12", replicas: 2, clients: "services" }],
        ["done", [12, 11, 13], { addresses: "services", listenAll: true, services: true, pods: "11,12,13", replicas: 3, clients: "services" }],
    ];
    assert.deepEqual([...new Set(table.map((t) => t[0]))], [...KUBERNETES_PHASES]);
    for (const [phase, cutover, t] of table) {
        it(`${phase} [${cutover}]`, () => {
            const d = desiredState(kube, phase, cutover);
            for (const s of d.servers) {
                assert.deepEqual(
                    s.runningWith.members.map((m) => m.address),
                    t.addresses === "hosts" ? ["198.51.100.11", "198.51.100.12", "198.51.100.13"] : [svc(11), svc(12), svc(13)],
                );
                assert.equal(s.runningWith.quorumListenOnAllIPs, t.listenAll);
            }
            assert.equal(d.kubernetes!.services, t.services);
            assert.equal(d.servers.filter((s) => s.location === "pod").map((s) => s.id).join(","), t.pods);
            assert.ok(d.servers.filter((s) => s.location === "pod").every((s) => s.decommissioned));
            assert.equal(d.kubernetes!.statefulSet?.replicas, t.replicas);
            assert.ok(d.clients.current.servers[0].host === (t.clients === "hosts" ? "198.51.100.11" : svc(11)));
        });
    }
    it("maps StatefulSet ordinals to myids in cutover order (myids need not be contiguous)", () => {
        const d = desiredState(kube, "pods", [13, 11]);
        assert.deepEqual(d.kubernetes!.statefulSet!.ordinalToMyid, { 0: 13, 1: 11 });
        assert.deepEqual(
            d.kubernetes!.servers.map((s) => [s.id, s.backend, s.ordinal]),
            [
                [11, "pod", 1],
                [12, "host", undefined],
                [13, "pod", 0],
            ],
        );
        assert.match(d.kubernetes!.statefulSet!.zooCfg, /server\.11=zk-shared-11\.zookeeper\.svc\.cluster\.local:2888:3888/);
        assert.match(d.kubernetes!.statefulSet!.zooCfg, /quorumListenOnAllIPs=true/);
    });
});
