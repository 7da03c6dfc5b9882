// Mitosis by dynamic reconfig (src/procedures/mitosis-reconfig.ts): the phase table, the plans of
// every step (no source ever restarts), the scripts the steps render, the dispatch by
// `membershipChange`, the config checks and the check's model of a reconfig.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { appliedOf, checkConfig, loadConfig, type AppliedState, type RawConfig } from "../../../src/config";
import { desiredState, planEnsemble } from "../../../src/model";
import { describePlan } from "../../../src/plan";
import { procedureOf } from "../../../src/procedures/registry";
import { mitosisReconfig } from "../../../src/procedures/mitosis-reconfig";
import { commandsOf, isCommandStep } from "../../../src/scripts";
import { AUTH_PLACEHOLDER, dynamicLine, renderReconfigChange, seedFile, withAuth } from "../../../src/scripts/reconfig";
import { reconfigGuard } from "../../../src/reconfig-guard";
import { simulate } from "../../../src/safety";
import type { MigrationPlan } from "../../../src/steps";
import { TEST_SSH } from "../../fixtures";

const PHASES = ["separate", "joined", "clients", "prepared", "split", "source-restarted", "done"];

function raw(phase: string, extra: Record<string, unknown> = {}, top: Partial<RawConfig> = {}): RawConfig {
    return {
        ...TEST_SSH,
        reconfigAuth: "super:secret",
        ...top,
        ensembles: [
            {
                name: "kafka-main",
                procedure: "mitosis",
                membershipChange: "reconfig",
                phase,
                targetEmpty: true,
                source: [1, 2, 3].map((id) => ({ id, host: `192.0.2.${id}` })),
                target: [4, 5, 6].map((id) => ({ id, host: `192.0.2.${id}` })),
                zookeeper: { cli: "/opt/zk/bin/zkCli.sh" },
                // The participant join (dormant target 6); the default, observers, is tested on its own below.
                joinAs: "voter",
                ...extra,
            },
        ],
    };
}

/** Every update from separate to done, in order. */
function walk(phases: string[] = PHASES, leader = { leaders: [2], known: true }): { phase: string; plan: MigrationPlan }[] {
    let applied: AppliedState = {};
    const out: { phase: string; plan: MigrationPlan }[] = [];
    for (const phase of phases) {
        const e = loadConfig(raw(phase)).ensembles[0];
        out.push({ phase, plan: planEnsemble(e, applied, leader).plan });
        applied = { [e.name]: appliedOf(e) };
    }
    return out;
}

const ids = (m: { members: { id: number }[] }) => m.members.map((x) => x.id).join(",");

