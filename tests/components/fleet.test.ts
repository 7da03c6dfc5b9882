// Pulumi.dev.yaml through every phase of both procedures, under Pulumi mocks: which resources
// exist per phase, which commands run on which host and in which order, and that a server whose
// config did not change is not restarted. Read `walkthrough` below as the migration's script.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FleetConfig } from "../../src/config";
import type { LeaderInfo } from "../../src/plan";
import { devFleet } from "../fixtures";
import { appliedAfter, runFleet, type FleetRun, type Recorded } from "./harness";

interface Update {
    kafka: string;
    shared: string;
    cutover: number[];
}

const updates: Update[] = [
    { kafka: "separate", shared: "hosts", cutover: [] },
    { kafka: "joined", shared: "services", cutover: [] },
    { kafka: "clients", shared: "clients", cutover: [] },
    { kafka: "prepared", shared: "peers", cutover: [] },
    { kafka: "split", shared: "pods", cutover: [11] },
    { kafka: "source-restarted", shared: "pods", cutover: [11, 12] },
    { kafka: "done", shared: "pods", cutover: [11, 12, 13] },
    { kafka: "done", shared: "done", cutover: [11, 12, 13] },
];

// What `srvr` would say: kafka-main's source leader is 3, shared's leader is 12.
const leaders: Record<string, LeaderInfo> = {
    "kafka-main": { leaders: [3], known: true },
    shared: { leaders: [12], known: true },
};

// What /controller would say: broker 21 is Kafka's controller.
const controllers = { "kafka-main": { controller: 21, detail: "test" } };

const configOf = (u: Update): FleetConfig => devFleet({ "kafka-main": u.kafka, shared: u.shared }, u.cutover);

const isCommand = (r: Recorded) => r.type === "command:remote:Command";
/** The Pulumi secret marker: mocks see a secret input as { [SECRET_SIG]: SECRET_VALUE, value }. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";
const hostOf = (r: Recorded) => (r.inputs.connection?.value ?? r.inputs.connection).host;
/**
 * What an update runs, in order: from the resources of the previous run and of this one.
 * A new command runs `create`; a changed one runs `update` (else `create`); a removed one its `delete`.
 */
function runs(prev: FleetRun | undefined, cur: FleetRun, prevState?: Map<string, Recorded>): string[] {
    const out: string[] = [];
    const before = prevState ?? prev?.byName ?? new Map<string, Recorded>();
    const order = (name: string) => {
        const role = name.replace(/^(kafka-main|shared)-/, "").replace(/-\d+$/, "");
        return ["preflight", "config", "gate", "split-fence", "split-catchup", "split-arm", "firewall", "restart", "decommission", "kafka-broker"].indexOf(role);
    };
    const restartPos = (name: string) => {
        const b = /^(.*)-kafka-broker-(\d+)$/.exec(name);
        if (b) {
            const child = cur.fleet.ensembles.get(b[1]);
            return child?.kafka ? child.kafka.order.ids.indexOf(Number(b[2])) : -1;
        }
        const m = /^(.*)-restart-(\d+)$/.exec(name);
        if (!m) return 0;
        return cur.fleet.ensembles.get(m[1])?.restartOrder.findIndex((g) => g.ids.includes(Number(m[2]))) ?? -1;
    };
    const cmds = cur.resources.filter(isCommand).sort((a, b) => order(a.name) - order(b.name) || restartPos(a.name) - restartPos(b.name) || a.name.localeCompare(b.name));
    for (const r of cmds) {
        const old = before.get(r.name);
        const host = hostOf(r);
        if (!old) {
            out.push(`${r.name} @${host}: create`);
        } else if (isFrozen(cur, r.name)) {
            // ignoreChanges: the state keeps the old command, nothing runs.
        } else if (old.inputs.create !== r.inputs.create || old.inputs.update !== r.inputs.update || old.inputs.delete !== r.inputs.delete) {
            out.push(`${r.name} @${host}: ${r.inputs.update !== undefined ? "update" : "create again"}`);
        }
    }
    for (const r of prev?.resources.filter(isCommand) ?? []) {
        if (!cur.byName.has(r.name)) out.push(`${r.name} @${hostOf(r)}: delete${r.inputs.delete ? "" : " (no-op)"}`);
    }
    const byName = (a: Recorded, b: Recorded) => a.name.localeCompare(b.name);
    for (const r of cur.resources.filter((x) => x.type.startsWith("kubernetes:")).sort(byName)) {
        const old = before.get(r.name);
        if (!old) out.push(`${r.name}: create ${r.type.split(":").pop()}`);
        else if (JSON.stringify(old.inputs) !== JSON.stringify(r.inputs)) out.push(`${r.name}: update ${r.type.split(":").pop()}`);
    }
    for (const r of prev?.resources.filter((x) => x.type.startsWith("kubernetes:")).sort(byName) ?? []) {
        if (!cur.byName.has(r.name)) out.push(`${r.name}: ${r.type.endsWith("Endpoints") ? "left to Kubernetes (retainOnDelete)" : "delete"}`);
    }
    return out;
}

