// Stack policies on the resources the real program declares for Pulumi.dev.yaml (tests/policy/
// program.ts): every step of the walkthrough passes every policy; then one thing changed per case,
// with the exact violation message.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import {
    zkmigratePolicies,
    zookeeperEndpointsHaveService,
    zookeeperFirewallOnlyWhenSplit,
    zookeeperOneCutoverPerUpdate,
    zookeeperQuorumSafeMemberships,
    zookeeperRestartsOneAtATime,
    zookeeperStatefulSetPdb,
    type StackValidationPolicy,
} from "../../policy/policies";
import { asRemoteCommand, renderStop } from "../../src/scripts";
import { devFleet } from "../fixtures";
import { runStackPolicy, stackArgs, UNKNOWN_OBJECT, UNKNOWN_STRING, type StackResourceSpec } from "./harness";
import { editSpec, programStack, walkthroughPairs, WALKTHROUGH, type Step } from "./program";

const at = (kafka: string, shared: string, cutover: number[] = []): Step => ({ kafka, shared, cutover });
const step = (i: number) => WALKTHROUGH[i];

/** The stacks of the walkthrough, by the index of the step. */
const stacks: StackResourceSpec[][] = [];
before(async () => {
    for (const { step, previous } of walkthroughPairs()) stacks.push((await programStack(step, previous)).specs);
});
const JOINED = 1;
const SERVICES = 1;
const PREPARED = 3;
const SPLIT = 4;
const PODS_11 = 4;
const PODS_11_12 = 5;

const run = (policy: StackValidationPolicy, specs: StackResourceSpec[], config?: Record<string, unknown>) => runStackPolicy(policy, stackArgs(specs, config));

/** A restart script that leaves the server with `lines` (server.N=... and quorumListenOnAllIPs=...). */
function expecting(script: string, lines: string[]): string {
    const replaced = script.replace(/^readonly -a EXPECTED_MEMBERSHIP=\(.*\)$/m, `readonly -a EXPECTED_MEMBERSHIP=(${lines.map((l) => `'${l}'`).join(" ")})`);
    assert.notEqual(replaced, script);
    return replaced;
}
const stopScript = () => asRemoteCommand(renderStop({ host: devFleet().ensembles[0].host, disable: false }));
const drop = (specs: StackResourceSpec[], names: string[]) => specs.filter((s) => !names.includes(s.name)).map((s) => ({ ...s, dependsOn: s.dependsOn?.filter((d) => !names.includes(d)) }));

describe("the program's own stacks pass every stack policy", () => {
    for (const [i, u] of WALKTHROUGH.entries()) {
        it(`step ${i + 1}: kafka-main ${u.kafka}, shared ${u.shared} [${u.cutover.join(", ")}]`, async () => {
            for (const p of zkmigratePolicies()) {
                if (!("validateStack" in p)) continue;
                assert.deepEqual(await run(p, stacks[i]), [], p.name);
            }
        });
    }
});

describe("the observer join's stacks pass every stack policy (issue 13)", () => {
    for (const { step: u, previous } of walkthroughPairs()) {
        it(`kafka-main ${u.kafka} with joinAs: observer, shared ${u.shared}`, async () => {
            const specs = (await programStack(u, previous, { observer: true })).specs;
            for (const p of zkmigratePolicies()) {
                if (!("validateStack" in p)) continue;
                assert.deepEqual(await run(p, specs), [], p.name);
            }
        });
    }
});

describe("zookeeper-endpoints-have-service", () => {
    const policy = zookeeperEndpointsHaveService();
    it("refuses Endpoints whose Service is gone", async () => {
        assert.deepEqual(await run(policy, drop(stacks[SERVICES], ["shared-service-12"])), [
            'Endpoints "zk-shared-12" in namespace "zookeeper" has no Service of the same name: nothing routes to its addresses',
        ]);
    });
    it("refuses a Service of that name in another namespace", async () => {
        const specs = editSpec(stacks[SERVICES], "shared-service-13", (s) => ((s.props.metadata as any).namespace = "kafka"));
        assert.deepEqual(await run(policy, specs), ['Endpoints "zk-shared-13" in namespace "zookeeper" has no Service of the same name: nothing routes to its addresses']);
    });
    it("skips names unknown at preview", async () => {
        const specs = editSpec(drop(stacks[SERVICES], ["shared-service-12"]), "shared-endpoints-12", (s) => ((s.props.metadata as any).name = UNKNOWN_STRING));
        assert.deepEqual(await run(policy, specs), []);
    });
});