describe("mitosis by reconfig: the phase table", () => {
    it("is planned by its own room, with mitosis's phases", () => {
        const e = loadConfig(raw("separate")).ensembles[0];
        assert.equal(procedureOf(e), mitosisReconfig);
        assert.deepEqual(procedureOf(e).phases, PHASES);
        const plain = loadConfig(raw("separate", { membershipChange: undefined })).ensembles[0];
        assert.notEqual(procedureOf(plain), mitosisReconfig, "restart is the default");
    });

    it("by default (joinAs unset) every target joins as an observer by reconfig -add: none dormant, the sources' quorum unchanged", () => {
        const e = loadConfig(raw("separate", { joinAs: undefined })).ensembles[0];
        assert.equal(procedureOf(e), mitosisReconfig);
        assert.equal(e.procedure === "mitosis" && e.joinAs, "observer");
        const joined = desiredState(e, "joined");
        assert.deepEqual(
            joined.servers.map((s) => `${s.id}:${s.running ? s.runningWith.members.map((m) => `${m.id}${m.observer ? "o" : ""}`).join(",") : "stopped"}`),
            ["1:1,2,3,4o,5o,6o", "2:1,2,3,4o,5o,6o", "3:1,2,3,4o,5o,6o", "4:1,2,3,4o,5o,6o", "5:1,2,3,4o,5o,6o", "6:1,2,3,4o,5o,6o"],
        );
        let applied: AppliedState = {};
        for (const phase of PHASES) {
            const ep = loadConfig(raw(phase, { joinAs: undefined })).ensembles[0];
            const plan = planEnsemble(ep, applied, { leaders: [2], known: true }).plan; // planEnsemble refuses a plan the check finds unsafe
            const sourceRestarts = plan.steps.filter((st) => st.kind === "restart" && st.server <= 3 && st.effect);
            assert.deepEqual(sourceRestarts.map((st) => st.id), [], `${phase}: no source restarts`);
            applied = { [ep.name]: appliedOf(ep) };
        }
    });

    it("sources run S, S+T' from the join, S again from the split; active targets join, dormant ones stop", () => {
        const e = loadConfig(raw("separate")).ensembles[0];
        const table = Object.fromEntries(
            PHASES.map((p) => {
                const d = desiredState(e, p);
                return [p, d.servers.map((s) => `${s.id}:${s.running ? ids(s.runningWith) : "stopped"}`).join(" ")];
            }),
        );
        assert.deepEqual(table, {
            separate: "1:1,2,3 2:1,2,3 3:1,2,3 4:4,5,6 5:4,5,6 6:4,5,6",
            joined: "1:1,2,3,4,5 2:1,2,3,4,5 3:1,2,3,4,5 4:1,2,3,4,5 5:1,2,3,4,5 6:stopped",
            clients: "1:1,2,3,4,5 2:1,2,3,4,5 3:1,2,3,4,5 4:1,2,3,4,5 5:1,2,3,4,5 6:stopped",
            prepared: "1:1,2,3,4,5 2:1,2,3,4,5 3:1,2,3,4,5 4:1,2,3,4,5 5:1,2,3,4,5 6:stopped",
            split: "1:1,2,3 2:1,2,3 3:1,2,3 4:4,5,6 5:4,5,6 6:4,5,6",
            "source-restarted": "1:1,2,3 2:1,2,3 3:1,2,3 4:4,5,6 5:4,5,6 6:4,5,6",
            done: "1:1,2,3 2:1,2,3 3:1,2,3 4:4,5,6 5:4,5,6 6:4,5,6",
        });
    });
});

