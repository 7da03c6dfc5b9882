// The policy pack under the real Pulumi engine (tools/pulumi/install.sh: CLI v3.276.0 and the
// upstream language host, which starts the pack through RunPlugin), offline, local file backend:
//   1. this repo's program on the dev stack config: `pulumi preview --policy-pack policy` passes,
//      every policy of the pack ran, none reported anything;
//   2. a small stack with deliberate violations (two restarts of one ensemble that can run at
//      once, an SSH key in a remote command's environment): the preview reports both, mandatory,
//      and fails.
// A missing engine or a pack without its node_modules fails these tests (never a skip).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { LocalWorkspace, type EngineEvent } from "@pulumi/pulumi/automation";
import { REPO, copyProject, linkNodeModules } from "../../rehearsal/engine";
import { useEngine } from "../helpers/engine";

const PACK = path.join(REPO, "policy");
const INSTALL_HINT = "run tools/setup.sh (it builds the Pulumi engine from Go modules and installs the policy pack's node_modules)";
const TIMEOUT = 5 * 60_000;
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key: a preview connects to nothing\n-----END OPENSSH PRIVATE KEY-----\n";

/** The policy events of an operation. The engine sends the policy's description, then the message. */
function policyEvents() {
    const violations: { policy: string; level: string; message: string; urn: string }[] = [];
    const onEvent = (e: EngineEvent) => {
        const v = e.policyEvent;
        if (!v) return;
        const lines = v.message.split("\n").filter((l) => l.trim() !== "");
        violations.push({ policy: v.policyName, level: v.enforcementLevel, message: lines[lines.length - 1] ?? "", urn: v.resourceUrn ?? "" });
    };
    return { violations, onEvent };
}

describe("the policy pack under the real engine (pulumi preview --policy-pack policy)", () => {
    const need = useEngine({
        label: "zkmigrate-policy-engine",
        installHint: INSTALL_HINT,
        check: () =>
            assert.ok(fs.existsSync(path.join(PACK, "node_modules", "@pulumi", "policy")), `the policy pack's dependencies are not installed (${PACK}/node_modules): ${INSTALL_HINT}`),
    });

    it("passes this repo's program on the dev stack", { timeout: TIMEOUT }, async () => {
        const e = need();
        const dir = path.join(e.tmp, "zkmigrate");
        copyProject(dir);
        fs.copyFileSync(path.join(REPO, "Pulumi.dev.yaml"), path.join(dir, "Pulumi.dev.yaml"));
        const stack = await LocalWorkspace.createStack({ stackName: "dev", workDir: dir }, { pulumiCommand: e.command, envVars: e.env });
        await stack.setConfig("zkmigrate:leaderProbe", { value: "false" });
        await stack.setConfig("zkmigrate:sshPrivateKey", { value: KEY, secret: true });
        const events = policyEvents();
        const t0 = Date.now();
        const preview = await stack.preview({ policyPacks: [PACK], onEvent: events.onEvent });
        console.log(`policy pack on the dev stack: preview in ${((Date.now() - t0) / 1000).toFixed(1)} s\n${preview.stdout}`);
        assert.deepEqual(events.violations, [], preview.stdout);
        // The pack was loaded and ran: the CLI lists it with its version from policy/package.json.
        assert.match(preview.stdout, /Policies:\s*\n\s*✅ zkmigrate@v0\.1\.0 \(local: /, preview.stdout);
    });

    it("reports deliberate violations, mandatory, and the preview fails", { timeout: TIMEOUT }, async () => {
        const e = need();
        const dir = path.join(e.tmp, "violations");
        fs.mkdirSync(dir, { recursive: true });
        const files: Record<string, string> = {
            "Pulumi.yaml": "name: policy-violations\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n",
            "package.json": JSON.stringify({ name: "policy-violations", private: true, main: "index.ts" }),
            "tsconfig.json": JSON.stringify({
                compilerOptions: { target: "ES2022", module: "commonjs", strict: true, esModuleInterop: true, skipLibCheck: true, types: ["node"] },
                files: ["index.ts"],
            }),
            // An ensemble as components/ declares it, with two mistakes: the second restart does not
            // wait for the first, and one command carries the SSH key in its environment.
            "index.ts": [
                `import * as pulumi from "@pulumi/pulumi";`,
                `import * as command from "@pulumi/command";`,
                `const key = new pulumi.Config("demo").requireSecret("key");`,
                `class Ensemble extends pulumi.ComponentResource {`,
                `    constructor(name: string) {`,
                `        super("zkmigrate:mitosis:Ensemble", name, {});`,
                `        const connection = (host: string) => ({ host, user: "zookeeper", privateKey: key });`,
                `        new command.remote.Command(\`\${name}-restart-1\`, { connection: connection("192.0.2.1"), create: "true", update: "true" }, { parent: this });`,
                `        new command.remote.Command(\`\${name}-restart-2\`, { connection: connection("192.0.2.2"), create: "true", update: "true" }, { parent: this });`,
                `        new command.remote.Command(\`\${name}-debug-1\`, { connection: connection("192.0.2.1"), create: "env", environment: { SSH_KEY: ${JSON.stringify(KEY)} } }, { parent: this });`,
                `        this.registerOutputs({});`,
                `    }`,
                `}`,
                `new Ensemble("kafka-main");`,
                `export const ensembles = { "kafka-main": { procedure: "mitosis", restartOrder: ["1: follower", "2: leader last"], servers: [] } };`,
                ``,
            ].join("\n"),
        };
        for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
        linkNodeModules(dir);
        const stack = await LocalWorkspace.createStack({ stackName: "dev", workDir: dir }, { pulumiCommand: e.command, envVars: e.env });
        await stack.setConfig("demo:key", { value: KEY, secret: true });
        const events = policyEvents();
        const t0 = Date.now();
        let failure: Error | undefined;
        try {
            await stack.preview({ policyPacks: [PACK], onEvent: events.onEvent });
        } catch (err) {
            failure = err as Error;
        }
        console.log(`policy pack on a stack with violations: preview in ${((Date.now() - t0) / 1000).toFixed(1)} s\n${failure?.message ?? ""}`);
        assert.ok(failure, "the preview must fail on mandatory violations");
        const got = events.violations.map((v) => `${v.level} ${v.policy} (${v.urn.split("::").pop()}): ${v.message}`).sort();
        assert.deepEqual(got, [
            'mandatory remote-command-key-secret (kafka-main-debug-1): the SSH private key appears in environment.SSH_KEY: pass it only as connection.privateKey (scripts, environment and triggers are shown in previews and logs)',
            'mandatory zookeeper-restarts-one-at-a-time (kafka-main-restart-2): ensemble "kafka-main": the restart of 2 does not depend on the restart of 1 before it (kafka-main-restart-1): the two can run at once',
        ]);
        assert.match(failure.message, /zookeeper-restarts-one-at-a-time/);
        assert.match(failure.message, /\[mandatory\]/);
        assert.doesNotMatch(failure.message, /not a real key/);
    });
});