/** Whether the resource `name` ignores changes in this update (a frozen step). */
function isFrozen(run: FleetRun, name: string): boolean {
    for (const [ens, child] of run.fleet.ensembles) {
        if (name.startsWith(`${ens}-`) && child.frozen.has(name.slice(ens.length + 1))) return true;
    }
    return false;
}

/** The engine's state after an update: a frozen resource keeps its previous inputs. */
function stateAfter(prevState: Map<string, Recorded> | undefined, run: FleetRun): Map<string, Recorded> {
    return new Map(run.resources.map((r) => [r.name, isFrozen(run, r.name) && prevState?.has(r.name) ? prevState.get(r.name)! : r]));
}

// Each update: what runs, in order. Restart lines appear in the order of their dependsOn chain.
const walkthrough: Record<string, string[]> = {
    "separate / hosts": [
        // The first update adopts the servers as they run: read-only checks and a health gate per
        // server; no config is written (a zoo.cfg is written only by the restart that reads it).
        // The Kafka brokers are adopted too (the controller last in the chain).
        "kafka-main-preflight-1 @192.0.2.1: create",
        "kafka-main-preflight-2 @192.0.2.2: create",
        "kafka-main-preflight-3 @192.0.2.3: create",
        "kafka-main-preflight-4 @192.0.2.4: create",
        "kafka-main-preflight-5 @192.0.2.5: create",
        "kafka-main-preflight-6 @192.0.2.6: create",
        "shared-preflight-11 @198.51.100.11: create",
        "shared-preflight-12 @198.51.100.12: create",
        "shared-preflight-13 @198.51.100.13: create",
        "kafka-main-restart-1 @192.0.2.1: create",
        "kafka-main-restart-2 @192.0.2.2: create",
        "kafka-main-restart-3 @192.0.2.3: create",
        "kafka-main-restart-4 @192.0.2.4: create",
        "kafka-main-restart-5 @192.0.2.5: create",
        "kafka-main-restart-6 @192.0.2.6: create",
        "shared-restart-11 @198.51.100.11: create",
        "shared-restart-12 @198.51.100.12: create",
        "shared-restart-13 @198.51.100.13: create",
        "kafka-main-kafka-broker-22 @192.0.2.22: create",
        "kafka-main-kafka-broker-23 @192.0.2.23: create",
        "kafka-main-kafka-broker-21 @192.0.2.21: create",
    ],
    "joined / services": [
        // The chain: dormant 6 stops, targets join (each writes its zoo.cfg right before its
        // restart), source followers, the leader last.
        "shared-preflight-11 @198.51.100.11: create again",
        "shared-preflight-12 @198.51.100.12: create again",
        "shared-preflight-13 @198.51.100.13: create again",
        "kafka-main-restart-6 @192.0.2.6: update",
        "kafka-main-restart-4 @192.0.2.4: update",
        "kafka-main-restart-5 @192.0.2.5: update",
        "kafka-main-restart-1 @192.0.2.1: update",
        "kafka-main-restart-2 @192.0.2.2: update",
        "kafka-main-restart-3 @192.0.2.3: update",
        "kafka-main-preflight-1 @192.0.2.1: delete (no-op)",
        "kafka-main-preflight-2 @192.0.2.2: delete (no-op)",
        "kafka-main-preflight-3 @192.0.2.3: delete (no-op)",
        "kafka-main-preflight-4 @192.0.2.4: delete (no-op)",
        "kafka-main-preflight-5 @192.0.2.5: delete (no-op)",
        "kafka-main-preflight-6 @192.0.2.6: delete (no-op)",
        "shared-endpoints-11: create Endpoints",
        "shared-endpoints-12: create Endpoints",
        "shared-endpoints-13: create Endpoints",
        "shared-service-11: create Service",
        "shared-service-12: create Service",
        "shared-service-13: create Service",
    ],
    "clients / clients": [
        "kafka-main-kafka-broker-22 @192.0.2.22: update",
        "kafka-main-kafka-broker-23 @192.0.2.23: update",
        "kafka-main-kafka-broker-21 @192.0.2.21: update",
        "shared-preflight-11 @198.51.100.11: delete (no-op)",
        "shared-preflight-12 @198.51.100.12: delete (no-op)",
        "shared-preflight-13 @198.51.100.13: delete (no-op)",
    ],
    "prepared / peers": [
        // mitosis: the split's read-only preflight, nothing written. kubernetes: the peers move to
        // the Service names, leader last.
        "kafka-main-preflight-1 @192.0.2.1: create",
        "kafka-main-preflight-2 @192.0.2.2: create",
        "kafka-main-preflight-3 @192.0.2.3: create",
        "kafka-main-preflight-4 @192.0.2.4: create",
        "kafka-main-preflight-5 @192.0.2.5: create",
        "kafka-main-preflight-6 @192.0.2.6: create",
        "shared-restart-11 @198.51.100.11: update",
        "shared-restart-13 @198.51.100.13: update",
        "shared-restart-12 @198.51.100.12: update",
    ],
    "split / pods [11]": [
        // No half-applied split: every target's gate, every running target's client fence (the
        // dormant 6 runs nothing to fence), their catch-ups, then every target's dead man's switch armed (its rules
        // up), the firewalls (each commits the split on its host), then the restarts
        // (src/procedures/gates.ts, src/scripts/fence.ts).
        ...[4, 5, 6].map((id) => `kafka-main-gate-${id} @192.0.2.${id}: create`),
        ...[4, 5].map((id) => `kafka-main-split-fence-${id} @192.0.2.${id}: create`),
        ...[4, 5].map((id) => `kafka-main-split-catchup-${id} @192.0.2.${id}: create`),
        ...[4, 5, 6].map((id) => `kafka-main-split-arm-${id} @192.0.2.${id}: create`),
        ...[4, 5, 6].map((id) => `kafka-main-firewall-${id} @192.0.2.${id}: create`),
        // All targets at once, behind the firewall (no chain between them).
        ...[4, 5, 6].map((id) => `kafka-main-restart-${id} @192.0.2.${id}: update`),
        "shared-decommission-11 @198.51.100.11: create",
        "kafka-main-preflight-1 @192.0.2.1: delete (no-op)",
        "kafka-main-preflight-2 @192.0.2.2: delete (no-op)",
        "kafka-main-preflight-3 @192.0.2.3: delete (no-op)",
        "kafka-main-preflight-4 @192.0.2.4: delete (no-op)",
        "kafka-main-preflight-5 @192.0.2.5: delete (no-op)",
        "kafka-main-preflight-6 @192.0.2.6: delete (no-op)",
        "shared-restart-11 @198.51.100.11: delete (no-op)",
        "shared-configmap: create ConfigMap",
        "shared-headless: create Service",
        "shared-pdb: create PodDisruptionBudget",
        "shared-service-11: update Service",
        "shared-statefulset: create StatefulSet",
        "shared-endpoints-11: left to Kubernetes (retainOnDelete)",
    ],
    "source-restarted / pods [11, 12]": [
        "kafka-main-restart-3 @192.0.2.3: update",
        "kafka-main-restart-2 @192.0.2.2: update",
        "kafka-main-restart-1 @192.0.2.1: update",
        "shared-decommission-12 @198.51.100.12: create",
        // The split's gates and switches go with the split's update (their delete runs nothing).
        // (in the order the previous update registered them: the mocks register asynchronously)
        ...["gate", "split-fence", "split-catchup"].flatMap((k) => (k === "gate" ? [4, 5, 6] : [4, 5]).map((id) => `kafka-main-${k}-${id} @192.0.2.${id}: delete (no-op)`)),
        "shared-restart-12 @198.51.100.12: delete (no-op)",
        ...[4, 5, 6].map((id) => `kafka-main-split-arm-${id} @192.0.2.${id}: delete (no-op)`),
        "shared-configmap: update ConfigMap",
        "shared-service-12: update Service",
        "shared-statefulset: update StatefulSet",
        "shared-endpoints-12: left to Kubernetes (retainOnDelete)",
    ],
    "done / pods [11, 12, 13]": [
        // The firewall goes, once the sources run their S-only membership (deletes run last).
        "shared-decommission-13 @198.51.100.13: create",
        "kafka-main-firewall-4 @192.0.2.4: delete",
        "kafka-main-firewall-5 @192.0.2.5: delete",
        "kafka-main-firewall-6 @192.0.2.6: delete",
        "shared-restart-13 @198.51.100.13: delete (no-op)",
        "shared-configmap: update ConfigMap",
        "shared-service-13: update Service",
        "shared-statefulset: update StatefulSet",
        "shared-endpoints-13: left to Kubernetes (retainOnDelete)",
    ],
    "done / done [11, 12, 13]": [
    ],
};

