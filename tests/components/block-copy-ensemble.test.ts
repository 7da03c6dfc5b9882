// A block-copy ensemble (MigrationEnsemble over its plan) under Pulumi mocks: which resources exist per phase, their commands, where
// they run, and their dependsOn chain (precopy -> blocks -> final copy -> switches).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { appliedOf, loadConfig, type BlockCopyConfig } from "../../src/config";
import { BLOCK_COPY_PHASES, blockCopySpec } from "../../src/procedures/block-copy";
import { asRemoteCommand } from "../../src/scripts";
import * as scripts from "../../src/scripts/block-copy";
import { blockCopyRaw } from "../fixtures";
import { runFleet, valueOf } from "./harness";

const renderCopyScript = (e: BlockCopyConfig, mode: "full" | "incremental") => scripts.renderCopyScript(blockCopySpec(e), mode);
const renderBlockScript = (e: BlockCopyConfig) => scripts.renderBlockScript(blockCopySpec(e));
const renderUnblockScript = (e: BlockCopyConfig) => scripts.renderUnblockScript(blockCopySpec(e));
const renderSwitchScript = (e: BlockCopyConfig) => scripts.renderSwitchScript(blockCopySpec(e));
const renderJournalStopScript = (e: BlockCopyConfig) => scripts.renderJournalStopScript(blockCopySpec(e));

interface Declared {
    name: string;
    type: string;
    inputs: Record<string, any>;
    dependsOn: string[];
    ignoreChanges?: string[];
}

const bc = (phase: string, extra: Record<string, unknown> = {}) => loadConfig(blockCopyRaw(phase, extra));

/** Declares the ensemble alone and records each child with its dependsOn (through a transformation). */
async function declare(phase: string, extra: Record<string, unknown> = {}): Promise<Declared[]> {
    const inputs = new Map<string, { type: string; inputs: Record<string, any> }>();
    await pulumi.runtime.setMocks(
        {
            newResource(a: pulumi.runtime.MockResourceArgs) {
                inputs.set(a.name, { type: a.type, inputs: a.inputs });
                return { id: `${a.name}-id`, state: { ...a.inputs, stdout: "", stderr: "" } };
            },
            call: (a: pulumi.runtime.MockCallArgs) => a.inputs,
        },
        "zkmigrate",
        "dev",
        false,
    );
    const { MigrationEnsemble } = await import("../../components");
    const { planEnsemble } = await import("../../src/model");
    const config = bc(phase, extra);
    const e = config.ensembles[0] as BlockCopyConfig;
    const deps = new Map<string, Promise<string[]>>();
    const ignored = new Map<string, string[] | undefined>();
    const order: string[] = [];
    const plan = planEnsemble(e, phase === "precopy" ? {} : { [e.name]: { ...appliedOf(e), phase: BLOCK_COPY_PHASES[BLOCK_COPY_PHASES.indexOf(phase as (typeof BLOCK_COPY_PHASES)[number]) - 1] } });
    const c = new MigrationEnsemble(
        e.name,
        { plan, ssh: { user: "zookeeper", port: 22, privateKey: pulumi.secret("test-key") } },
        {
            transformations: [
                (a) => {
                    if (a.name === e.name) return undefined; // the component itself
                    order.push(a.name);
                    ignored.set(a.name, a.opts.ignoreChanges);
                    const d = (a.opts.dependsOn ?? []) as pulumi.Resource[];
                    deps.set(a.name, Promise.all(d.map((r) => valueOf((r as pulumi.CustomResource).urn).then((u) => u.split("::").pop()!))));
                    return undefined;
                },
            ],
        },
    );
    assert.equal(await valueOf(c.appliedPhase), phase);
    await pulumi.runtime.disconnect();
    return Promise.all(order.map(async (name) => ({ name, ...inputs.get(name)!, dependsOn: await deps.get(name)!, ignoreChanges: ignored.get(name) })));
}

const remote = (script: string) => asRemoteCommand(script);
const hostOf = (d: Declared) => (d.inputs.connection?.value ?? d.inputs.connection)?.host;