describe("zookeeper-statefulset-pdb", () => {
    const policy = zookeeperStatefulSetPdb();
    it("refuses a StatefulSet without a PDB", async () => {
        assert.deepEqual(await run(policy, drop(stacks[PODS_11], ["shared-pdb"])), [
            'ZooKeeper StatefulSet "zk-shared" has no PodDisruptionBudget selecting its pods: a node drain could evict several servers at once',
        ]);
    });
    it("refuses maxUnavailable other than 1", async () => {
        const specs = editSpec(stacks[PODS_11], "shared-pdb", (s) => ((s.props.spec as any).maxUnavailable = 2));
        assert.deepEqual(await run(policy, specs), ['PodDisruptionBudget "zk-shared-pdb" of ZooKeeper StatefulSet "zk-shared" has maxUnavailable 2: it must be maxUnavailable 1']);
    });
    it("refuses minAvailable in place of maxUnavailable", async () => {
        const specs = editSpec(stacks[PODS_11], "shared-pdb", (s) => {
            const spec = s.props.spec as any;
            delete spec.maxUnavailable;
            spec.minAvailable = 2;
        });
        assert.deepEqual(await run(policy, specs), [
            'PodDisruptionBudget "zk-shared-pdb" of ZooKeeper StatefulSet "zk-shared" has minAvailable 2 and no maxUnavailable: it must be maxUnavailable 1',
        ]);
    });
    it("refuses a PDB that selects other pods", async () => {
        const specs = editSpec(stacks[PODS_11], "shared-pdb", (s) => ((s.props.spec as any).selector.matchLabels = { app: "kafka" }));
        assert.deepEqual(await run(policy, specs), [
            'ZooKeeper StatefulSet "zk-shared" has no PodDisruptionBudget selecting its pods: a node drain could evict several servers at once',
        ]);
    });
    it("skips a selector unknown at preview", async () => {
        const specs = editSpec(stacks[PODS_11], "shared-pdb", (s) => ((s.props.spec as any).selector = UNKNOWN_OBJECT));
        assert.deepEqual(await run(policy, specs), []);
    });
});

describe("zookeeper-restarts-one-at-a-time", () => {
    const policy = zookeeperRestartsOneAtATime();
    it("refuses a restart that does not wait for the one before it", async () => {
        // joined: 6 stops, 4, 5 join, followers 1, 2, the leader 3 last.
        const specs = editSpec(stacks[JOINED], "kafka-main-restart-2", (s) => (s.dependsOn = s.dependsOn!.filter((d) => d !== "kafka-main-restart-1")));
        assert.deepEqual(await run(policy, specs), [
            'ensemble "kafka-main": the restart of 2 does not depend on the restart of 1 before it (kafka-main-restart-1): the two can run at once',
        ]);
    });
    it("follows the chain through other resources", async () => {
        // 2 waits for 1 through another resource: still one at a time.
        let specs = editSpec(stacks[JOINED], "kafka-main-restart-2", (s) => (s.dependsOn = [...s.dependsOn!.filter((d) => d !== "kafka-main-restart-1"), "kafka-main-kafka-broker-22"]));
        specs = editSpec(specs, "kafka-main-kafka-broker-22", (s) => (s.dependsOn = ["kafka-main-restart-1"]));
        assert.deepEqual(await run(policy, specs), []);
    });
    it("refuses two sources restarted together", async () => {
        const specs = editSpec(stacks[JOINED], "zkmigrate-dev", (s) => {
            const order = (s.props as any).ensembles["kafka-main"].restartOrder as string[];
            order.splice(3, 2, "1+2: followers");
        });
        assert.deepEqual(await run(policy, specs), [
            'ensemble "kafka-main": restarts of 1, 2 run at once; only the split\'s restart of all targets behind the firewall may (1+2: followers)',
        ]);
    });
    it("refuses a split restart that does not wait for every firewall", async () => {
        const specs = editSpec(stacks[SPLIT], "kafka-main-restart-5", (s) => (s.dependsOn = ["kafka-main-firewall-4"]));
        assert.deepEqual(await run(policy, specs), ['ensemble "kafka-main": the split restart of 5 does not wait for the firewall split (kafka-main-firewall-5, kafka-main-firewall-6)']);
    });
    it("refuses the targets restarted together without the firewall", async () => {
        const specs = drop(stacks[SPLIT], ["kafka-main-firewall-4", "kafka-main-firewall-5", "kafka-main-firewall-6"]);
        assert.deepEqual(await run(policy, specs), [
            'ensemble "kafka-main": restarts of 4, 5, 6 run at once; only the split\'s restart of all targets behind the firewall may (4+5+6: all targets at once, dormant ones included: behind the firewall they elect their own leader)',
        ]);
    });
    it("refuses an order that names a server without a restart resource", async () => {
        assert.deepEqual(await run(policy, drop(stacks[JOINED], ["kafka-main-restart-4"])), ['ensemble "kafka-main": the restart order names 4, which has no restart resource']);
    });
    it("refuses a stack that does not publish its restart order", async () => {
        const specs = editSpec(stacks[JOINED], "zkmigrate-dev", (s) => delete (s.props as any).ensembles["kafka-main"].restartOrder);
        assert.deepEqual(await run(policy, specs), [
            'ensemble "kafka-main": the stack publishes no restart order (output ensembles.kafka-main.restartOrder as "<myid>[+<myid>...]: <reason>"), so its restart chain cannot be checked',
        ]);
    });
    it("skips an order unknown at preview", async () => {
        const specs = editSpec(stacks[JOINED], "zkmigrate-dev", (s) => ((s.props as any).ensembles["kafka-main"].restartOrder = UNKNOWN_OBJECT));
        assert.deepEqual(await run(policy, editSpec(specs, "kafka-main-restart-2", (s) => (s.dependsOn = []))), []);
    });
});