describe("Pulumi.dev.yaml through every phase (mocks)", () => {
    const results: { label: string; run: FleetRun; state: Map<string, Recorded> }[] = [];

    it("declares each update and publishes the applied phase", async () => {
        let prev: FleetConfig | undefined;
        for (const u of updates) {
            const config = configOf(u);
            const run = await runFleet(config, prev ? appliedAfter(prev) : {}, leaders, controllers);
            const label = `${u.kafka} / ${u.shared}${u.shared === "pods" || u.shared === "done" ? ` [${u.cutover.join(", ")}]` : ""}`;
            results.push({ label, run, state: stateAfter(results[results.length - 1]?.state, run) });
            assert.equal(run.applied["kafka-main"].phase, u.kafka);
            assert.equal(run.applied.shared.phase, u.shared);
            assert.deepEqual(run.applied.shared.cutover, u.shared === "pods" || u.shared === "done" ? u.cutover : []);
            assert.equal(run.outputs["kafka-main"].appliedPhase, u.kafka);
            prev = config;
        }
        assert.equal(results.length, updates.length);
    });

    it("runs exactly the walkthrough: which commands on which host, in which order", () => {
        assert.deepEqual(Object.keys(walkthrough), results.map((r) => r.label));
        results.forEach(({ label, run }, i) => {
            assert.deepEqual(runs(results[i - 1]?.run, run, results[i - 1]?.state), walkthrough[label], label);
        });
    });

    it("restarts only servers whose membership (or running state) changed", () => {
        for (let i = 1; i < results.length; i++) {
            const { run } = results[i];
            const prevRun = results[i - 1].run;
            for (const child of run.fleet.ensembles.values()) {
                const planned = new Set(child.restartOrder.flatMap((g) => g.ids));
                for (const id of [...child.resources.keys()].filter((k) => k.startsWith("restart-")).map((k) => Number(k.slice("restart-".length)))) {
                    const name = `${child === run.fleet.ensembles.get("kafka-main") ? "kafka-main" : "shared"}-restart-${id}`;
                    const changed = !isFrozen(run, name) && results[i - 1].state.get(name)?.inputs.update !== run.byName.get(name)!.inputs.update;
                    assert.equal(changed, planned.has(id), `${results[i].label}: ${name} changed=${changed}, planned=${planned.has(id)}`);
                }
            }
        }
    });

    it("exposes the restart order of each update from the model", () => {
        const order = (label: string, ensemble: string) =>
            results.find((r) => r.label === label)!.run.fleet.ensembles.get(ensemble)!.restartOrder.map((g) => g.ids.join("+"));
        assert.deepEqual(order("joined / services", "kafka-main"), ["6", "4", "5", "1", "2", "3"]);
        assert.deepEqual(order("prepared / peers", "kafka-main"), []);
        assert.deepEqual(order("split / pods [11]", "kafka-main"), ["4+5+6"]);
        assert.deepEqual(order("source-restarted / pods [11, 12]", "kafka-main"), ["3", "2", "1"]);
        assert.deepEqual(order("prepared / peers", "shared"), ["11", "13", "12"]);
    });

    it("never wipes the migrated data: at the split the active targets restart without a wipe, the dormant one with", () => {
        const split = results.find((r) => r.label.startsWith("split"))!.run;
        const wipe = (id: number) => /readonly WIPE_DATA='?(true|false)/.exec(split.byName.get(`kafka-main-restart-${id}`)!.inputs.update)![1];
        assert.deepEqual([4, 5, 6].map(wipe), ["false", "false", "true"]);
        const joined = results.find((r) => r.label.startsWith("joined"))!.run;
        assert.match(joined.byName.get("kafka-main-restart-4")!.inputs.update, /readonly WIPE_DATA='?true/);
    });

    it("publishes old and new connect strings with the chroot, and switches them at `clients`", () => {
        const at = (label: string) => results.find((r) => r.label === label)!.run.outputs;
        const joined = at("joined / services");
        assert.equal(joined["kafka-main"].oldConnect, "192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka");
        assert.equal(joined["kafka-main"].newConnect, "192.0.2.4:2181,192.0.2.5:2181,192.0.2.6:2181/kafka");
        assert.equal(joined["kafka-main"].connect, joined["kafka-main"].oldConnect);
        assert.equal(at("clients / clients")["kafka-main"].connect, joined["kafka-main"].newConnect);
        assert.equal(
            at("clients / clients").shared.connect,
            "zk-shared-11.zookeeper.svc.cluster.local:2181,zk-shared-12.zookeeper.svc.cluster.local:2181,zk-shared-13.zookeeper.svc.cluster.local:2181",
        );
    });

    it("publishes a per-server summary: myid, address, membership, running", () => {
        const joined = results.find((r) => r.label === "joined / services")!.run.outputs["kafka-main"];
        const six = joined.servers.find((s: any) => s.myid === 6);
        assert.deepEqual(six, {
            myid: 6,
            role: "target",
            address: "192.0.2.6",
            location: "host",
            running: false,
            dormant: true,
            membership: ["server.4=192.0.2.4:2888:3888", "server.5=192.0.2.5:2888:3888", "server.6=192.0.2.6:2888:3888", "quorumListenOnAllIPs=false"],
            written: ["server.4=192.0.2.4:2888:3888", "server.5=192.0.2.5:2888:3888", "server.6=192.0.2.6:2888:3888", "quorumListenOnAllIPs=false"],
        });
        const one = joined.servers.find((s: any) => s.myid === 1);
        assert.equal(one.membership.length, 6); // 1..5 and the flag
    });

    it("parents every host command to its ensemble component (URN segments)", () => {
        const run = results[1].run;
        // (The mock monitor puts only the immediate parent's type into a URN.)
        assert.match(run.urns.get("kafka-main")!, /zkmigrate:index:Fleet\$zkmigrate:mitosis:Ensemble::kafka-main$/);
        assert.match(run.urns.get("shared")!, /zkmigrate:index:Fleet\$zkmigrate:kubernetes:Ensemble::shared$/);
        assert.match(run.urns.get("kafka-main-restart-4")!, /zkmigrate:mitosis:Ensemble\$command:remote:Command::kafka-main-restart-4$/);
        assert.match(run.urns.get("shared-restart-11")!, /zkmigrate:kubernetes:Ensemble\$command:remote:Command::shared-restart-11$/);
    });

    it("declares Kubernetes resources only for ensembles that need them", () => {
        const first = results[0].run;
        assert.equal(first.resources.filter((r) => r.type.startsWith("kubernetes:")).length, 0);
        const split = results.find((r) => r.label.startsWith("split"))!.run;
        assert.ok(split.resources.filter((r) => r.type.startsWith("kubernetes:")).every((r) => r.name.startsWith("shared-")));
    });

    it("keeps the SSH key secret: the connection is a secret, no script carries the key", () => {
        for (const res of results[1].run.resources.filter(isCommand)) {
            assert.equal(res.inputs.connection[SECRET_SIG], SECRET_VALUE, `${res.name}: connection is not a secret`);
            assert.equal(res.inputs.connection.value.privateKey, "test-key");
            for (const field of ["create", "update", "delete"]) {
                assert.ok(!String(res.inputs[field] ?? "").includes("test-key"), `${res.name}.${field} leaks the key`);
            }
        }
    });
});

