// Issue 12's classes, one case each: nothing reaches a host except a planned, ordered,
// quorum-checked step; the applied record says what each server runs; a wipe happens only when a
// server joins another ensemble; removal and abort; empty targets never a majority at the split.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { appliedIssues, appliedOf, ConfigError, loadConfig, parseApplied, validateTransitions, type AppliedState, type FleetConfig, type MitosisConfig } from "../../../src/config";
import { planEnsemble, planFleet } from "../../../src/model";
import { planTransition } from "../../../src/plan";
import { targetsTogether } from "../../../src/procedures/mitosis";
import type { Step } from "../../../src/steps";
import { devConfigAt, edited } from "../../fixtures";

const KNOWN = { "kafka-main": { leaders: [3], known: true } };
const at = (phase: string, edit: (r: any) => void = () => {}): FleetConfig => loadConfig(edited(devConfigAt({ "kafka-main": phase }), edit));
const mitosisOf = (f: FleetConfig) => f.ensembles.find((e) => e.name === "kafka-main") as MitosisConfig;
/** The applied record after a successful update of `f`. */
const appliedAfter = (f: FleetConfig): AppliedState => Object.fromEntries(f.ensembles.map((e) => [e.name, appliedOf(e)]));
const restarts = (steps: Step[]) => steps.filter((s): s is Extract<Step, { kind: "restart" }> => s.kind === "restart");
const kafka = (r: any) => r.ensembles.find((e: any) => e.name === "kafka-main");

describe("a setting edit at an unchanged phase", () => {
    const cases: [string, (r: any) => void, string[] | "none"][] = [
        // No restart needed: nothing runs; every step is frozen (its changed text is ignored).
        ["spacingSeconds", (r) => (kafka(r).spacingSeconds = 30), "none"],
        ["healthTimeoutSeconds", (r) => (kafka(r).healthTimeoutSeconds = 300), "none"],
        ["the service's restart command", (r) => (kafka(r).service = { restart: "systemctl restart zk" }), "none"],
        // What the servers run changes: a rolling restart of every running server, targets
        // first, followers, the leader last; never two at once.
        ["quorumListenOnAllIPs", (r) => (kafka(r).quorumListenOnAllIPs = true), ["4", "5", "1", "2", "3"]],
    ];
    for (const [what, edit, order] of cases) {
        it(`${what} at joined: ${order === "none" ? "no host runs anything" : "a rolling restart in the planned order"}`, () => {
            const before = at("joined");
            const after = at("joined", edit);
            const p = planFleet(after, appliedAfter(before), KNOWN).get("kafka-main")!;
            const commands = p.plan.steps.filter((s) => !("declare" in s));
            if (order === "none") {
                assert.deepEqual(p.plan.restartOrder, []);
                assert.ok(
                    commands.every((s) => s.frozen || s.kind === "broker"),
                    commands.filter((s) => !s.frozen).map((s) => s.id).join(", "),
                );
                assert.ok(commands.every((s) => !s.effect));
            } else {
                assert.deepEqual(p.plan.restartOrder.map((g) => g.ids.join("+")), order);
                // The active targets already hold the source's data: no wipe for a setting restart.
                for (const s of restarts(p.plan.steps)) assert.equal(s.wipeData, false, `restart-${s.server}`);
                // Each restart waits for the one before it.
                const chain = restarts(p.plan.steps).filter((s) => s.effect);
                chain.slice(1).forEach((s, i) => assert.ok(s.after.includes(`restart-${chain[i].server}`), `${s.id} waits for ${chain[i].id}`));
            }
        });
    }

    it("the peer port: refused, since no order keeps a quorum (restarted servers listen where the others do not look)", async () => {
        const { UnsafeFleetError } = await import("../../../src/model");
        assert.throws(
            () => planFleet(at("joined", (r) => (kafka(r).zookeeper = { peerPort: 2889 })), appliedAfter(at("joined")), KNOWN),
            (err: unknown) => err instanceof UnsafeFleetError && /reach no server in a quorum/.test(err.message),
        );
    });

    it("the first join wipes the active targets; a later restart of them does not", () => {
        const join = planEnsemble(mitosisOf(at("joined")), appliedAfter(at("separate")), KNOWN["kafka-main"]);
        assert.deepEqual(restarts(join.plan.steps).filter((s) => s.wipeData).map((s) => s.server), [4, 5]);
        const again = planEnsemble(mitosisOf(at("joined", (r) => (kafka(r).quorumListenOnAllIPs = true))), appliedAfter(at("joined")), KNOWN["kafka-main"]);
        assert.equal(again.plan.restartOrder.length, 5);
        assert.deepEqual(restarts(again.plan.steps).filter((s) => s.wipeData).map((s) => s.server), []);
    });
});

describe("configs are written by the restart that reads them", () => {
    it("no plan writes a config ahead of its restart; `prepared` writes nothing", () => {
        const phases = ["separate", "joined", "clients", "prepared", "split", "source-restarted", "done"];
        for (let i = 1; i < phases.length; i++) {
            const p = planEnsemble(mitosisOf(at(phases[i])), appliedAfter(at(phases[i - 1])), KNOWN["kafka-main"]);
            assert.ok(p.plan.steps.every((s) => (s.kind as string) !== "config-write"));
            const ran = new Set(p.current.servers.filter((x) => x.running).map((x) => x.id));
            for (const s of restarts(p.plan.steps).filter((x) => x.effect && x.running && ran.has(x.server))) {
                assert.ok(s.before, `${phases[i]}: ${s.id} names what it replaces`);
            }
            if (phases[i] === "prepared") assert.ok(p.plan.steps.every((s) => !s.effect), "prepared changes nothing");
        }
    });
});

