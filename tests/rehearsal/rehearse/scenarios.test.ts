// The rehearsal's tables (rehearsal/rehearse/scenarios.ts): every scenario names a procedure, its
// own phase functions are phases of that procedure, and the mitosis row gives the stack the
// ensemble entry the rehearsal has always used.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig } from "../../../src/config";
import { BLOCK_COPY_PHASES } from "../../../src/procedures/block-copy";
import { KUBERNETES_PHASES } from "../../../src/procedures/kubernetes";
import { MITOSIS_PHASES } from "../../../src/procedures/mitosis";
import type { Cluster } from "../../../rehearsal/kubernetes/cluster";
import { TEST_SSH } from "../../fixtures";
import type { LocalFleet, FleetHost } from "../../../rehearsal/fleet";
import { PROCEDURES, SCENARIOS, withJoin } from "../../../rehearsal/rehearse/scenarios";

function fleetOf(hosts: [string, number][]): LocalFleet {
    return { hosts: hosts.map(([ensemble, id]) => ({ name: `${ensemble}-${id}`, ensemble, id, address: `10.0.0.${10 + id}` }) as FleetHost) } as LocalFleet;
}

describe("rehearse scenarios", () => {
    it("every scenario names a procedure and changes only phases of it; fleet prefixes differ", () => {
        const prefixes = new Set<string>();
        for (const [name, s] of Object.entries(SCENARIOS)) {
            const p = PROCEDURES[s.procedure];
            assert.ok(p, `${name}: procedure ${s.procedure}`);
            for (const phase of Object.keys("phases" in s ? s.phases : {})) assert.ok((p.phases as readonly string[]).includes(phase), `${name}: ${phase} is a phase of ${s.procedure}`);
            assert.match(s.fleetPrefix, /^r[a-z]$/, `${name}: the fleet prefix`);
            assert.ok(!prefixes.has(s.fleetPrefix), `${name}: its own fleet prefix`);
            prefixes.add(s.fleetPrefix);
        }
        assert.deepEqual(Object.keys(SCENARIOS), ["mitosis", "fault", "abort", "host-lost", "block-copy", "kubernetes", "pod-fault"]);
        assert.deepEqual(Object.keys(SCENARIOS.fault.phases), ["joined"]);
    });

    it("mitosis: every phase in order, source 1-3 and an empty target 4-6 with 4 and 5 active", () => {
        const m = PROCEDURES.mitosis;
        assert.deepEqual(m.phases, MITOSIS_PHASES);
        assert.deepEqual(m.ensembles, [
            { name: "source", servers: 3, firstId: 1 },
            { name: "target", servers: 3, firstId: 4 },
        ]);
        const f = fleetOf([["source", 1], ["source", 2], ["source", 3], ["target", 4], ["target", 5], ["target", 6], ["kafka", 1]]);
        assert.deepEqual(m.ensemble(f), {
            procedure: "mitosis",
            phase: "separate",
            source: [1, 2, 3].map((id) => ({ id, host: `10.0.0.${10 + id}` })),
            target: [4, 5, 6].map((id) => ({ id, host: `10.0.0.${10 + id}` })),
            targetEmpty: true,
        });
    });

    it("withJoin: unset keeps the config's default join; voter pins it with two active targets; observer drops activeTargets; reconfig sets membershipChange", () => {
        const entry = { procedure: "mitosis", target: [4, 5, 6].map((id) => ({ id, host: `10.0.0.${10 + id}` })) };
        const knows = () => true;
        assert.deepEqual(withJoin(entry, undefined, knows), entry);
        assert.deepEqual(withJoin(entry, "voter", knows), { ...entry, joinAs: "voter", activeTargets: [4, 5] });
        assert.deepEqual(withJoin({ ...entry, activeTargets: [4] }, "observer", knows), { ...entry, joinAs: "observer" });
        assert.deepEqual(withJoin(entry, "reconfig", knows), { ...entry, membershipChange: "reconfig" });
        // The scenarios built on the voter join's steps keep it when --join names none.
        assert.deepEqual(
            Object.entries(SCENARIOS).filter(([, s]) => "join" in s).map(([n, s]) => `${n}:${(s as { join?: string }).join}`),
            ["fault:voter", "abort:voter", "host-lost:voter"],
        );
    });

    it("block-copy: every phase, a stand-in client on source 1 blocked and switched by its own commands, a valid ensemble", () => {
        const b = PROCEDURES["block-copy"];
        assert.deepEqual(b.phases, BLOCK_COPY_PHASES);
        const f = { ...fleetOf([["source", 1], ["source", 2], ["source", 3], ["target", 4]]), mountPoint: "/zk", hostSettings: { clientPort: 2181 } } as unknown as LocalFleet;
        f.hosts[0].dir = "/run/fleet/source-1";
        const e = b.ensemble(f) as Record<string, any>;
        assert.equal(e.procedure, "block-copy");
        assert.deepEqual(e.clients.hosts, [{ host: "10.0.0.11" }]);
        assert.match(e.clients.block, /kill -TERM "\$pid"/);
        assert.match(e.clients.switch, /ZK_CONNECT:\?/);
        assert.match(e.clients.switch, /rehearsal\/block-copy-client\.ts "\$ZK_CONNECT" '\/zk\/run\/standin\.acks'/);
        assert.equal(e.clients.unblock, undefined, "pulumi destroy must not start the client again");
        assert.equal(b.migratingFollowsConnect, false);
        // The entry loads as the stack would load it.
        const config = loadConfig({ ...TEST_SSH, ensembles: [{ name: "kafka", ...e }] });
        assert.equal(config.ensembles[0].procedure, "block-copy");
        assert.deepEqual(Object.keys(SCENARIOS["block-copy"].phases), ["precopy"]);
    });

    it("kubernetes: every phase, its own pods phase (one cutover per update), a local cluster, everyone follows the Service names; the entry loads", () => {
        const k = PROCEDURES.kubernetes;
        assert.deepEqual(k.phases, KUBERNETES_PHASES);
        assert.deepEqual(k.ensembles, [{ name: "source", servers: 3, firstId: 1 }]);
        assert.equal(k.cluster, true);
        assert.equal(k.everyoneFollowsConnect, true);
        assert.deepEqual(Object.keys(k.phaseRuns), ["pods"]);
        const cluster = { name: "rn-1", images: { zookeeper: { name: "k8s.local/zookeeper:3.9.5", archive: "/x", digest: `sha256:${"a".repeat(64)}` } } } as unknown as Cluster;
        const f = fleetOf([["source", 1], ["source", 2], ["source", 3]]);
        const e = k.ensemble(f, cluster) as Record<string, any>;
        assert.deepEqual(e.servers, [1, 2, 3].map((id) => ({ id, host: `10.0.0.${10 + id}` })));
        assert.equal(e.kubernetes.imageDigest, cluster.images.zookeeper.digest);
        assert.equal(e.kubernetes.clusterVersion, "v1.34.4");
        // A bounded wait for the pods (pod-fault shortens it for the update that must fail).
        assert.equal(e.kubernetes.readyTimeoutSeconds, 300);
        assert.deepEqual(Object.keys(SCENARIOS["pod-fault"].phases), ["pods"]);
        const config = loadConfig({ ...TEST_SSH, ensembles: [{ name: "kafka", ...e, clients: { chroot: "/kafka" } }] });
        assert.equal(config.ensembles[0].procedure, "kubernetes");
    });
});
