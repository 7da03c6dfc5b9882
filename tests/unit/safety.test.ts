import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubernetesConfig, MitosisConfig } from "../../src/config";
import { desiredState, planEnsemble } from "../../src/model";
import { planTransition, UNKNOWN_LEADER, type LeaderInfo } from "../../src/plan";
import { KUBERNETES_PHASES } from "../../src/procedures/kubernetes";
import { MITOSIS_PHASES } from "../../src/procedures/mitosis";
import { effectsOf, type Effect, type MigrationPlan as Plan } from "../../src/steps";
import { simulate, UnsafePlanError } from "../../src/safety";
import type { DesiredState } from "../../src/types";
import { devFleet } from "../fixtures";

const fleet = devFleet();
const mitosis = fleet.ensembles.find((e) => e.procedure === "mitosis") as MitosisConfig;
const kube = fleet.ensembles.find((e) => e.procedure === "kubernetes") as KubernetesConfig;
const leaderIs = (...ids: number[]): LeaderInfo => ({ leaders: ids, known: true });

/** The plan's events: the effects of its steps, in order (one restart group is one event). */
const events = (p: Plan) => effectsOf(p.steps);
/** `plan` with `effects` as its events, each carried by a step of its own. */
const withEvents = (plan: Plan, effects: Effect[]): Plan => ({
    ...plan,
    steps: effects.map((effect, i) => ({ id: `test-${i}`, kind: "clients-connect", declare: false, after: [], effect })),
});

function step(e: MitosisConfig | KubernetesConfig, from: DesiredState, to: DesiredState, leader = leaderIs(3, 13)) {
    const plan = planTransition(e, from, to, leader);
    return { plan, violations: simulate(from, to, plan) };
}

describe("safe sequences of the seeds", () => {
    it("mitosis: separate -> joined -> clients -> prepared -> split -> source-restarted -> done", () => {
        const seen: string[] = [];
        for (let i = 1; i < MITOSIS_PHASES.length; i++) {
            const from = desiredState(mitosis, MITOSIS_PHASES[i - 1]);
            const to = desiredState(mitosis, MITOSIS_PHASES[i]);
            const { plan, violations } = step(mitosis, from, to);
            assert.deepEqual(violations, [], `${MITOSIS_PHASES[i]}: ${JSON.stringify(violations)}`);
            seen.push(`${MITOSIS_PHASES[i]}: ${plan.restartOrder.map((g) => g.ids.join("+")).join(" ")}`);
        }
        // The restart order of each phase, as the seed prescribes it.
        assert.deepEqual(seen, [
            "joined: 6 4 5 1 2 3", // dormant 6 stops, targets join, source followers, leader 3 last
            "clients: ",
            "prepared: ", // configs written, nothing restarted
            "split: 4+5+6", // all targets at once
            "source-restarted: 3 2 1", // no slack: the leader first, then it counts acks in S only
            "done: ",
        ]);
    });

    it("mitosis declares exactly the split window for the migrating clients and the no-slack window of the sources", () => {
        const split = step(mitosis, desiredState(mitosis, "prepared"), desiredState(mitosis, "split")).plan;
        assert.deepEqual(split.windows.map((w) => w.group), ["migrating"]);
        const restarted = step(mitosis, desiredState(mitosis, "split"), desiredState(mitosis, "source-restarted")).plan;
        assert.deepEqual(restarted.windows.map((w) => w.group), ["source-users"]);
        assert.match(restarted.warnings.join("\n"), /3 of 5 voters.*leaves 2 of 5/);
    });

    it("mitosis source-restarted without slack: the leader first; another leader first, then the highest myid", () => {
        const split = desiredState(mitosis, "split");
        const restarted = desiredState(mitosis, "source-restarted");
        const order = (leader: ReturnType<typeof leaderIs>) => planTransition(mitosis, split, restarted, leader).restartOrder.map((g) => g.ids.join("+"));
        assert.deepEqual(order(leaderIs(3)), ["3", "2", "1"]);
        assert.deepEqual(order(leaderIs(1)), ["1", "3", "2"]);
        const unknown = planTransition(mitosis, split, restarted, UNKNOWN_LEADER);
        assert.deepEqual(unknown.restartOrder.map((g) => g.ids.join("+")), ["3", "2", "1"]);
        assert.match(unknown.warnings.join("\n"), /restarting the highest myid \(3\) first/);
        assert.deepEqual(simulate(split, restarted, unknown), []);
    });

    it("mitosis with a 5-server source has slack after the split: no source window", () => {
        const five: MitosisConfig = {
            ...mitosis,
            source: [1, 2, 3, 7, 8].map((id) => ({ id, host: `192.0.2.${id}` })),
        };
        const { plan, violations } = step(five, desiredState(five, "split"), desiredState(five, "source-restarted"), leaderIs(8));
        assert.deepEqual(violations, []);
        assert.deepEqual(plan.windows, []);
    });

    it("kubernetes: hosts -> services -> clients -> peers -> pods (one server per update) -> done", () => {
        const seq: [string, number[]][] = [
            ["hosts", []],
            ["services", []],
            ["clients", []],
            ["peers", []],
            ["pods", [11]],
            ["pods", [11, 12]],
            ["pods", [11, 12, 13]],
            ["done", [11, 12, 13]],
        ];
        const seen: string[] = [];
        for (let i = 1; i < seq.length; i++) {
            const from = desiredState(kube, ...seq[i - 1]);
            const to = desiredState(kube, ...seq[i]);
            const { plan, violations } = step(kube, from, to, leaderIs(12));
            assert.deepEqual(violations, [], `${seq[i][0]} ${seq[i][1]}: ${JSON.stringify(violations)}`);
            seen.push(events(plan).map((s) => s.kind + (s.kind === "restart" ? `:${s.group.ids}` : s.kind === "cutover" ? `:${s.ids}` : "")).join(" "));
        }
        assert.deepEqual(seen, [
            "services-create",
            "clients-switch",
            "restart:11 restart:13 restart:12", // rolling, leader 12 last
            "cutover:11",
            "cutover:12",
            "cutover:13",
            "",
        ]);
    });
});

