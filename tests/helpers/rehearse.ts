// Runs `npm run rehearse` as a child process, as the rehearsal tests do: the scenario, its JSON
// summary (the last line of stdout) and its report file; bounded (SIGINT, then SIGKILL).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after } from "node:test";

const REPO = path.resolve(__dirname, "../..");
/** Bounded: a run at the load of two lanes (the Kafka run took 11 min at load 10-16 alone). */
export const RUN_TIMEOUT_MS = 20 * 60_000;

export interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
    summary: Record<string, any>;
    report: Record<string, any>;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "zkmigrate-rehearse-test-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

export function rehearse(scenario: string | null, extra: string[] = [], timeoutMs = RUN_TIMEOUT_MS): Promise<Run> {
    const reportFile = path.join(tmp, `${scenario ?? ""}${extra.join("")}.json`);
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", "rehearsal/rehearse.ts", "--plain", ...(scenario ? ["--scenario", scenario] : []), ...extra, "--report", reportFile], {
            cwd: REPO,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => {
            stderr += d;
            process.stderr.write(d);
        });
        // Bounded: SIGINT first (the rehearsal cleans up), SIGKILL a minute later.
        const timer = setTimeout(() => {
            child.kill("SIGINT");
            setTimeout(() => child.kill("SIGKILL"), 60_000).unref();
        }, timeoutMs);
        child.on("error", reject);
        child.on("close", (code) => {
            clearTimeout(timer);
            const last = stdout.trim().split("\n").pop() ?? "";
            let summary: Record<string, any> = {};
            try {
                summary = JSON.parse(last);
            } catch {
                return reject(new Error(`the last line of the rehearsal's output is not its JSON summary: ${last}\n${stderr.slice(-3000)}`));
            }
            const report = fs.existsSync(reportFile) ? JSON.parse(fs.readFileSync(reportFile, "utf8")) : {};
            console.log(stdout);
            resolve({ code, stdout, stderr, summary, report });
        });
    });
}


/** Nothing of the fleet is left: its namespaces, its state, its processes. */
export function assertCleanedUp(fleet: string) {
    assert.ok(fleet, "the report names its fleet");
    const netns = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    assert.doesNotMatch(netns, new RegExp(`zkm\\.${fleet}\\.`), `namespaces of fleet ${fleet} are left: ${netns}`);
    assert.ok(!fs.existsSync(path.join(process.env.ZKMIGRATE_RUN_DIR ?? "/run/zkmigrate", fleet)), `the state of fleet ${fleet} is left`);
    const procs = spawnSync("pgrep", ["-af", `/run/zkmigrate/${fleet}/`], { encoding: "utf8" }).stdout.trim();
    assert.equal(procs, "", `processes of fleet ${fleet} are left:\n${procs}`);
}
