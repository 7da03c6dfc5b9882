// No half-applied step (src/procedures/gates.ts): which updates get gates and the split's dead
// man's switch, what every change waits for, and the bound's default and validation.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubernetesConfig, MitosisConfig } from "../../../src/config";
import { ConfigError, loadConfig } from "../../../src/config";
import { desiredState } from "../../../src/model";
import { planTransition } from "../../../src/plan";
import { defaultDeadmanSeconds, deadmanIssue, minDeadmanSeconds, restartBudgetSeconds } from "../../../src/procedures/gates";
import { KUBERNETES_PHASES } from "../../../src/procedures/kubernetes";
import type { Step } from "../../../src/steps";
import { devConfigAt, devFleet, edited } from "../../fixtures";

const fleet = devFleet();
const mitosis = fleet.ensembles[0] as MitosisConfig;
const kube = fleet.ensembles[1] as KubernetesConfig;

const planOf = (e: MitosisConfig | KubernetesConfig, from: string, to: string) => planTransition(e, desiredState(e, from), desiredState(e, to));
const ids = (steps: Step[], kind: Step["kind"]) => steps.filter((s) => s.kind === kind).map((s) => s.id);
const byId = (steps: Step[], id: string) => steps.find((s) => s.id === id)!;

describe("gates and the split's dead man's switch, per update", () => {
    const table: { from: string; to: string; gates: string; arms: string; commits: string }[] = [
        { from: "separate", to: "joined", gates: "", arms: "", commits: "" },
        { from: "joined", to: "clients", gates: "", arms: "", commits: "" },
        { from: "clients", to: "prepared", gates: "", arms: "", commits: "" },
        // The split: firewall on every target and all targets restart together.
        { from: "prepared", to: "split", gates: "gate-4,gate-5,gate-6", arms: "split-arm-4,split-arm-5,split-arm-6", commits: "4,5,6" },
        { from: "split", to: "source-restarted", gates: "", arms: "", commits: "" },
        { from: "source-restarted", to: "done", gates: "", arms: "", commits: "" },
        // Back from done: the firewall goes up again on every target (several hosts), but no
        // target restarts: gates, no switch (nothing would commit it).
        { from: "done", to: "source-restarted", gates: "gate-4,gate-5,gate-6", arms: "", commits: "" },
    ];
    for (const t of table) {
        it(`mitosis ${t.from} -> ${t.to}`, () => {
            const p = planOf(mitosis, t.from, t.to);
            assert.equal(ids(p.steps, "gate").join(","), t.gates);
            assert.equal(ids(p.steps, "split-arm").join(","), t.arms);
            const commits = p.steps.filter((s) => s.kind === "firewall" && s.commit).map((s) => (s as { server: number }).server);
            assert.equal(commits.join(","), t.commits);
            // The armed hosts' firewall steps commit the split, after every arm; every restart of the split waits for every commit.
            for (const id of commits) {
                for (const arm of ids(p.steps, "split-arm")) assert.ok(byId(p.steps, `firewall-${id}`).after.includes(arm), `firewall-${id} waits for ${arm}`);
                for (const r of p.steps.filter((s) => s.kind === "restart" && s.effect?.kind === "restart")) assert.ok(r.after.includes(`firewall-${id}`), `${r.id} waits for firewall-${id}`);
            }
            const gated = [...ids(p.steps, "gate"), ...ids(p.steps, "split-arm")];
            // Every change of the multi-host step waits for every gate (and arm), not only its host's.
            for (const s of p.steps) {
                if (s.kind === "firewall" || (s.kind === "restart" && s.group !== undefined && gated.length > 0 && s.effect?.kind === "restart" && s.effect.group.ids.length > 1)) {
                    for (const g of gated) assert.ok(s.after.includes(g), `${s.id} waits for ${g}`);
                }
                if (s.kind === "split-arm") for (const g of ids(p.steps, "gate")) assert.ok(s.after.includes(g), `${s.id} waits for ${g}`);
            }
            // Steps come after what they wait for (the components declare them in this order).
            const seen = new Set<string>();
            for (const s of p.steps) {
                for (const a of s.after) assert.ok(seen.has(a), `${s.id} after ${a}, declared later`);
                seen.add(s.id);
            }
        });
    }

    it("at the split: who must serve, the firewall's peers, the switch's bound, window and partners", () => {
        const p = planOf(mitosis, "prepared", "split");
        const gate = (id: number) => byId(p.steps, `gate-${id}`) as Extract<Step, { kind: "gate" }>;
        assert.deepEqual([4, 5, 6].map((id) => gate(id).gate.serving), [true, true, false], "the active targets serve, the dormant one is stopped");
        for (const id of [4, 5, 6]) {
            assert.deepEqual(gate(id).gate.firewallPeers, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
            const arm = byId(p.steps, `split-arm-${id}`) as Extract<Step, { kind: "split-arm" }>;
            assert.deepEqual(arm.peers, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
            // healthTimeoutSeconds 120: a restart may run 120 + 10 + 120 s after it commits.
            assert.deepEqual(
                { seconds: arm.deadman.seconds, commitBy: arm.deadman.commitBySeconds, probe: arm.deadman.probeSeconds },
                { seconds: 400, commitBy: 120, probe: 10 },
            );
            assert.deepEqual(
                arm.deadman.partners.map((x) => `${x.address}:${x.port}`),
                [4, 5, 6].filter((x) => x !== id).map((x) => `192.0.2.${x}:2181`),
            );
            assert.equal(arm.effect?.kind, "firewall-apply", "the arm puts the rules up: the safety check sees the firewall there");
        }
        // The arms and firewalls carry one effect: one event for the simulation.
        const effects = new Set(p.steps.filter((s) => s.kind === "split-arm" || s.kind === "firewall").map((s) => s.effect));
        assert.equal(effects.size, 1);
    });

    it("splitDeadmanSeconds reaches the switch", () => {
        const e = { ...mitosis, splitDeadmanSeconds: 500 };
        const arm = planOf(e, "prepared", "split").steps.find((s) => s.kind === "split-arm") as Extract<Step, { kind: "split-arm" }>;
        assert.deepEqual([arm.deadman.seconds, arm.deadman.commitBySeconds], [500, 220]);
    });

    for (const [from, to] of KUBERNETES_PHASES.slice(0, -1).map((p, i) => [p, KUBERNETES_PHASES[i + 1]])) {
        it(`kubernetes ${from} -> ${to}: one server at a time, no gates`, () => {
            const p = planOf(kube, from, to);
            assert.equal(ids(p.steps, "gate").length + ids(p.steps, "split-arm").length, 0);
        });
    }
});

describe("splitDeadmanSeconds", () => {
    const host = mitosis.host;
    it("defaults from healthTimeoutSeconds", () => {
        const table: [number, number, number][] = [
            // health, restart budget, default
            [5, 120 + 10 + 5, 120 + 135 + 30],
            [120, 250, 400],
            [600, 600 + 10 + 600, 120 + 1210 + 30],
        ];
        for (const [health, budget, def] of table) {
            const h = { ...host, healthTimeoutSeconds: health };
            assert.deepEqual([restartBudgetSeconds(h), defaultDeadmanSeconds(h), minDeadmanSeconds(h)], [budget, def, def - 90]);
            assert.equal(deadmanIssue(def, h), undefined);
            assert.equal(deadmanIssue(minDeadmanSeconds(h), h), undefined);
            assert.match(deadmanIssue(minDeadmanSeconds(h) - 1, h)!, /too short/);
        }
    });

    it("a bound too short is refused with the path and the reason", () => {
        const raw = edited(devConfigAt({}), (r) => {
            r.ensembles[0].splitDeadmanSeconds = 100;
        });
        assert.throws(
            () => loadConfig(raw),
            (e: unknown) => {
                assert.ok(e instanceof ConfigError);
                assert.match(
                    (e as Error).message,
                    /zkmigrate:ensembles\[kafka-main\]\.splitDeadmanSeconds: 100 s is too short: a target's restart may run 250 s after it commits the split .* at least 310 s \(default 400 s\)/,
                );
                return true;
            },
        );
    });
});

describe("the observer join's split: the switch on the source hosts (their rules cut every observer at once)", () => {
    const observer = loadConfig(
        edited(devConfigAt({ "kafka-main": "split" }), (r) => {
            const e = r.ensembles.find((x: { name: string }) => x.name === "kafka-main");
            delete e.activeTargets;
            e.joinAs = "observer";
        }),
    ).ensembles[0] as MitosisConfig;

    it("prepared -> split: gates on every host, the sources armed with the targets as partners, every target's restart waits for every source's commit", () => {
        const p = planOf(observer, "prepared", "split");
        assert.equal(ids(p.steps, "gate").join(","), "gate-1,gate-2,gate-3,gate-4,gate-5,gate-6");
        assert.equal(ids(p.steps, "split-arm").join(","), "split-arm-1,split-arm-2,split-arm-3");
        for (const id of [1, 2, 3]) {
            const arm = byId(p.steps, `split-arm-${id}`) as Extract<Step, { kind: "split-arm" }>;
            assert.deepEqual(arm.deadman.partners.map((x) => x.address), ["192.0.2.4", "192.0.2.5", "192.0.2.6"]);
            for (const arm of ids(p.steps, "split-arm")) assert.ok(byId(p.steps, `firewall-${id}`).after.includes(arm), `firewall-${id} (the commit) waits for ${arm}`);
        }
        for (const t of [4, 5, 6]) for (const s of [1, 2, 3]) assert.ok(byId(p.steps, `restart-${t}`).after.includes(`firewall-${s}`), `restart-${t} waits for the commit firewall-${s}`);
        assert.deepEqual(p.steps.filter((s) => s.kind === "firewall" && s.commit).map((s) => s.id), ["firewall-1", "firewall-2", "firewall-3"]);
        const seen = new Set<string>();
        for (const s of p.steps) {
            for (const a of s.after) assert.ok(seen.has(a), `${s.id} after ${a}, declared later`);
            seen.add(s.id);
        }
    });

    it("done -> source-restarted (the rules back up, nothing restarts): gates, no switch", () => {
        const p = planOf(observer, "done", "source-restarted");
        assert.equal(ids(p.steps, "split-arm").join(","), "");
        assert.equal(p.steps.filter((s) => s.kind === "firewall" && s.commit).length, 0);
    });
});

describe("the split's client fence (src/scripts/fence.ts): every running target that the split cuts off is fenced, then caught up, before any arm", () => {
    const joined = (joinAs: "observer" | undefined, membershipChange?: "reconfig") =>
        loadConfig(
            edited(devConfigAt({ "kafka-main": "split" }), (r) => {
                const e = r.ensembles.find((x: { name: string }) => x.name === "kafka-main");
                if (joinAs) {
                    delete e.activeTargets;
                    e.joinAs = joinAs;
                }
                if (membershipChange) e.membershipChange = membershipChange;
            }),
        ).ensembles[0] as MitosisConfig;
    const fenceOf = (p: ReturnType<typeof planOf>, id: number) => byId(p.steps, `split-fence-${id}`) as Extract<Step, { kind: "split-fence" }>;
    const catchupOf = (p: ReturnType<typeof planOf>, id: number) => byId(p.steps, `split-catchup-${id}`) as Extract<Step, { kind: "split-catchup" }>;
    const check = (p: ReturnType<typeof planOf>, fenced: number[], sources: number[]) => {
        assert.deepEqual(ids(p.steps, "split-fence"), fenced.map((id) => `split-fence-${id}`));
        assert.deepEqual(ids(p.steps, "split-catchup"), fenced.map((id) => `split-catchup-${id}`));
        for (const id of fenced) {
            const f = fenceOf(p, id);
            const c = catchupOf(p, id);
            assert.equal(f.fence.seconds, 400, "the fence lifts itself at the split's deadline");
            assert.equal(f.fence.target, [4, 5, 6].map((x) => `${x}=192.0.2.${x}:2888:3888`).join(","), "the membership it joins (the marker of a restart into T)");
            assert.equal(c.catchup.target, f.fence.target);
            assert.deepEqual(c.catchup.sources.map((b) => `${b.address}:${b.port}`), sources.map((x) => `192.0.2.${x}:2181`));
            for (const g of ids(p.steps, "gate")) assert.ok(f.after.includes(g), `split-fence-${id} waits for ${g}`);
            // The barrier: every catch-up waits for every fence (no target acknowledges any more when the sources are read).
            for (const other of fenced) assert.ok(c.after.includes(`split-fence-${other}`), `split-catchup-${id} waits for split-fence-${other}`);
            for (const arm of ids(p.steps, "split-arm")) assert.ok(byId(p.steps, arm).after.includes(`split-catchup-${id}`), `${arm} waits for split-catchup-${id}`);
            const starts = p.steps.filter((s) => s.kind === "restart" && s.server === id && s.running);
            assert.ok(starts.length > 0);
            for (const s of starts) assert.deepEqual((s as Extract<Step, { kind: "restart" }>).unfence, { ensemble: "kafka-main", target: f.fence.target }, `${s.id} lifts the fence`);
        }
        // Nothing else lifts a fence, and no other server restarts with one.
        for (const s of p.steps) if (s.kind === "restart" && !fenced.includes(s.server)) assert.equal(s.unfence, undefined, s.id);
        const seen = new Set<string>();
        for (const s of p.steps) {
            for (const a of s.after) assert.ok(seen.has(a), `${s.id} after ${a}, declared later`);
            seen.add(s.id);
        }
    };
    it("voter join: the active targets (the dormant one runs nothing), the sources to catch up with", () => {
        check(planOf(joined(undefined), "prepared", "split"), [4, 5], [1, 2, 3]);
    });
    it("observer join: every target (all run, as observers)", () => {
        check(planOf(joined("observer"), "prepared", "split"), [4, 5, 6], [1, 2, 3]);
    });
    it("reconfig join: every target, before the arms and the stops", () => {
        const p = planOf(joined("observer", "reconfig"), "prepared", "split");
        check(p, [4, 5, 6], [1, 2, 3]);
        for (const s of p.steps.filter((x) => x.id.startsWith("stop-"))) assert.ok(s.after.some((a) => a.startsWith("split-arm")), `${s.id} after the arms (which wait for the catch-ups)`);
    });
    it("no fence where nothing is cut: the other updates", () => {
        for (const [from, to] of [["separate", "joined"], ["split", "source-restarted"], ["done", "source-restarted"]]) {
            assert.deepEqual(ids(planOf(mitosis, from, to).steps, "split-fence"), [], `${from} -> ${to}`);
        }
    });
});
