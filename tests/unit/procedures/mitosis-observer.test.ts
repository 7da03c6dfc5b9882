// The observer join (`joinAs: observer`): its phase table, its plans (only targets restart; the
// sources never), the safety check of every step, the config's refusals and the rule that the
// join never changes mid-migration.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { appliedOf, ConfigError, loadConfig, validateTransitions, type MitosisConfig } from "../../../src/config";
import { desiredState, planEnsemble } from "../../../src/model";
import { planTransition } from "../../../src/plan";
import { MITOSIS_PHASES } from "../../../src/procedures/mitosis";
import { procedureOf } from "../../../src/procedures/registry";
import { simulate } from "../../../src/safety";
import { serverLine } from "../../../src/format/zoo-cfg";
import { devRawConfig, edited } from "../../fixtures";

const raw = (edit: (e: any) => void = () => undefined) =>
    edited(devRawConfig(), (r) => {
        const e = r.ensembles.find((x: any) => x.procedure === "mitosis");
        delete e.activeTargets;
        e.joinAs = "observer";
        edit(e);
    });
const observerAt = (phase: string) => loadConfig(raw((e) => (e.phase = phase))).ensembles.find((e) => e.procedure === "mitosis") as MitosisConfig;
const leader = { leaders: [3], known: true };

describe("mitosis with the observer join: phase table", () => {
    const e = observerAt("separate");
    const lines = (phase: string, id: number) => desiredState(e, phase).servers.find((s) => s.id === id)!.runningWith.members.map(serverLine);

    it("dispatches to its own room, with the mitosis phases and component", () => {
        assert.equal(e.joinAs, "observer");
        assert.notEqual(procedureOf(e), procedureOf("mitosis"));
        assert.deepEqual(procedureOf(e).phases, MITOSIS_PHASES);
        assert.deepEqual(e.active, e.target.map((t) => t.id), "every target joins: none is dormant");
    });

    it("targets run S + every target as an observer from joined to prepared; the sources run S throughout", () => {
        for (const phase of ["joined", "clients", "prepared"]) {
            for (const t of e.target) {
                const l = lines(phase, t.id);
                assert.equal(l.filter((x) => x.endsWith(":observer")).length, e.target.length, `${phase}: ${l}`);
                assert.equal(l.length, e.source.length + e.target.length);
            }
        }
        for (const phase of MITOSIS_PHASES) for (const s of e.source) assert.ok(lines(phase, s.id).every((x) => !x.endsWith(":observer")) && lines(phase, s.id).length === e.source.length, `${phase}: source ${s.id} runs S`);
        for (const phase of ["split", "source-restarted", "done"]) for (const t of e.target) assert.equal(lines(phase, t.id).length, e.target.length);
        assert.ok(MITOSIS_PHASES.every((p) => desiredState(e, p).servers.every((s) => s.running && !s.dormant)));
    });

    it("the split's firewall sits on the source hosts, from split to source-restarted", () => {
        for (const phase of MITOSIS_PHASES) {
            const fw = desiredState(e, phase).firewall;
            if (phase === "split" || phase === "source-restarted") {
                assert.deepEqual(fw.map((f) => f.id), e.source.map((s) => s.id), phase);
                assert.deepEqual(fw[0].peers, e.target.map((t) => t.host));
            } else assert.deepEqual(fw, [], phase);
        }
    });
});

