// Block & copy: config checks (exact messages), the phase table, the plan per step, the rendered
// commands, and the commented example in Pulumi.dev.yaml (it must stay a valid config).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { appliedOf, ConfigError, loadConfig, validateTransitions, type BlockCopyConfig, type RawConfig } from "../../../src/config";
import { desiredState, planEnsemble } from "../../../src/model";
import { describePlan } from "../../../src/plan";
import { BLOCK_COPY_PHASES, BLOCK_COPY_TABLE, blockCopySpec } from "../../../src/procedures/block-copy";
import { procedureOf } from "../../../src/procedures/registry";
import { commandsOf, isCommandStep } from "../../../src/scripts";
import * as scripts from "../../../src/scripts/block-copy";

// The commands are rendered from the ensemble's spec (what the plan's steps carry).
const renderCopyScript = (e: BlockCopyConfig, mode: "full" | "incremental") => scripts.renderCopyScript(blockCopySpec(e), mode);
const renderBlockScript = (e: BlockCopyConfig) => scripts.renderBlockScript(blockCopySpec(e));
const renderUnblockScript = (e: BlockCopyConfig) => scripts.renderUnblockScript(blockCopySpec(e));
const renderSwitchScript = (e: BlockCopyConfig) => scripts.renderSwitchScript(blockCopySpec(e));
const renderJournalStopScript = (e: BlockCopyConfig) => scripts.renderJournalStopScript(blockCopySpec(e));
const phasesOf = (p: "block-copy") => procedureOf(p).phases;
import { blockCopyRaw, edited, ROOT, TEST_HOST_KEY, TEST_SSH } from "../../fixtures";

const bc = (phase = "precopy", extra: Record<string, unknown> = {}) => loadConfig(blockCopyRaw(phase, extra)).ensembles[0] as BlockCopyConfig;

function reasons(raw: RawConfig): string[] {
    try {
        loadConfig(raw);
    } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.issues.map((i) => `${i.path}: ${i.reason}`);
    }
    assert.fail("expected the config to be refused");
}

const P = "zkmigrate:ensembles[kafka-bc]";