describe("zookeeper-firewall-only-when-split", () => {
    const policy = zookeeperFirewallOnlyWhenSplit();
    it("refuses a firewall before the split", async () => {
        const firewall = stacks[SPLIT].find((s) => s.name === "kafka-main-firewall-4")!;
        const specs = [...stacks[PREPARED], structuredClone(firewall)];
        assert.deepEqual(await run(policy, specs), [
            'ensemble "kafka-main": firewall split on 4 exists before the split (no target runs without the sources yet): it would cut the joint ensemble apart',
        ]);
    });
    it("refuses a split with a target left unprotected", async () => {
        assert.deepEqual(await run(policy, drop(stacks[SPLIT], ["kafka-main-firewall-5"])), [
            'ensemble "kafka-main" is split (targets 4, 5, 6 run their own membership) while sources 1, 2, 3 still list targets, but target 5 has no firewall split',
        ]);
    });
    it("refuses a firewall that leaves a source reachable", async () => {
        const specs = editSpec(stacks[SPLIT], "kafka-main-firewall-6", (s) => (s.props.create = String(s.props.create).replace(" '192.0.2.2'", "")));
        assert.deepEqual(await run(policy, specs), ['ensemble "kafka-main": the firewall split on target 6 does not cut off source 2 (192.0.2.2)']);
    });
    it("refuses a firewall in a kubernetes ensemble", async () => {
        const firewall = structuredClone(stacks[SPLIT].find((s) => s.name === "kafka-main-firewall-4")!);
        const specs = [...stacks[PODS_11], { ...firewall, name: "shared-firewall-12", parent: "shared", dependsOn: [] }];
        assert.deepEqual(await run(policy, specs), ['ensemble "shared" (kubernetes) has a firewall split on 12: no phase of the kubernetes procedure cuts servers apart']);
    });
    it("skips memberships unknown at preview", async () => {
        const specs = editSpec(drop(stacks[SPLIT], ["kafka-main-firewall-5"]), "kafka-main-restart-1", (s) => (s.props.update = UNKNOWN_STRING));
        assert.deepEqual(await run(policy, specs), []);
    });
});

describe("zookeeper-one-cutover-per-update", () => {
    const policy = zookeeperOneCutoverPerUpdate();
    const appliedBefore = (specs: StackResourceSpec[], cutover: number[]) =>
        editSpec(specs, "zkmigrate-applied", (s) => ((s.props as any).outputs.applied.shared.cutover = cutover));
    it("refuses two servers cut over in one update", async () => {
        assert.deepEqual(await run(policy, appliedBefore(stacks[PODS_11_12], [])), [
            'ensemble "shared" cuts over 2 servers in one update (11, 12; applied before: none): move at most 1 per update',
        ]);
    });
    it("takes the limit from config", async () => {
        assert.deepEqual(await run(policy, appliedBefore(stacks[PODS_11_12], []), { maxCutoversPerUpdate: 2 }), []);
    });
    it("skips what was applied when it is unknown at preview", async () => {
        const specs = editSpec(stacks[PODS_11_12], "zkmigrate-applied", (s) => ((s.props as any).outputs = UNKNOWN_OBJECT));
        assert.deepEqual(await run(policy, specs), []);
    });
});