describe("mitosis by reconfig: the plans", () => {
    it("each update in order: joins by reconfig -add one at a time, the split stops every target before any starts, then reconfig -remove", () => {
        const events = Object.fromEntries(walk().map(({ phase, plan }) => [phase, describePlan(plan)]));
        assert.deepEqual(events.joined, [
            "restart 6 (dormant target stops)",
            "stop 4 + 5 (the old target ensemble stops before any target joins: a joiner adopts a peer's newer configuration)",
            "restart 4 (target joins: starts empty from a seed, follows the source leader, then reconfig -add)",
            "reconfig through 1: add 4",
            "restart 5 (target joins: starts empty from a seed, follows the source leader, then reconfig -add)",
            "reconfig through 1: add 5",
        ]);
        assert.deepEqual(events.split, [
            "firewall split on 1, 2, 3",
            "stop 4 + 5 (every running target stops before any starts on T: a LOOKING server adopts a peer's newer configuration)",
            "restart 4 + 5 + 6 (all targets at once, dormant ones included: behind the firewall they elect their own leader)",
            "reconfig through 1: remove 4, 5",
        ]);
        assert.deepEqual(events["source-restarted"], [], "the sources run S since the split: nothing to do");
        assert.deepEqual(events.done, ["remove the firewall split on 1, 2, 3"]);
    });

    it("the split's rules sit on the source hosts and cut every target (the leader's host cuts them all at one moment)", () => {
        const e = loadConfig(raw("split")).ensembles[0];
        assert.deepEqual(
            desiredState(e, "split").firewall.map((f) => `${f.id}:${f.peers.join(",")}`),
            ["1:192.0.2.4,192.0.2.5,192.0.2.6", "2:192.0.2.4,192.0.2.5,192.0.2.6", "3:192.0.2.4,192.0.2.5,192.0.2.6"],
        );
    });

    it("no source restarts in any update: their restart steps are frozen", () => {
        for (const { phase, plan } of walk()) {
            for (const s of plan.steps) {
                if (s.kind === "restart" && [1, 2, 3].includes(s.server)) {
                    assert.equal(s.effect, undefined, `${phase}: restart-${s.server} runs nothing`);
                    assert.equal(s.frozen, true, `${phase}: restart-${s.server} is frozen`);
                }
            }
        }
    });

    it("the steps wait for each other in the plan's order (each step's `after` is declared before it)", () => {
        for (const { phase, plan } of walk()) {
            const seen = new Set<string>();
            for (const s of plan.steps) {
                for (const a of s.after) assert.ok(seen.has(a), `${phase}: ${s.id} waits for ${a}, declared later`);
                seen.add(s.id);
            }
            const add5 = plan.steps.find((s) => s.id === "restart-5" && s.effect);
            if (phase === "joined") assert.ok(add5?.after.includes("reconfig-add-4"), "target 5 starts once 4 is a voter");
        }
    });

    it("the join's seeds: the committed configuration and the joiner as an observer; the split's: T alone", () => {
        const plans = Object.fromEntries(walk().map(({ phase, plan }) => [phase, plan]));
        const seed = (p: MigrationPlan, id: number) => {
            const s = p.steps.find((x) => x.id === `restart-${id}` && x.effect);
            return s && s.kind === "restart" ? s.seed?.map((m) => `${m.id}${m.observer ? "o" : ""}`).join(",") : undefined;
        };
        assert.equal(seed(plans.joined, 4), "1,2,3,4o");
        assert.equal(seed(plans.joined, 5), "1,2,3,4,5o");
        assert.equal(seed(plans.split, 4), "4,5,6");
        assert.equal(seed(plans.split, 6), "4,5,6");
    });

    it("the abort: reconfig -remove first, then the targets stop, then all start empty on T", () => {
        const [, , back] = walk(["separate", "joined", "separate"]);
        assert.deepEqual(describePlan(back.plan).slice(0, 2), ["reconfig through 1: remove 4, 5", "stop 4 + 5 (every running target stops before any starts on T: a LOOKING server adopts a peer's newer configuration)"]);
        const wiped = back.plan.steps.filter((s) => s.kind === "restart" && s.effect && s.wipeData).map((s) => (s as { server: number }).server);
        // 4 and 5 held the source's data; the dormant 6 starts again too, empty like the others.
        assert.deepEqual(wiped.sort(), [4, 5, 6], "every target starts empty");
    });

    it("the split cannot be stepped back", () => {
        assert.equal(mitosisReconfig.back.split.allowed, false);
        assert.match(mitosisReconfig.back.split.reason, /cannot rejoin by reconfig/);
    });

    it("with the source leader unknown, the split declares the sources' possible election", () => {
        const split = walk(PHASES, { leaders: [], known: false }).find((x) => x.phase === "split")!.plan;
        assert.ok(split.windows.some((w) => w.kind === "election"));
        assert.match(split.warnings.join("\n"), /the source leader is unknown/);
        const known = walk().find((x) => x.phase === "split")!.plan;
        assert.ok(!known.windows.some((w) => w.kind === "election"), "a source leader stays leader: no election");
    });
});