describe("block-copy config", () => {
    it("loads with its defaults", () => {
        const e = bc();
        assert.equal(e.procedure, "block-copy");
        assert.equal(e.targetPath, "/kafka");
        assert.deepEqual(e.copy, {
            command: "node --import tsx cli/zkmigrate.ts",
            stateFile: ".zkmigrate/kafka-bc-copy-state.json",
            sourceAuthEnv: undefined,
            targetAuthEnv: undefined,
            delete: true,
            journal: true,
            extraArgs: [],
        });
        assert.equal(bc("precopy", { copy: { journal: false } }).copy.journal, false);
        const remote = bc("precopy", { copy: { runOn: { host: "192.0.2.30" } } });
        assert.deepEqual(remote.copy.host, { host: "192.0.2.30", hostKey: TEST_HOST_KEY });
        assert.equal(remote.copy.command, "zkmigrate");
        assert.equal(remote.copy.stateFile, "/var/lib/zkmigrate/kafka-bc-copy-state.json");
    });

    it("refuses bad input with the config path and the reason", () => {
        const cases: [string, (r: any) => void, string[]][] = [
            [
                "a server in both",
                (r) => (r.ensembles[0].target[0].host = "192.0.2.2"),
                [
                    `${P}.target[0].host: host 192.0.2.2 is in both the source and the target: they are two ensembles (list the same servers in both only to copy within one ensemble)`,
                ],
            ],
            [
                "overlapping paths on one ensemble",
                (r) => {
                    r.ensembles[0].target = r.ensembles[0].source;
                    r.ensembles[0].targetPath = "/kafka/copy";
                },
                [`${P}.targetPath: source and target are the same ensemble and /kafka/copy overlaps /kafka: the copy would read what it writes; pick a disjoint targetPath`],
            ],
            [
                "a relative path and the root",
                (r) => {
                    r.ensembles[0].path = "kafka";
                    r.ensembles[0].targetPath = "/";
                },
                [
                    `${P}.path: "kafka" is not a subtree: an absolute znode path without a trailing "/", not the root (e.g. /kafka)`,
                    `${P}.targetPath: "/" is not a subtree: an absolute znode path without a trailing "/", not the root (e.g. /kafka)`,
                ],
            ],
            [
                "credentials in extraArgs",
                (r) => (r.ensembles[0].copy = { extraArgs: ["--batch-ops", "500", "--src-auth", "digest:u:p", "--verify"] }),
                [
                    `${P}.copy.extraArgs[2]: --src-auth would put credentials in the command line (and in every preview): use copy.sourceAuthEnv / copy.targetAuthEnv`,
                    `${P}.copy.extraArgs[4]: --verify is set by the phase (precopy, final-copy); remove it`,
                ],
            ],
            [
                "the journal in extraArgs (copy.journal says it)",
                (r) => (r.ensembles[0].copy = { extraArgs: ["--journal", "/tmp/j"] }),
                [`${P}.copy.extraArgs[0]: --journal is set by the phase (precopy, final-copy); remove it`],
            ],
            ["copy.journal that is no boolean", (r) => (r.ensembles[0].copy = { journal: "yes" }), [`${P}.copy.journal: Invalid input: expected boolean, received string`]],
            ["an auth variable that is no name", (r) => (r.ensembles[0].copy = { sourceAuthEnv: "ZK AUTH" }), [`${P}.copy.sourceAuthEnv: an environment variable name`]],
            ["no client hosts", (r) => (r.ensembles[0].clients.hosts = []), [`${P}.clients.hosts: at least one client host`]],
            [
                "a client host twice",
                (r) => r.ensembles[0].clients.hosts.push({ host: "192.0.2.21" }),
                [`${P}.clients.hosts[2].host: host 192.0.2.21 is listed twice (also clients.hosts[0])`],
            ],
            ["no switch command", (r) => delete r.ensembles[0].clients.switch, [`${P}.clients.switch: Invalid input: expected string, received undefined`]],
            [
                "an unknown phase",
                (r) => (r.ensembles[0].phase = "copied"),
                [`${P}.phase: unknown block-copy phase "copied" (one of: precopy, blocked, final-copy, switched, done)`],
            ],
            [
                "a myid twice in one side",
                (r) => (r.ensembles[0].target[1].id = 1),
                [`${P}.target[1].id: myid 1 is used twice (also target[0])`],
            ],
        ];
        for (const [what, edit, expected] of cases) {
            assert.deepEqual(reasons(edited(blockCopyRaw(), edit)), expected, what);
        }
    });

    it("lets the same myids and servers appear in two block-copy ensembles (they manage no server)", () => {
        const raw = blockCopyRaw();
        const second = { ...(raw.ensembles as any[])[0], name: "other-bc", path: "/other" };
        (raw.ensembles as any[]).push(second);
        assert.equal(loadConfig(raw).ensembles.length, 2);
    });

    it("moves one step per update and refuses to step back once switched", () => {
        const applied = (phase: string) => ({ "kafka-bc": appliedOf(bc(phase)) });
        assert.deepEqual(validateTransitions([bc("blocked")], applied("precopy")), []);
        assert.deepEqual(validateTransitions([bc("blocked")], applied("final-copy")), []);
        assert.deepEqual(
            validateTransitions([bc("final-copy")], applied("precopy")).map((i) => i.reason),
            ['"final-copy" is 2 steps from the applied phase "precopy": move one step per update (next: "blocked")'],
        );
        assert.deepEqual(
            validateTransitions([bc("blocked")], {}).map((i) => i.reason),
            ['a new ensemble starts at the first phase "precopy" (its preflight checks run there); got "blocked"'],
        );
        assert.deepEqual(
            validateTransitions([bc("final-copy")], applied("switched")).map((i) => `${i.path}: ${i.reason}`),
            [
                `${P}.phase: the clients were switched to the target ("switched"): stepping back to "final-copy" would lose what they wrote there since; copy it back with a new block & copy ensemble instead`,
            ],
        );
    });
});

