// `zkmigrate plan`: the plan tables from the stack settings file alone (no engine, nothing
// dialled), in text, markdown and json, with --applied; its errors (usage 2, config/unsafe 1).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { EXIT, main } from "../../../cli/zkmigrate";
import { REPO, runCli } from "./helpers";

const DEV = readFileSync(join(REPO, "Pulumi.dev.yaml"), "utf8");
const dir = mkdtempSync(join(tmpdir(), "zkmigrate-plan-"));

/** Pulumi.dev.yaml with kafka-main's phase changed, written to a temp file. */
function stackAt(phase: string): string {
    const file = join(dir, `Pulumi.${phase}.yaml`);
    writeFileSync(file, DEV.replace(/(name: kafka-main\n\s+procedure: mitosis\n\s+phase: )separate/, `$1${phase}`));
    return file;
}

function appliedAt(phase: string): string {
    const file = join(dir, `applied-${phase}.json`);
    writeFileSync(file, JSON.stringify({ "kafka-main": { procedure: "mitosis", phase, cutover: [], servers: [1, 2, 3, 4, 5, 6] } }));
    return file;
}

describe("zkmigrate plan", () => {
    it("prints the golden text tables of the dev stack by default (Pulumi.<stack>.yaml of PULUMI_STACK)", async () => {
        const r = await runCli(["plan"], 60_000, { cwd: REPO });
        assert.equal(r.code, 0, r.stderr);
        const golden = ["kafka-main-01-separate.txt", "shared-01-hosts.txt"].map((f) => readFileSync(join(REPO, "tests/unit/golden/plan-table", f), "utf8"));
        assert.equal(r.stdout, golden.join("\n"));
    });

    it("--applied and --format markdown: the table of separate -> joined, whole server lines", async () => {
        const r = await main(["plan", "--stack-config", stackAt("joined"), "--applied", appliedAt("separate"), "--format", "markdown"]);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(r.stdout, /^### kafka-main \(mitosis\): `separate` → `joined`/);
        assert.match(r.stdout, /\| 1 \| 192\.0\.2\.6<br>`kafka-main-restart-6` \| myid 6 \| stop ZooKeeper \|/);
        assert.ok(r.stdout.includes("`server.1=192.0.2.1:2888:3888`<br>`server.2=192.0.2.2:2888:3888`<br>`server.3=192.0.2.3:2888:3888`<br>`server.4=192.0.2.4:2888:3888`<br>`server.5=192.0.2.5:2888:3888`"));
        assert.match(r.stdout, /\*\*Deleted \(the preview's deletes\)\*\*/);
        assert.match(r.stdout, /^### shared \(kubernetes\): `hosts` → `hosts`/m);
    });

    it("--format json (and --json): the tables as data", async () => {
        for (const args of [["--format", "json"], ["--json"]]) {
            const r = await main(["plan", "--stack-config", stackAt("joined"), "--applied", appliedAt("separate"), ...args]);
            assert.equal(r.exitCode, 0, r.stderr);
            const tables = JSON.parse(r.stdout) as { ensemble: string; rows: { myid?: number }[] }[];
            assert.deepEqual(tables.map((t) => t.ensemble), ["kafka-main", "shared"]);
            assert.deepEqual(tables[0].rows.map((x) => x.myid), [6, 4, 5, 1, 2, 3]);
        }
    });

    it("a config error: exit 1, every problem with its path, under --json as a JSON error", async () => {
        const file = stackAt("split");
        const r = await main(["plan", "--stack-config", file]);
        assert.equal(r.exitCode, EXIT.checkFailed);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /^zkmigrate plan: .*Pulumi\.split\.yaml: invalid zkmigrate configuration \(1 problem\):\n {2}- zkmigrate:ensembles\[kafka-main\]\.phase: a new ensemble starts at the first phase "separate"/);
        const j = await main(["plan", "--stack-config", file, "--applied", appliedAt("joined"), "--json"]);
        assert.equal(j.exitCode, EXIT.checkFailed);
        const doc = JSON.parse(j.stdout) as { ok: boolean; error: { kind: string; message: string } };
        assert.equal(doc.ok, false);
        assert.equal(doc.error.kind, "config");
        assert.match(doc.error.message, /"split" is 3 steps from the applied phase "joined": move one step per update \(next: "clients"\)/);
    });

    it("usage errors: exit 2, naming the option", async () => {
        const cases: [string[], RegExp][] = [
            [["plan", "--format", "html"], /--format must be text, markdown or json \(got "html"\)/],
            [["plan", "--stack-config", join(dir, "missing.yaml")], /--stack-config .*missing\.yaml: cannot read it \(ENOENT\)/],
            [["plan", "--stack-config", stackAt("joined"), "--applied", stackAt("joined")], /--applied .*: not JSON/],
            [["plan", "extra"], /plan takes no arguments, got 1 argument\(s\): "extra"/],
        ];
        for (const [args, re] of cases) {
            const r = await main(args);
            assert.equal(r.exitCode, EXIT.usage, `${args.join(" ")}: ${r.stderr}`);
            assert.match(r.stderr, re);
        }
    });

    it("a file that is no stack settings file", async () => {
        const file = join(dir, "Pulumi.empty.yaml");
        writeFileSync(file, "encryptionsalt: x\n");
        const r = await main(["plan", "--stack-config", file]);
        assert.equal(r.exitCode, EXIT.checkFailed);
        assert.match(r.stderr, /Pulumi\.empty\.yaml: has no `config:` map/);
    });
});

describe("zkmigrate plan reads a stack file as pulumi config set writes it", () => {
    it("scalar keys as strings (leaderProbe: \"false\", sshPort: \"22\") and a secure SSH key", async () => {
        const file = join(dir, "Pulumi.written.yaml");
        writeFileSync(file, DEV.replace("zkmigrate:leaderProbe: false", 'zkmigrate:leaderProbe: "false"\n  zkmigrate:sshPort: "22"\n  zkmigrate:sshPrivateKey:\n    secure: v1:abc'));
        const r = await main(["plan", "--stack-config", file]);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(r.stdout, /^kafka-main \(mitosis\): separate -> separate/);
    });
});

describe("zkmigrate plan and zkmigrate:sshKnownHosts", () => {
    it("reads a relative known_hosts beside the stack file (the project directory), not in the working directory", async () => {
        const project = mkdtempSync(join(tmpdir(), "zkmigrate-plan-kh-"));
        const inline = /  zkmigrate:sshKnownHosts: \|\n((?:    .*\n)+)/.exec(DEV)!;
        writeFileSync(join(project, "known_hosts"), inline[1].replace(/^    /gm, ""));
        const file = join(project, "Pulumi.kh.yaml");
        writeFileSync(file, DEV.replace(inline[0], "  zkmigrate:sshKnownHosts: known_hosts\n"));
        const r = await main(["plan", "--stack-config", file]);
        assert.equal(r.exitCode, 0, r.stderr);
        writeFileSync(join(project, "known_hosts"), "");
        const missing = await main(["plan", "--stack-config", file]);
        assert.equal(missing.exitCode, EXIT.checkFailed);
        assert.match(missing.stderr, /zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.hostKey: no SSH host key for 192\.0\.2\.1 \(known_hosts .*known_hosts has no entry for 192\.0\.2\.1/);
    });
});