describe("mitosis by reconfig: the steps' scripts", () => {
    const joined = walk().find((x) => x.phase === "joined")!.plan;

    it("reconfig steps run zkCli on the first source with the credentials' placeholder, never the secret", () => {
        const step = joined.steps.find((s) => s.kind === "reconfig")!;
        assert.ok(isCommandStep(step));
        const script = commandsOf(step).create;
        assert.match(script, /readonly ZK_CLI='\/opt\/zk\/bin\/zkCli\.sh'/);
        assert.match(script, new RegExp(`readonly RECONFIG_AUTH='${AUTH_PLACEHOLDER}'`));
        assert.match(script, /readonly -a ADD_LINES=\('server\.4=192\.0\.2\.4:2888:3888:participant;2181'\)/);
        assert.ok(!script.includes("super:secret"));
        assert.equal(step.kind === "reconfig" && step.target.host, "192.0.2.1");
        assert.match(withAuth(script, "super:it's"), /readonly RECONFIG_AUTH='super:it'\\''s'/);
    });

    it("without credentials the steps run unauthenticated (skipACL=yes)", () => {
        const e = loadConfig(raw("joined", {}, { reconfigAuth: undefined })).ensembles[0];
        const plan = planEnsemble(e, { "kafka-main": appliedOf(loadConfig(raw("separate", {}, { reconfigAuth: undefined })).ensembles[0]) }).plan;
        const step = plan.steps.find((s) => s.kind === "reconfig")!;
        assert.ok(isCommandStep(step));
        assert.match(commandsOf(step).create, /readonly RECONFIG_AUTH=''/);
    });

    it("a target's start writes its seed to a file whose suffix is not hex (ZooKeeper reads version 0)", () => {
        const step = joined.steps.find((s) => s.id === "restart-4")!;
        assert.ok(isCommandStep(step));
        const update = commandsOf(step).update!;
        assert.match(update, /readonly SEED_FILE='\/etc\/zookeeper\/conf\/zoo\.cfg\.dynamic\.zkmigrate'/);
        assert.match(update, /'server\.4=192\.0\.2\.4:2888:3888:observer;2181'/);
        assert.match(update, /check_reconfig_enabled\n/);
        assert.ok(!/^[0-9a-f]+$/i.test(seedFile({ paths: { configFile: "/x/zoo.cfg" } } as never).split(".").pop()!));
    });

    it("dynamic lines: role and client port; IPv6 in brackets", () => {
        assert.equal(dynamicLine({ id: 7, address: "2001:db8::7", peerPort: 2888, electionPort: 3888, observer: true }, 2181), "server.7=[2001:db8::7]:2888:3888:observer;2181");
        const step = joined.steps.find((s) => s.kind === "reconfig");
        assert.ok(step && step.kind === "reconfig");
        assert.throws(() => renderReconfigChange({ host: step.settings, cli: "zkCli.sh", add: [], remove: [], auth: false }), /needs servers to add or remove/);
    });
});

describe("mitosis by reconfig: config and the preview's guard", () => {
    it("reconfigAuth must be a secret; membershipChange is restart or reconfig", () => {
        const notSecret = checkConfig(raw("separate"), (k) => k !== "zkmigrate:reconfigAuth");
        assert.ok(notSecret.issues.some((i) => i.path === "zkmigrate:reconfigAuth" && /must be a secret/.test(i.reason)));
        const bad = checkConfig(raw("separate", { membershipChange: "rolling" }));
        assert.ok(bad.issues.some((i) => i.path === "zkmigrate:ensembles[kafka-main].membershipChange"), JSON.stringify(bad.issues));
        const noColon = checkConfig(raw("separate", {}, { reconfigAuth: "secret" }));
        assert.ok(noColon.issues.some((i) => i.path === "zkmigrate:reconfigAuth" && /user:password/.test(i.reason)));
    });

    it("refuses a step that needs reconfig when the reading says unavailable, with the config path; warns without a reading", () => {
        const config = loadConfig(raw("separate"));
        const plans = new Map([["kafka-main", planEnsemble(config.ensembles[0], {})]]);
        const reading = { available: false, reasons: ["reconfigEnabled is false on the leader (the default from 3.5.3)"], versions: {} };
        const g = reconfigGuard(config.ensembles, plans, { "kafka-main": reading });
        assert.deepEqual(g.issues.map((i) => i.path), ["zkmigrate:ensembles[kafka-main].membershipChange"]);
        assert.match(g.issues[0].reason, /^reconfig is not available on the sources: reconfigEnabled is false/);
        assert.equal(reconfigGuard(config.ensembles, plans, { "kafka-main": { ...reading, available: true, reasons: [] } }).issues.length, 0);
        assert.match(reconfigGuard(config.ensembles, plans, undefined).warnings.get("kafka-main")![0], /was not read \(zkmigrate:leaderProbe is off\)/);
    });
});

describe("mitosis by reconfig: the check's model of a reconfig", () => {
    it("refuses a reconfig whose new configuration has no quorum following the leader", () => {
        const e = loadConfig(raw("joined")).ensembles[0];
        const from = desiredState(e, "separate");
        const to = desiredState(e, "joined");
        const plan = planEnsemble(e, { "kafka-main": appliedOf(loadConfig(raw("separate")).ensembles[0]) }, { leaders: [2], known: true }).plan;
        // Two sources stopped first: the leader keeps no quorum of S+{4}.
        const stop = { id: "x", kind: "clients-connect" as const, declare: false as const, after: [], effect: { kind: "stop" as const, ids: [2, 3], reason: "test", windows: [] } };
        const broken = { ...plan, steps: [stop, ...plan.steps] };
        const v = simulate(from, to, broken);
        assert.ok(v.some((x) => /the reconfig runs through server 1, which follows no leader|cannot commit/.test(x.reason)), JSON.stringify(v.map((x) => x.reason)));
        assert.deepEqual(simulate(from, to, plan), [], "the room's own plan is safe");
    });
});