describe("block-copy phases", () => {
    it("has the issue's phase table", () => {
        assert.deepEqual(phasesOf("block-copy"), ["precopy", "blocked", "final-copy", "switched", "done"]);
        assert.deepEqual(
            BLOCK_COPY_PHASES.map((p) => [p, desiredState(bc(p)).blockCopy]),
            BLOCK_COPY_PHASES.map((p) => [p, BLOCK_COPY_TABLE[p]]),
        );
        assert.deepEqual(BLOCK_COPY_TABLE, {
            precopy: { copy: "full", clientsBlocked: false, clientsOn: "source" },
            blocked: { copy: "full", clientsBlocked: true, clientsOn: "source" },
            "final-copy": { copy: "incremental", clientsBlocked: true, clientsOn: "source" },
            switched: { copy: "incremental", clientsBlocked: false, clientsOn: "target" },
            done: { copy: "incremental", clientsBlocked: false, clientsOn: "target" },
        });
    });

    it("changes no ZooKeeper server and switches the connect string in `switched`", () => {
        for (const p of BLOCK_COPY_PHASES) {
            const d = desiredState(bc(p));
            assert.deepEqual(d.servers, []);
            assert.deepEqual(d.firewall, []);
            const want = p === "switched" || p === "done" ? "192.0.2.11:2181,192.0.2.12:2181,192.0.2.13:2181/kafka" : "192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka";
            const c = d.clients.current;
            assert.equal(c.servers.map((s) => `${s.host}:${s.port}`).join(",") + c.chroot, want, p);
        }
    });

    it("plans each step in words, with no restart", () => {
        const steps = (from: string | undefined, to: string) => {
            const p = planEnsemble(bc(to), from ? { "kafka-bc": appliedOf(bc(from)) } : {});
            assert.deepEqual(p.plan.restartOrder, []);
            return describePlan(p.plan);
        };
        assert.deepEqual(steps(undefined, "precopy"), ["change journal started, then full copy while the clients run (precopy)"]);
        assert.deepEqual(steps("precopy", "blocked"), ["block the clients on 192.0.2.21, 192.0.2.22"]);
        assert.deepEqual(steps("blocked", "final-copy"), [
            "incremental copy of the paths the change journal recorded since the precopy (the scan if it broke), verified (clients blocked); the journal stops",
        ]);
        assert.deepEqual(steps("final-copy", "switched"), ["clients switched to 192.0.2.11:2181,192.0.2.12:2181,192.0.2.13:2181/kafka"]);
        assert.deepEqual(steps("switched", "done"), []);
        assert.deepEqual(steps("final-copy", "blocked"), []);
        assert.deepEqual(steps("blocked", "precopy"), ["unblock the clients on 192.0.2.21, 192.0.2.22"]);
        const off = (from: string | undefined, to: string) =>
            describePlan(planEnsemble(bc(to, { copy: { journal: false } }), from ? { "kafka-bc": appliedOf(bc(from, { copy: { journal: false } })) } : {}).plan);
        assert.deepEqual(off(undefined, "precopy"), ["full copy while the clients run (precopy)"]);
        assert.deepEqual(off("blocked", "final-copy"), ["incremental copy of what changed since the precopy, verified (clients blocked)"]);
    });
});

