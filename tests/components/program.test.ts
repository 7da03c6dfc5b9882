// index.ts under Pulumi mocks: config read from Pulumi config, the applied state read back from
// the stack's own `applied` output, and refusals raised before any resource is declared.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { appliedOf, loadConfig } from "../../src/config";
import { devConfigAt, TEST_PRIVATE_KEY } from "../fixtures";
import { valueOf, type Recorded } from "./harness";

/** Runs index.ts with `config` (by key, without namespace) and `applied` as the stack's last output. */
async function runProgram(config: Record<string, unknown>, applied: unknown, secretKeys = ["zkmigrate:sshPrivateKey"]) {
    const resources: Recorded[] = [];
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(config)) {
        flat[`zkmigrate:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    }
    pulumi.runtime.setAllConfig(flat, secretKeys);
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                resources.push({ type: args.type, name: args.name, inputs: args.inputs });
                if (args.type === "pulumi:pulumi:StackReference") {
                    return { id: args.inputs.name, state: { outputs: applied === undefined ? {} : { applied }, secretOutputNames: [] } };
                }
                return { id: `${args.name}-id`, state: args.inputs };
            },
            call: (args) => args.inputs,
        },
        "zkmigrate",
        "dev",
        false,
        "organization",
    );
    const path = require.resolve("../../index");
    delete require.cache[path];
    let outcome: { outputs?: any; error?: Error };
    try {
        const outputs = await (require(path) as Promise<any>);
        // Resolving the outputs waits until every resource was registered.
        outcome = { outputs: { applied: await valueOf(outputs.applied) } };
        // Let the outstanding registrations drain before the next run replaces the mocks.
        await pulumi.runtime.disconnect();
    } catch (err) {
        outcome = { error: err as Error };
    }
    return { resources, ...outcome };
}

describe("index.ts (mocks)", () => {
    const base = { ...devConfigAt({}), leaderProbe: false, sshPrivateKey: TEST_PRIVATE_KEY };

    it("reads its own stack's applied state through a StackReference to itself", async () => {
        const r = await runProgram(base, undefined);
        assert.equal(r.error, undefined, String(r.error));
        const ref = r.resources.find((x) => x.type === "pulumi:pulumi:StackReference");
        assert.ok(ref);
        assert.equal(ref.inputs.name, "organization/zkmigrate/dev");
        assert.ok(r.resources.some((x) => x.name === "kafka-main-restart-4"));
        assert.equal(r.outputs.applied["kafka-main"].phase, "separate");
    });

    it("refuses a phase jump read back from the stack, declaring nothing but the reference", async () => {
        const applied = { "kafka-main": { procedure: "mitosis", phase: "clients", cutover: [], servers: [1, 2, 3, 4, 5, 6] } };
        const r = await runProgram({ ...base, ...devConfigAt({ "kafka-main": "split" }), leaderProbe: false, sshPrivateKey: TEST_PRIVATE_KEY }, applied);
        assert.ok(r.error instanceof pulumi.RunError, `expected a RunError, got ${String(r.error)}`);
        assert.match(r.error.message, /zkmigrate:ensembles\[kafka-main\]\.phase: "split" is 2 steps from the applied phase "clients"/);
        assert.deepEqual(
            r.resources.map((x) => x.type),
            ["pulumi:pulumi:StackReference"],
        );
    });

    it("refuses a plain-text SSH key", async () => {
        const r = await runProgram(base, undefined, []);
        assert.ok(r.error instanceof pulumi.RunError);
        assert.match(r.error.message, /zkmigrate:sshPrivateKey: the SSH private key must be a secret/);
        // Only the reference: the applied state is read before refusing, so that the steps are
        // checked in the same pass.
        assert.deepEqual(
            r.resources.map((x) => x.type),
            ["pulumi:pulumi:StackReference"],
        );
    });

    it("reports schema, semantic and transition problems in one pass, each path with the ensemble's name", async () => {
        const applied = { "kafka-main": { procedure: "mitosis", phase: "clients", cutover: [], servers: [1, 2, 3, 4, 5, 6] } };
        const raw = devConfigAt({ "kafka-main": "split" }) as { ensembles: any[] };
        raw.ensembles[0].activeTargets = [4, 5, 6]; // semantic: more than n-1 active targets
        raw.ensembles[1].cutovr = [11]; // schema: an unknown key
        const r = await runProgram({ ...base, ...raw, sshPort: "twenty-two", leaderProbe: false, sshPrivateKey: TEST_PRIVATE_KEY }, applied);
        assert.ok(r.error instanceof pulumi.RunError, String(r.error));
        const paths = [...r.error.message.matchAll(/^ {2}- ([^:]+:[^:]+): /gm)].map((m) => m[1]);
        assert.deepEqual(paths, ["zkmigrate:sshPort", "zkmigrate:ensembles[kafka-main].activeTargets", "zkmigrate:ensembles[kafka-main].phase", "zkmigrate:ensembles[shared]"]);
        assert.match(r.error.message, /^invalid zkmigrate configuration \(4 problems\):/);
    });

    it("refuses a mistyped scalar key with its name", async () => {
        const r = await runProgram({ ...base, sshPort: "twenty-two" }, undefined);
        assert.ok(r.error instanceof pulumi.RunError);
        assert.match(r.error.message, /zkmigrate:sshPort: /);
    });

    it("without host keys: refused at each host's hostKey path; with sshHostKeyCheck false it runs unverified, with a warning naming the hosts", async () => {
        const { sshKnownHosts: _, ...noKeys } = base as Record<string, unknown>;
        const refused = await runProgram(noKeys, undefined);
        assert.match(String(refused.error?.message), /zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.hostKey: no SSH host key for 192\.0\.2\.1/);
        assert.equal(refused.resources.filter((x) => x.type === "command:remote:Command").length, 0, "nothing declared");

        const warnings: string[] = [];
        const log = pulumi.log as { warn: (m: string) => Promise<void> };
        const warn = log.warn;
        log.warn = async (m: string) => void warnings.push(m);
        try {
            const r = await runProgram({ ...noKeys, sshHostKeyCheck: false }, undefined);
            assert.equal(r.error, undefined, String(r.error));
            const remote = r.resources.filter((x) => x.type === "command:remote:Command");
            assert.ok(remote.length > 0);
            for (const c of remote) assert.equal((c.inputs.connection.value ?? c.inputs.connection).hostKey, undefined, c.name);
        } finally {
            log.warn = warn;
        }
        assert.equal(warnings.filter((w) => /^zkmigrate:sshHostKeyCheck is false: SSH to 192\.0\.2\.1, .* accepts ANY host key/.test(w)).length, 1, warnings.join("\n"));
    });
});

describe("index.ts with zkmigrate:adopted (mocks)", () => {
    const at = (phase: string) => ({ ...devConfigAt({ "kafka-main": phase }), leaderProbe: false, sshPrivateKey: TEST_PRIVATE_KEY });
    const record = (phase: string) => appliedOf(loadConfig(at(phase)).ensembles[0]);

    it("a stack without outputs takes the adopted record: joined stays joined, and that is what it writes", async () => {
        const r = await runProgram({ ...at("joined"), adopted: { "kafka-main": record("joined") } }, undefined);
        assert.equal(r.error, undefined, String(r.error));
        assert.deepEqual(r.outputs.applied["kafka-main"], record("joined"));
        // Without the record the same config is refused: a new ensemble starts at separate.
        const bare = await runProgram(at("joined"), undefined);
        assert.match(String(bare.error?.message), /zkmigrate:ensembles\[kafka-main\]\.phase: a new ensemble starts at the first phase "separate"/);
    });

    it("an adopted record that contradicts the stack's own is refused, naming the key", async () => {
        const r = await runProgram({ ...at("clients"), adopted: { "kafka-main": record("joined") } }, { "kafka-main": record("clients") });
        assert.ok(r.error instanceof pulumi.RunError, String(r.error));
        assert.match(r.error.message, /zkmigrate:adopted\.kafka-main: the stack has its own applied record of "kafka-main" \(phase clients\)/);
        assert.deepEqual(r.resources.map((x) => x.type), ["pulumi:pulumi:StackReference"]);
    });
});