function unsafe(violations: ReturnType<typeof simulate>, pattern: RegExp) {
    assert.ok(violations.length > 0, "expected the plan to be refused");
    assert.match(violations.map((v) => v.reason).join("\n"), pattern);
}

describe("unsafe plans are refused", () => {
    it("two restarts at once", () => {
        const from = desiredState(kube, "clients");
        const to = desiredState(kube, "peers");
        const plan = planTransition(kube, from, to, leaderIs(12));
        const twoAtOnce = withEvents(plan, [{ kind: "restart", group: { ids: [11, 13], reason: "test" }, windows: [] }, ...events(plan).filter((s) => s.kind === "restart" && s.group.ids[0] === 12)]);
        unsafe(simulate(from, to, twoAtOnce), /clients clients .* reach no server in a quorum/);
    });

    it("all three targets active against a 3-node source", () => {
        const all: MitosisConfig = { ...mitosis, active: [4, 5, 6], dormant: [] };
        // Once a source follower runs the 6-voter joint membership, {1,4,5,6} is a majority of it
        // while {2,3} is a majority of the source's: two ensembles could form side by side. The
        // plan declares that window by name, and the check records where it is open.
        const { plan, violations } = step(all, desiredState(all, "separate"), desiredState(all, "joined"));
        assert.deepEqual(violations, []);
        const win = plan.windows.find((w) => w.kind === "split-brain");
        assert.ok(win, "the join declares its split-brain window");
        assert.deepEqual(win.steps, [4]);
        // Without the declaration the same plan is refused at the first source's restart.
        const undeclared = { ...plan, windows: [], steps: plan.steps.map((s) => (s.effect?.kind === "restart" ? { ...s, effect: { ...s.effect, windows: [] } } : s)) };
        const refused = simulate(desiredState(all, "separate"), desiredState(all, "joined"), undeclared);
        unsafe(refused, /can hold disjoint quorums of their own views while they still reach each other/);
        assert.equal(refused[0].moment, "1 restarted");
        // And at the split the source would hold 3 of 6 voters: no quorum of its own.
        const split = step(all, desiredState(all, "prepared"), desiredState(all, "split"));
        unsafe(split.violations, /source-users clients .* reach no server in a quorum/);
    });

    it("split before the clients phase", () => {
        const prepared = desiredState(mitosis, "prepared");
        const split = desiredState(mitosis, "split");
        // The same split, with the migrating clients still on the source.
        const early = (d: DesiredState): DesiredState => ({ ...d, clients: { ...d.clients, current: d.clients.old } });
        const { violations } = step(mitosis, early(prepared), early(split));
        unsafe(violations, /split while the migrating clients still use 192\.0\.2\.1:2181.*run the clients phase first/);
    });

    it("the split without its firewall: a target still on the joint membership serves the source's history", () => {
        const prepared = desiredState(mitosis, "prepared");
        const split = desiredState(mitosis, "split");
        const { plan } = step(mitosis, prepared, split);
        const noFirewall = { ...plan, steps: plan.steps.filter((s) => s.kind !== "firewall") };
        const violations = simulate(prepared, { ...split, firewall: [] }, noFirewall);
        // The targets restart in parallel: while 5 still follows the source leader, 4 and 6 can
        // elect their own, and the migrating clients reach both.
        unsafe(violations, /migrating clients reach both|can hold disjoint quorums/);
        assert.match(violations[0].moment, /runs its new config/);
    });

    it("a cutover of two servers at once", () => {
        const { violations } = step(kube, desiredState(kube, "pods", [11]), desiredState(kube, "pods", [11, 12, 13]), leaderIs(12));
        unsafe(violations, /hosts of 12 \+ 13 stopped|reach no server in a quorum/);
        assert.equal(violations[0].moment, "hosts of 12 + 13 stopped for the cutover");
    });

    it("peers phase before services", () => {
        // The peers' membership by Service names while no Service exists yet.
        const peers = desiredState(kube, "peers");
        const noServices: DesiredState = { ...peers, kubernetes: { ...peers.kubernetes!, services: false } };
        const { violations } = step(kube, desiredState(kube, "hosts"), noServices, leaderIs(12));
        unsafe(violations, /clients clients .* reach no server in a quorum: 11 sees 1 of 3 voters; 12 sees 1 of 3 voters; 13 stopped/);
    });

    it("peers on virtual addresses without quorumListenOnAllIPs", () => {
        const from = desiredState(kube, "clients");
        const peers = desiredState(kube, "peers");
        const noListen = (d: DesiredState): DesiredState => ({
            ...d,
            servers: d.servers.map((s) => ({ ...s, runningWith: { ...s.runningWith, quorumListenOnAllIPs: false } })),
        });
        unsafe(step(kube, from, noListen(peers), leaderIs(12)).violations, /cannot bind its election port/);
    });

    it("the source leader restarted while a follower is down (a rolling restart out of order)", () => {
        const from = desiredState(mitosis, "separate");
        const to = desiredState(mitosis, "joined");
        const plan = planTransition(mitosis, from, to, leaderIs(3));
        const parallel = withEvents(plan, [
            ...events(plan).filter((s) => s.kind === "restart" && s.group.ids.some((id) => id > 3)),
            { kind: "restart", group: { ids: [2, 3], reason: "test" }, windows: [] },
            { kind: "restart", group: { ids: [1], reason: "test" }, windows: [] },
        ]);
        unsafe(simulate(from, to, parallel), /source-users clients .* reach no server in a quorum/);
    });

    it("planEnsemble refuses an unsafe step with the ensemble, step and reason", () => {
        const all: MitosisConfig = { ...mitosis, active: [4, 5, 6], dormant: [], phase: "split" };
        assert.throws(
            () => planEnsemble(all, { "kafka-main": { procedure: "mitosis", phase: "prepared", cutover: [], servers: [1, 2, 3, 4, 5, 6] } }),
            (err: unknown) => err instanceof UnsafePlanError && /unsafe plan for ensemble "kafka-main":\n  - step 1 \(firewall applied\)/.test(err.message),
        );
    });
});

describe("plans cover every phase of both tables", () => {
    it("every adjacent pair of phases plans and simulates clean in both directions where the seeds allow", () => {
        for (const phases of [MITOSIS_PHASES, KUBERNETES_PHASES] as const) {
            assert.ok(phases.length >= 6);
        }
        // Stepping back from `joined` to `separate` (an aborted join) is safe: the targets leave
        // together (and start empty), then the sources, leader first (no slack without the targets).
        const back = step(mitosis, desiredState(mitosis, "joined"), desiredState(mitosis, "separate"));
        assert.deepEqual(back.violations, []);
        assert.deepEqual(back.plan.restartOrder.map((g) => g.ids.join("+")), ["4+5+6", "3", "2", "1"]);
        // Stepping back from `split` to `prepared` is not: the targets would rejoin behind the firewall.
        const undoSplit = step(mitosis, desiredState(mitosis, "split"), desiredState(mitosis, "prepared"));
        assert.ok(undoSplit.violations.length > 0);
    });
});