describe("block-copy commands", () => {
    it("precopy: stops a leftover journal, starts a new one, then a full copy that starts a new state file", () => {
        const src = "'192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka'";
        assert.equal(
            renderCopyScript(bc(), "full"),
            [
                "set -euo pipefail",
                "# zkmigrate block-copy kafka-bc: precopy (full, clients running)",
                "state='.zkmigrate/kafka-bc-copy-state.json'",
                'mkdir -p "$(dirname "$state")"',
                `if [ -f "$state.journal" ]; then node --import tsx cli/zkmigrate.ts journal stop ${src} --file "$state.journal" || true; fi`,
                'rm -f "$state"',
                `node --import tsx cli/zkmigrate.ts journal start ${src} --file "$state.journal"`,
                `node --import tsx cli/zkmigrate.ts copy ${src} '192.0.2.11:2181,192.0.2.12:2181,192.0.2.13:2181/kafka' --mtime-since "$state"`,
                "",
            ].join("\n"),
        );
        // The journal authenticates as the copy does: by the variable's name.
        const auth = renderCopyScript(bc("precopy", { copy: { sourceAuthEnv: "ZK_SRC_AUTH", targetAuthEnv: "ZK_DST_AUTH" } }), "full");
        assert.match(auth, /journal start '[^']+' --file "\$state\.journal" --src-auth-env ZK_SRC_AUTH\n/);
        // Off: no journal is started (a leftover one is still stopped).
        const off = renderCopyScript(bc("precopy", { copy: { journal: false } }), "full");
        assert.doesNotMatch(off, /journal start/);
        assert.match(off, /journal stop/);
    });

    it("the precopy's delete stops the journal where the copy runs, and never fails", () => {
        const e = bc("precopy", { copy: { runOn: { host: "192.0.2.30" } } });
        assert.equal(
            renderJournalStopScript(e),
            [
                "# zkmigrate block-copy kafka-bc: stop the change journal, if one still records",
                "state='/var/lib/zkmigrate/kafka-bc-copy-state.json'",
                `if [ -f "$state.journal" ]; then zkmigrate journal stop '192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka' --file "$state.journal" || true; fi`,
                "",
            ].join("\n"),
        );
        const precopy = planEnsemble(e, {}).plan.steps.find((s) => s.id === "precopy")!;
        const finalCopy = planEnsemble(bc("final-copy"), { "kafka-bc": appliedOf(bc("blocked")) }).plan.steps.find((s) => s.id === "final-copy")!;
        assert.ok(isCommandStep(precopy) && isCommandStep(finalCopy));
        assert.equal(commandsOf(precopy).delete, renderJournalStopScript(e));
        assert.equal(commandsOf(finalCopy).delete, undefined, "the final copy stops the journal itself");
    });

    it("final copy: incremental, --delete, --verify, credentials by variable name only", () => {
        const e = bc("final-copy", { targetPath: "/kafka-a", copy: { sourceAuthEnv: "ZK_SRC_AUTH", targetAuthEnv: "ZK_DST_AUTH", extraArgs: ["--batch-ops", "500"] } });
        const s = renderCopyScript(e, "incremental");
        assert.match(s, /^if \[ ! -f "\$state" \]; then$/m);
        assert.match(
            s,
            /copy '192\.0\.2\.1:2181,192\.0\.2\.2:2181,192\.0\.2\.3:2181\/kafka' '192\.0\.2\.11:2181,192\.0\.2\.12:2181,192\.0\.2\.13:2181\/kafka-a' --mtime-since "\$state" --journal "\$state\.journal" --src-auth-env ZK_SRC_AUTH --dst-auth-env ZK_DST_AUTH --delete --verify '--batch-ops' '500'\n$/,
        );
        assert.doesNotMatch(renderCopyScript(bc("final-copy", { copy: { delete: false } }), "incremental"), /--delete/);
        assert.doesNotMatch(renderCopyScript(bc("final-copy", { copy: { journal: false } }), "incremental"), /--journal/);
    });

    it("clients: block, unblock, and switch with ZK_CONNECT", () => {
        const e = bc("switched");
        assert.equal(renderBlockScript(e), "set -e\nsystemctl stop kafka\n");
        assert.equal(renderUnblockScript(e), "set -e\nsystemctl start kafka\n");
        assert.match(renderSwitchScript(e), /^set -e\nexport ZK_CONNECT='192\.0\.2\.11:2181,192\.0\.2\.12:2181,192\.0\.2\.13:2181\/kafka'\nsed -i /);
    });
});

describe("the block-copy example in Pulumi.dev.yaml", () => {
    it("is a valid ensemble (uncommented)", () => {
        const text = readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8");
        const m = /# >>> block-copy example\n([\s\S]*?)# <<< block-copy example/.exec(text);
        assert.ok(m, "Pulumi.dev.yaml has the commented block-copy example");
        const yaml = m[1]
            .split("\n")
            .map((l) => l.replace(/^ {4}# ?/, ""))
            .join("\n");
        const ensembles = parse(yaml) as unknown[];
        const f = loadConfig({ ...TEST_SSH, ensembles });
        assert.equal(f.ensembles[0].procedure, "block-copy");
    });
});
