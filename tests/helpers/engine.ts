// The real Pulumi engine for a test suite (tests/engine, tests/policy): found where
// tools/pulumi/install.sh puts it (else PATH), with its offline environment in a temp dir that
// the suite removes. A missing engine or plugin fails every test of the suite, naming the fix.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before } from "node:test";
import { PulumiCommand } from "@pulumi/pulumi/automation";
import { engineCandidates, engineEnv, findEngine, isExecutable } from "../../rehearsal/engine";

export const PULUMI_HOME = process.env.PULUMI_HOME || path.join(os.homedir(), ".pulumi");
export const COMMAND_VERSION: string = require("@pulumi/command/package.json").version;

export interface Engine {
    /** The directory holding `pulumi` and `pulumi-language-nodejs`. */
    bin: string;
    command: PulumiCommand;
    env: Record<string, string>;
    tmp: string;
}

export interface EngineOptions {
    /** Temp dir prefix and secrets passphrase, e.g. "zkmigrate-engine". */
    label: string;
    /** What to run when something is missing. */
    installHint: string;
    /** More prerequisites of the suite (assert, naming installHint). */
    check?: () => void;
}

async function setUpEngine(o: EngineOptions): Promise<Engine> {
    const bin = findEngine();
    if (!bin) assert.fail(`the Pulumi engine is not installed (no pulumi and pulumi-language-nodejs in ${engineCandidates()[0]} or on PATH): ${o.installHint}`);
    const plugin = path.join(PULUMI_HOME, "plugins", `resource-command-v${COMMAND_VERSION}`, "pulumi-resource-command");
    assert.ok(isExecutable(plugin), `the command provider plugin ${COMMAND_VERSION} is not installed (${plugin} is missing): ${o.installHint}`);
    o.check?.();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${o.label}-`));
    fs.mkdirSync(path.join(tmp, "state"));
    const env = { ...engineEnv(bin, path.join(tmp, "state"), `${o.label}-test`), PULUMI_HOME };
    // The Automation API runs `pulumi` with process.env plus a workspace's envVars; the version
    // check runs before any workspace exists, so the engine must be on this process's PATH too.
    for (const [k, v] of Object.entries(env)) process.env[k] = v;
    return { bin, command: await PulumiCommand.get({ root: path.dirname(bin) }), env, tmp };
}

/**
 * Registers `before` (set the engine up) and `after` (remove its temp dir) in the current suite.
 * The getter throws the setup's error, so that each test fails with it.
 */
export function useEngine(o: EngineOptions): () => Engine {
    let engine: Engine | undefined;
    let setupError: unknown;
    before(async () => {
        try {
            engine = await setUpEngine(o);
        } catch (err) {
            setupError = err;
        }
    });
    after(() => {
        if (engine) fs.rmSync(engine.tmp, { recursive: true, force: true });
    });
    return () => {
        if (!engine) throw setupError;
        return engine;
    };
}