describe("mitosis with the observer join: plans and their safety", () => {
    it("every step forward restarts only targets, and the safety check finds no violation and no declared election", () => {
        const seen: string[] = [];
        for (let i = 1; i < MITOSIS_PHASES.length; i++) {
            const e = observerAt(MITOSIS_PHASES[i]);
            const from = desiredState(e, MITOSIS_PHASES[i - 1]);
            const to = desiredState(e, MITOSIS_PHASES[i]);
            const plan = planTransition(e, from, to, leader);
            assert.deepEqual(simulate(from, to, plan), [], MITOSIS_PHASES[i]);
            assert.ok(plan.restartOrder.every((g) => g.ids.every((id) => e.target.some((t) => t.id === id))), `${MITOSIS_PHASES[i]}: only targets restart`);
            assert.ok(!plan.windows.some((w) => w.kind === "split-brain" || w.kind === "election"), `${MITOSIS_PHASES[i]}: no split-brain or election window`);
            seen.push(`${MITOSIS_PHASES[i]}: ${plan.restartOrder.map((g) => g.ids.join("+")).join(" ") || "-"}`);
        }
        assert.deepEqual(seen, ["joined: 4 5 6", "clients: -", "prepared: -", "split: 4+5+6", "source-restarted: -", "done: -"]);
    });

    it("the split's dead man's switch takes the configured splitDeadmanSeconds", () => {
        const c = loadConfig(raw((x) => ((x.phase = "split"), (x.splitDeadmanSeconds = 900)))).ensembles.find((x) => x.procedure === "mitosis") as MitosisConfig;
        const plan = planTransition(c, desiredState(c, "prepared"), desiredState(c, "split"), leader);
        const arms = plan.steps.filter((s) => s.kind === "split-arm");
        assert.ok(arms.length > 0, "the split arms a switch");
        for (const a of arms) assert.equal(a.kind === "split-arm" && a.deadman.seconds, 900, a.id);
    });

    it("the abort (joined -> separate): the targets leave together, data moved aside; safe", () => {
        const e = observerAt("separate");
        const from = desiredState(e, "joined");
        const to = desiredState(e, "separate");
        const plan = planTransition(e, from, to, leader);
        assert.deepEqual(plan.restartOrder.map((g) => g.ids), [[4, 5, 6]]);
        const restarts = plan.steps.filter((s) => s.kind === "restart" && s.effect);
        assert.ok(restarts.every((s) => s.kind === "restart" && s.wipeData));
        assert.deepEqual(simulate(from, to, plan), []);
    });

    it("a split without its firewall is refused: a target still observing the source serves the migrating clients beside T's leader", () => {
        const e = observerAt("split");
        const from = desiredState(e, "prepared");
        const to = { ...desiredState(e, "split"), firewall: [] };
        const plan = planTransition(e, from, to, leader);
        const v = simulate(from, to, plan);
        assert.ok(v.some((x) => /migrating clients reach both/.test(x.reason)), JSON.stringify(v));
    });

    it("the targets join one at a time, each gated on serving (synced) before the next leaves T", () => {
        const e = observerAt("joined");
        const plan = planEnsemble(e, { [e.name]: appliedOf(observerAt("separate")) }, leader).plan;
        assert.deepEqual(plan.restartOrder.map((g) => g.reason), ["target joins as an observer", "target joins as an observer", "target joins as an observer"]);
        const preflights = plan.steps.filter((s) => s.kind === "preflight");
        assert.equal(preflights.length, 0, "joined has no preflight");
    });

    it("prepared's preflight accepts the planned observers; the sources check iptables and no leftover chain (the split's rules go there)", () => {
        const e = observerAt("prepared");
        const plan = planEnsemble(e, { [e.name]: appliedOf(observerAt("clients")) }, leader).plan;
        for (const s of plan.steps) {
            if (s.kind !== "preflight") continue;
            assert.deepEqual(s.check.observers?.ids, [4, 5, 6]);
            assert.equal(s.check.observers?.observer, s.server >= 4);
            if (s.server <= 3) assert.ok(s.check.requireCommands.includes("iptables") && s.check.noLeftoverSplit);
        }
    });
});