describe("the applied record", () => {
    it("records what each server runs, and plans from it", () => {
        const a = appliedAfter(at("joined"));
        assert.deepEqual(Object.keys(a["kafka-main"].running!), ["1", "2", "3", "4", "5", "6"]);
        assert.equal(a["kafka-main"].running!["6"].running, false);
        assert.equal(a["kafka-main"].running!["1"].membership.members.length, 5);
        assert.deepEqual(parseApplied(JSON.parse(JSON.stringify(a))), a);
    });

    it("an entry it cannot read is refused by name, not taken for nothing applied", () => {
        const stored = { ...appliedAfter(at("joined")), other: { procedure: "reconfig-2030", phase: "x" } };
        assert.deepEqual(Object.keys(parseApplied(stored)), ["kafka-main", "shared"]);
        const issues = appliedIssues(stored);
        assert.equal(issues.length, 1);
        assert.equal(issues[0].path, "zkmigrate:ensembles[other]");
        assert.match(issues[0].reason, /cannot be read by this zkmigrate .*zkmigrate adopt/);
    });
});

describe("an ensemble removed from the config", () => {
    const without = (phase: string) => at(phase, (r) => (r.ensembles = r.ensembles.filter((e: any) => e.name !== "kafka-main")));
    const cases: [string, boolean][] = [
        ["separate", true],
        ["joined", false],
        ["split", false],
        ["source-restarted", false],
        ["done", true],
    ];
    for (const [phase, allowed] of cases) {
        it(`at ${phase}: ${allowed ? "allowed (its deletes change nothing)" : "refused with the way to abort"}`, () => {
            const issues = validateTransitions(without(phase).ensembles, appliedAfter(at(phase)));
            if (allowed) assert.deepEqual(issues, []);
            else {
                assert.equal(issues.length, 1);
                assert.equal(issues[0].path, "zkmigrate:ensembles");
                assert.match(issues[0].reason, new RegExp(`ensemble "kafka-main" \\(mitosis, applied at phase "${phase}"\\) was removed from the config: .*step it back to \`separate\``));
                assert.throws(() => planFleet(without(phase), appliedAfter(at(phase))), ConfigError);
            }
        });
    }
    it("an ensemble that fails the schema is not taken for removed", () => {
        const f = without("joined");
        assert.deepEqual(validateTransitions(f.ensembles, appliedAfter(at("joined")), ["kafka-main"]), []);
    });
});

describe("the abort joined -> separate", () => {
    it("runs no 'target empty' preflight, empties the targets, then the sources leave leader first", () => {
        const p = planEnsemble(mitosisOf(at("separate")), appliedAfter(at("joined")), KNOWN["kafka-main"]);
        assert.ok(p.plan.steps.every((s) => s.kind !== "preflight"));
        assert.deepEqual(p.plan.restartOrder.map((g) => g.ids.join("+")), ["4+5+6", "3", "2", "1"]);
        assert.deepEqual(restarts(p.plan.steps).filter((s) => s.wipeData).map((s) => s.server).sort(), [4, 5, 6]);
        assert.deepEqual(p.plan.windows.map((w) => `${w.group}@${w.steps?.join(",")}`), ["source-users@2", "migrating@2"]);
    });
});

describe("empty targets at the split", () => {
    const m = (n: number, targets: number, active: number[]): MitosisConfig => {
        const base = mitosisOf(at("prepared"));
        const target = Array.from({ length: targets }, (_, i) => ({ id: 11 + i, host: `192.0.2.${11 + i}` }));
        return { ...base, source: base.source.slice(0, n), target, active, dormant: target.map((t) => t.id).filter((id) => !active.includes(id)) };
    };
    const cases: [string, MitosisConfig, string[]][] = [
        ["2 active of 3: together", m(3, 3, [11, 12]), ["11+12+13"]],
        ["1 active of 3: one dormant with it, the other after", m(3, 3, [11]), ["11+12", "13"]],
        ["2 active of 5: one dormant with them, two after", m(5, 5, [11, 12]), ["11+12+13", "14+15"]],
    ];
    for (const [what, e, order] of cases) {
        it(what, () => {
            const targets = e.target.map((t) => ({ id: t.id, role: "target" }) as any);
            assert.deepEqual(targetsTogether(e, targets).map((g) => g.ids.join("+")), order);
        });
    }
    it("the check refuses all targets at once when the empty ones are a majority of T", async () => {
        const { desiredState } = await import("../../../src/model");
        const { simulate } = await import("../../../src/safety");
        const e = m(3, 3, [11]);
        const from = desiredState(e, "prepared");
        const to = desiredState(e, "split");
        const plan = planTransition(e, from, to, { leaders: [3], known: true });
        const merged = plan.steps.map((s) => (s.effect?.kind === "restart" ? { ...s, effect: { ...s.effect, group: { ids: [11, 12, 13], reason: "all" }, wiped: [12, 13] } } : s));
        const v = simulate(from, to, { ...plan, steps: merged });
        assert.ok(v.some((x) => /empty servers .* could elect the empty/.test(x.reason)), JSON.stringify(v));
        assert.deepEqual(simulate(from, to, plan), []);
    });
});
