// The example CI workflow (examples/github-actions/zkmigrate-phase.yml), its steps run locally: the
// `run:` text of the pull request job's `plan` and `preview` steps, as the file has it, with bash
// in a copy of the project, against a local stack (file backend, passphrase secrets) of the dev
// config, with the real engine and the policy pack:
//   1. a valid phase: the plan step writes the plan table (markdown) for the comment, status 0;
//      the preview with the policy pack passes and prints the same table;
//   2. a phase jump: the plan step records the refusal for the comment (status 1), the preview
//      fails with the same reason.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { parse } from "yaml";
import { REPO, copyProject } from "../../rehearsal/engine";
import { useEngine } from "../helpers/engine";

const WORKFLOW = path.join(REPO, "examples", "github-actions", "zkmigrate-phase.yml");
const INSTALL_HINT = "run tools/setup.sh (it builds the Pulumi engine from Go modules and installs the policy pack's node_modules)";
const TIMEOUT = 10 * 60_000;
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key: a preview connects to nothing\n-----END OPENSSH PRIVATE KEY-----\n";

interface Step {
    id?: string;
    name?: string;
    run?: string;
    uses?: string;
}

function stepsOf(): Step[] {
    const doc = parse(fs.readFileSync(WORKFLOW, "utf8")) as { jobs: Record<string, { steps: Step[] }> };
    return doc.jobs.preview.steps;
}

/** Runs one step's `run:` with bash in `cwd`, as a runner would (bash -e), bounded. */
function runStep(step: Step, cwd: string, env: Record<string, string>) {
    assert.ok(step.run, `step ${step.id} has a run: script`);
    assert.doesNotMatch(step.run, /\$\{\{/, `step ${step.id} uses only environment variables, so that it runs the same here`);
    const output = path.join(cwd, `github-output-${step.id}`);
    fs.writeFileSync(output, "");
    const r = spawnSync("bash", ["-e", "-c", step.run], { cwd, env: { ...process.env, ...env, GITHUB_OUTPUT: output }, encoding: "utf8", timeout: TIMEOUT - 30_000, killSignal: "SIGKILL" });
    const outputs = Object.fromEntries(
        fs
            .readFileSync(output, "utf8")
            .split("\n")
            .filter((l) => l.includes("="))
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, outputs };
}

describe("the example CI workflow's steps, locally (examples/github-actions/zkmigrate-phase.yml)", () => {
    const need = useEngine({
        label: "zkmigrate-ci-workflow",
        installHint: INSTALL_HINT,
        check: () => assert.ok(fs.existsSync(path.join(REPO, "policy", "node_modules", "@pulumi", "policy")), `the policy pack's dependencies are not installed: ${INSTALL_HINT}`),
    });

    it("the pull request job: the plan table for the comment, and the preview with the policy pack", { timeout: 2 * TIMEOUT }, async () => {
        const e = need();
        const steps = stepsOf();
        const plan = steps.find((s) => s.id === "plan");
        const preview = steps.find((s) => s.id === "preview");
        assert.ok(plan && preview, "the workflow has the steps plan and preview");
        assert.ok(steps.some((s) => s.uses?.startsWith("pulumi/actions@")), "the CLI comes from Pulumi's own action");

        // The project as a checkout has it: the program, the CLI, the policy pack (its node_modules linked).
        const dir = path.join(e.tmp, "checkout");
        copyProject(dir);
        fs.cpSync(path.join(REPO, "cli"), path.join(dir, "cli"), { recursive: true });
        fs.symlinkSync(path.join(REPO, "policy"), path.join(dir, "policy"), "dir");
        const stackFile = path.join(dir, "Pulumi.ci.yaml");
        fs.copyFileSync(path.join(REPO, "Pulumi.dev.yaml"), stackFile);
        const stack = await LocalWorkspace.createStack({ stackName: "ci", workDir: dir }, { pulumiCommand: e.command, envVars: e.env });
        await stack.setConfig("zkmigrate:sshPrivateKey", { value: KEY, secret: true });
        const env = { ...e.env, STACK: "ci" };

        // 1. The dev config as it is: a new stack, nothing applied.
        const p1 = runStep(plan, dir, env);
        assert.equal(p1.code, 0, p1.stderr);
        assert.equal(p1.outputs.status, "0", p1.stderr + fs.readFileSync(path.join(dir, "plan-error.txt"), "utf8"));
        const comment = fs.readFileSync(path.join(dir, "comment.md"), "utf8");
        assert.match(comment, /^## zkmigrate: the update of stack `ci`\n\n### kafka-main \(mitosis\): `separate` → `separate`\n/);
        assert.match(comment, /\| 1 \| 192\.0\.2\.1<br>`kafka-main-preflight-1` \| myid 1 \| preflight, read-only/);
        assert.match(comment, /^### shared \(kubernetes\): `hosts` → `hosts`$/m);

        const t0 = Date.now();
        const v1 = runStep(preview, dir, env);
        console.log(`ci workflow: preview with the policy pack in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        assert.equal(v1.code, 0, v1.stdout + v1.stderr);
        const out = fs.readFileSync(path.join(dir, "preview.txt"), "utf8");
        // The pack ran: with --diff the CLI lists it as "Policy Packs run:" (without --diff, "Policies: ✅ zkmigrate@v0.1.0").
        assert.match(out, /Policy Packs run:\n\s+Name\s+Version\n\s+zkmigrate\|local\|policy\s+0\.1\.0/, out.slice(-2000));
        assert.match(out, /kafka-main \(mitosis\): separate -> separate/, "the preview prints the plan table");

        // 2. A phase jump in the pull request: the comment carries the refusal, the preview fails.
        fs.writeFileSync(stackFile, fs.readFileSync(stackFile, "utf8").replace(/(name: kafka-main\n\s+procedure: mitosis\n\s+phase: )separate/, "$1split"));
        const p2 = runStep(plan, dir, env);
        assert.equal(p2.code, 0, "the plan step records the refusal for the comment");
        assert.equal(p2.outputs.status, "1");
        assert.match(fs.readFileSync(path.join(dir, "comment.md"), "utf8"), /zkmigrate:ensembles\[kafka-main\]\.phase: a new ensemble starts at the first phase "separate"/);
        const v2 = runStep(preview, dir, env);
        assert.notEqual(v2.code, 0, "the preview fails");
        assert.match(fs.readFileSync(path.join(dir, "preview.txt"), "utf8"), /zkmigrate:ensembles\[kafka-main\]\.phase: a new ensemble starts at the first phase "separate"/);
        assert.doesNotMatch(fs.readFileSync(path.join(dir, "preview.txt"), "utf8"), /PromiseRejectionHandledWarning/);
        await stack.workspace.removeStack("ci", { force: true }).catch(() => undefined);
    });
});