describe("mitosis with the observer join: config", () => {
    it("refuses activeTargets, naming the path", () => {
        assert.throws(
            () => loadConfig(raw((e) => (e.activeTargets = [4]))),
            (err: unknown) => err instanceof ConfigError && /zkmigrate:ensembles\[kafka-main\]\.activeTargets: joinAs: observer joins every target/.test(err.message),
        );
    });

    it("refuses an unknown join, naming the path", () => {
        assert.throws(() => loadConfig(raw((e) => (e.joinAs = "learner"))), (err: unknown) => err instanceof ConfigError && /joinAs/.test(err.message));
    });

    it("records the join, and never switches it mid-migration", () => {
        const obs = observerAt("clients");
        const applied = { [obs.name]: appliedOf(observerAt("joined")) };
        assert.equal(applied[obs.name].joinAs, "observer");
        assert.deepEqual(validateTransitions([obs], applied), []);
        // The same ensemble with the voter join (explicit, or the default) is refused at joinAs.
        const voterRaw = edited(devRawConfig(), (r) => {
            const e = r.ensembles.find((x: any) => x.procedure === "mitosis");
            e.phase = "clients";
        });
        const voter = loadConfig(voterRaw).ensembles.find((e) => e.procedure === "mitosis") as MitosisConfig;
        const issues = validateTransitions([voter], applied);
        assert.equal(issues.length, 1, JSON.stringify(issues));
        assert.equal(issues[0].path, "zkmigrate:ensembles[kafka-main].joinAs");
        assert.match(issues[0].reason, /the targets joined as observers \(applied phase "joined"\).*set joinAs: observer/);
    });

    it("reads the join of a record without it from what the servers run; a record without fingerprints joined as voters", () => {
        const obs = observerAt("clients");
        const { joinAs: _, ...noJoin } = appliedOf(observerAt("joined"));
        assert.match(validateTransitions([{ ...obs, joinAs: "voter" }], { [obs.name]: noJoin })[0]?.reason ?? "", /joined as observers/);
        const { running: __, ...old } = noJoin;
        const issues = validateTransitions([obs], { [obs.name]: old });
        assert.match(issues[0]?.reason ?? "", /the targets joined as voters .*set joinAs: voter/);
        // At separate the join is free to choose.
        assert.deepEqual(validateTransitions([observerAt("separate")], { [obs.name]: { ...old, phase: "separate" } }), []);
    });

    it("records membershipChange, and never switches it mid-migration (either way); at separate it is free", () => {
        const obs = observerAt("clients");
        const applied = { [obs.name]: appliedOf(observerAt("joined")) };
        assert.equal(applied[obs.name].membershipChange, "restart");
        const toReconfig = validateTransitions([{ ...obs, membershipChange: "reconfig" }], applied);
        assert.equal(toReconfig.length, 1, JSON.stringify(toReconfig));
        assert.equal(toReconfig[0].path, "zkmigrate:ensembles[kafka-main].membershipChange");
        assert.match(toReconfig[0].reason, /runs with membershipChange: restart \(applied phase "joined"\); it cannot change mid-migration.*set membershipChange: restart/);
        const fromReconfig = validateTransitions([obs], { [obs.name]: { ...applied[obs.name], membershipChange: "reconfig" as const } });
        assert.match(fromReconfig[0]?.reason ?? "", /runs with membershipChange: reconfig .*already changed their membership by reconfig/);
        // An older record (no membershipChange) ran the restart room, the only one there was.
        const { membershipChange: _, ...old } = applied[obs.name];
        assert.deepEqual(validateTransitions([obs], { [obs.name]: old }), []);
        assert.equal(validateTransitions([{ ...obs, membershipChange: "reconfig" }], { [obs.name]: old }).length, 1);
        assert.deepEqual(validateTransitions([{ ...observerAt("separate"), membershipChange: "reconfig" }], { [obs.name]: { ...old, phase: "separate" } }), []);
    });

    it("refuses the step back from split (the targets' own writes would be lost)", () => {
        const e = observerAt("prepared");
        const issues = validateTransitions([e], { [e.name]: appliedOf(observerAt("split")) });
        assert.match(issues.map((i) => `${i.path}: ${i.reason}`).join("\n"), /\.phase: back from "split" is refused with joinAs: observer/);
    });
});