describe("zookeeper-quorum-safe-memberships", () => {
    const policy = zookeeperQuorumSafeMemberships();
    it("refuses memberships that leave the source without a quorum", async () => {
        // joined: 1, 2 and 4 rendered as stopped leave 3 and 5, two of the five voters of the joint membership.
        let specs = editSpec(stacks[JOINED], "kafka-main-restart-1", (s) => (s.props.update = stopScript()));
        specs = editSpec(specs, "kafka-main-restart-2", (s) => (s.props.update = stopScript()));
        specs = editSpec(specs, "kafka-main-restart-4", (s) => (s.props.update = stopScript()));
        assert.deepEqual(await run(policy, specs), [
            'ensemble "kafka-main": the memberships its resources render are not quorum-safe: source-users clients (192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka) reach no server in a quorum: 1 stopped; 2 stopped; 3 sees 2 of 5 voters; 4 stopped; 5 sees 2 of 5 voters; 6 stopped',
            'ensemble "kafka-main": the memberships its resources render are not quorum-safe: migrating clients (192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka) reach no server in a quorum: 1 stopped; 2 stopped; 3 sees 2 of 5 voters; 4 stopped; 5 sees 2 of 5 voters; 6 stopped',
        ]);
    });
    it("refuses two majorities that can reach each other (sources left on S beside the joint membership)", async () => {
        // joined, with 2 and 3 rendered on S: {1,4,5} is a majority of S+T' and {2,3} one of S,
        // and 1 talks with both. (A split's end state without its firewall passes: the targets on
        // T list no source, so no vote crosses; the restarts that lead there are refused above.)
        const s3 = ["server.1=192.0.2.1:2888:3888", "server.2=192.0.2.2:2888:3888", "server.3=192.0.2.3:2888:3888", "quorumListenOnAllIPs=false"];
        let specs = stacks[JOINED];
        for (const id of [2, 3]) specs = editSpec(specs, `kafka-main-restart-${id}`, (s) => (s.props.update = expecting(String(s.props.update), s3)));
        const out = await run(policy, specs);
        assert.ok(out.length > 0);
        assert.ok(
            out.every((m) => m.startsWith('ensemble "kafka-main": the memberships its resources render are not quorum-safe: servers of {') && m.includes("can hold disjoint quorums")),
            out.join("\n"),
        );
    });
    it("refuses memberships that name two of three sources at addresses they do not have", async () => {
        // separate: 2 and 3 are listed at addresses that are not theirs, so neither can bind its
        // election port, and 1 is alone (the empty targets run on their own).
        const lines = ["server.1=192.0.2.1:2888:3888", "server.2=192.0.2.98:2888:3888", "server.3=192.0.2.99:2888:3888", "quorumListenOnAllIPs=false"];
        let specs = stacks[0];
        for (const id of [1, 2, 3]) specs = editSpec(specs, `kafka-main-restart-${id}`, (s) => (s.props.update = expecting(String(s.props.update), lines)));
        assert.deepEqual(await run(policy, specs), [
            'ensemble "kafka-main": the memberships its resources render are not quorum-safe: source-users clients (192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka) reach no server in a quorum: 1 sees 1 of 3 voters; 2 cannot bind its election port (virtual address without quorumListenOnAllIPs); 3 cannot bind its election port (virtual address without quorumListenOnAllIPs); 4 sees 3 of 3 voters; 5 sees 3 of 3 voters; 6 sees 3 of 3 voters',
            'ensemble "kafka-main": the memberships its resources render are not quorum-safe: migrating clients (192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka) reach no server in a quorum: 1 sees 1 of 3 voters; 2 cannot bind its election port (virtual address without quorumListenOnAllIPs); 3 cannot bind its election port (virtual address without quorumListenOnAllIPs); 4 sees 3 of 3 voters; 5 sees 3 of 3 voters; 6 sees 3 of 3 voters',
        ]);
    });
    it("skips an ensemble whose memberships are unknown at preview", async () => {
        let specs = editSpec(stacks[JOINED], "kafka-main-restart-1", (s) => (s.props.update = stopScript()));
        specs = editSpec(specs, "kafka-main-restart-2", (s) => (s.props.update = stopScript()));
        specs = editSpec(specs, "kafka-main-restart-4", (s) => (s.props.update = stopScript()));
        specs = editSpec(specs, "kafka-main-restart-5", (s) => (s.props.update = UNKNOWN_STRING));
        assert.deepEqual(await run(policy, specs), []);
    });
    it("judges a stack built from scratch for one phase the same way", async () => {
        const { specs } = await programStack(at("joined", "services"), step(0));
        assert.deepEqual(await run(policy, specs), []);
    });
});