describe("block-copy ensemble (mocks)", () => {
    it("declares per phase what that phase and the earlier ones run, chained in order", async () => {
        const e = bc("done").ensembles[0] as BlockCopyConfig;
        const want: Record<string, [string, string[]][]> = {
            precopy: [["kafka-bc-precopy", []]],
            blocked: [
                ["kafka-bc-precopy", []],
                ["kafka-bc-block-192.0.2.21", ["kafka-bc-precopy"]],
                ["kafka-bc-block-192.0.2.22", ["kafka-bc-block-192.0.2.21"]],
            ],
            "final-copy": [
                ["kafka-bc-precopy", []],
                ["kafka-bc-block-192.0.2.21", ["kafka-bc-precopy"]],
                ["kafka-bc-block-192.0.2.22", ["kafka-bc-block-192.0.2.21"]],
                ["kafka-bc-final-copy", ["kafka-bc-block-192.0.2.22"]],
            ],
        };
        want.switched = [
            ...want["final-copy"],
            ["kafka-bc-switch-192.0.2.21", ["kafka-bc-final-copy"]],
            ["kafka-bc-switch-192.0.2.22", ["kafka-bc-switch-192.0.2.21"]],
        ];
        want.done = want.switched;
        for (const phase of BLOCK_COPY_PHASES) {
            const got = await declare(phase);
            assert.deepEqual(
                got.map((d) => [d.name, d.dependsOn]),
                want[phase],
                phase,
            );
            const by = new Map(got.map((d) => [d.name, d]));
            // The copy runs locally by default, from the project directory, under bash.
            const pre = by.get("kafka-bc-precopy")!;
            assert.equal(pre.type, "command:local:Command");
            assert.equal(pre.inputs.create, renderCopyScript(e, "full"));
            assert.match(pre.inputs.create, /journal start .* --file "\$state\.journal"\n.* copy /);
            // Its delete (step back, destroy) stops the journal, locally too.
            assert.equal(pre.inputs.delete, renderJournalStopScript(e));
            assert.deepEqual(pre.inputs.interpreter, ["/bin/bash", "-c"]);
            if (by.has("kafka-bc-final-copy")) {
                const fin = by.get("kafka-bc-final-copy")!;
                assert.equal(fin.inputs.create, renderCopyScript(e, "incremental"));
                assert.match(fin.inputs.create, /--mtime-since "\$state" --journal "\$state\.journal"/);
                assert.equal(fin.inputs.delete, undefined);
            }
            for (const d of got.filter((x) => x.name.includes("-block-"))) {
                assert.equal(d.type, "command:remote:Command");
                assert.equal(d.inputs.create, remote(renderBlockScript(e)));
                assert.equal(d.inputs.delete, remote(renderUnblockScript(e)!));
            }
            for (const d of got.filter((x) => x.name.includes("-switch-"))) {
                assert.equal(d.inputs.create, remote(renderSwitchScript(e)));
                assert.equal(d.inputs.delete, undefined);
            }
            assert.deepEqual(
                got.filter((x) => x.type === "command:remote:Command").map(hostOf),
                got.filter((x) => x.type === "command:remote:Command").map((x) => (x.name.endsWith("22") ? "10.0.0.22" : "192.0.2.21")),
            );
        }
    });

    it("freezes the commands of earlier phases (an edited config must not run them again)", async () => {
        // `delete` too: a changed delete would update the command, which runs `create` again.
        const frozen = ["create", "update", "delete", "interpreter", "connection", "triggers"];
        const got = await declare("switched");
        assert.deepEqual(
            got.map((d) => [d.name, d.ignoreChanges]),
            [
                ["kafka-bc-precopy", frozen],
                ["kafka-bc-block-192.0.2.21", frozen],
                ["kafka-bc-block-192.0.2.22", frozen],
                ["kafka-bc-final-copy", frozen],
                ["kafka-bc-switch-192.0.2.21", undefined],
                ["kafka-bc-switch-192.0.2.22", undefined],
            ],
        );
        assert.deepEqual((await declare("precopy")).map((d) => d.ignoreChanges), [undefined]);
    });

    it("runs the copy on copy.runOn over SSH when configured", async () => {
        const extra = { copy: { runOn: { host: "192.0.2.30", sshHost: "10.0.0.30" }, sourceAuthEnv: "ZK_SRC_AUTH" } };
        const e = bc("final-copy", extra).ensembles[0] as BlockCopyConfig;
        const got = await declare("final-copy", extra);
        for (const name of ["kafka-bc-precopy", "kafka-bc-final-copy"]) {
            const d = got.find((x) => x.name === name)!;
            assert.equal(d.type, "command:remote:Command");
            assert.equal(hostOf(d), "10.0.0.30");
            assert.equal(d.inputs.create, remote(renderCopyScript(e, name.endsWith("precopy") ? "full" : "incremental")));
            assert.match(d.inputs.create, /--src-auth-env ZK_SRC_AUTH/);
            assert.match(d.inputs.create, /zkmigrate copy /);
            assert.match(d.inputs.create, /\/var\/lib\/zkmigrate\/kafka-bc-copy-state\.json/);
        }
        // The journal runs where the copy runs, with the copy's credentials, and stops there.
        const pre = got.find((x) => x.name === "kafka-bc-precopy")!;
        assert.match(pre.inputs.create, /zkmigrate journal start '[^']+\/kafka' --file "\$state\.journal" --src-auth-env ZK_SRC_AUTH/);
        assert.equal(pre.inputs.delete, remote(renderJournalStopScript(e)));
    });

    it("copy.journal false: no journal started or consumed", async () => {
        const extra = { copy: { journal: false } };
        const got = await declare("final-copy", extra);
        const by = new Map(got.map((d) => [d.name, d]));
        assert.doesNotMatch(by.get("kafka-bc-precopy")!.inputs.create, /journal start/);
        assert.doesNotMatch(by.get("kafka-bc-final-copy")!.inputs.create, /--journal/);
    });

    it("sits in the fleet next to the other procedures, with its connect strings and applied phase", async () => {
        const config = bc("blocked");
        const run = await runFleet(config, { "kafka-bc": { ...appliedOf(config.ensembles[0]), phase: "precopy" } });
        assert.deepEqual(run.applied["kafka-bc"], appliedOf(config.ensembles[0]));
        const out = run.outputs["kafka-bc"];
        assert.equal(out.procedure, "block-copy");
        assert.equal(out.appliedPhase, "blocked");
        assert.equal(out.connect, "192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka");
        assert.equal(out.newConnect, "192.0.2.11:2181,192.0.2.12:2181,192.0.2.13:2181/kafka");
        assert.deepEqual(out.restartOrder, []);
        assert.deepEqual(out.servers, []);
        assert.ok(run.byName.has("kafka-bc-block-192.0.2.22"));
    });
});
