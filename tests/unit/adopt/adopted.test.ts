// `zkmigrate:adopted`: records rebuilt by `zkmigrate adopt` stand in only where the stack has no
// applied record of its own; one that contradicts the stack's is refused with its config path.
// And the command line of `zkmigrate adopt` (usage errors before any SSH).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { EXIT, main } from "../../../cli/zkmigrate";
import { appliedOf, checkConfig, ConfigError, loadConfig, mergeAdopted, validateTransitions } from "../../../src/config";
import { devConfigAt, devFleet, ROOT } from "../../fixtures";

const at = (phase: string) => devFleet({ "kafka-main": phase });
const record = (phase: string) => appliedOf(at(phase).ensembles[0]);

describe("zkmigrate:adopted", () => {
    const ensembles = at("clients").ensembles;

    it("stands in for a missing applied record, and the next step is then checked against it", () => {
        const m = mergeAdopted({ "kafka-main": record("joined") }, {}, ensembles);
        assert.deepEqual(m.issues, []);
        assert.deepEqual(m.applied["kafka-main"], record("joined"));
        assert.deepEqual(validateTransitions(ensembles, m.applied), [], "joined -> clients is one step");
        // Without it, the stack would take kafka-main for a new ensemble.
        assert.match(validateTransitions(ensembles, {})[0].reason, /a new ensemble starts at the first phase "separate"/);
    });

    it("the stack's own record wins: the same record is a leftover, another one is refused with the key's path", () => {
        const same = mergeAdopted({ "kafka-main": record("joined") }, { "kafka-main": record("joined") }, ensembles);
        assert.deepEqual(same.issues, []);
        assert.deepEqual(same.leftovers, ["kafka-main"]);
        // An older record (without `running`) that says the same is the same.
        const { running: _r, ...old } = record("joined");
        assert.deepEqual(mergeAdopted({ "kafka-main": record("joined") }, { "kafka-main": old }, ensembles).leftovers, ["kafka-main"]);
        const other = mergeAdopted({ "kafka-main": record("joined") }, { "kafka-main": record("clients") }, ensembles);
        assert.deepEqual(other.applied["kafka-main"], record("clients"));
        assert.deepEqual(other.issues, [
            {
                path: "zkmigrate:adopted.kafka-main",
                reason:
                    'the stack has its own applied record of "kafka-main" (phase clients), which this adopted record (phase joined) contradicts; ' +
                    "adoption is only for a stack without one: remove zkmigrate:adopted.kafka-main (pulumi config rm --path 'zkmigrate:adopted[\"kafka-main\"]')",
            },
        ]);
    });

    const bad: [string, unknown, { path: string; reason: RegExp }][] = [
        ["not an object", ["x"], { path: "zkmigrate:adopted", reason: /^expected an object of applied records by ensemble name/ }],
        ["an unknown ensemble", { nope: record("joined") }, { path: "zkmigrate:adopted.nope", reason: /^no ensemble named "nope" in zkmigrate:ensembles/ }],
        ["not a record", { "kafka-main": { phase: "joined" } }, { path: "zkmigrate:adopted.kafka-main", reason: /^not an applied record \(procedure, phase/ }],
        ["another procedure", { "kafka-main": { ...record("joined"), procedure: "kubernetes" } }, { path: "zkmigrate:adopted.kafka-main.procedure", reason: /^"kubernetes" is not the ensemble's procedure "mitosis"/ }],
        ["an unknown phase", { "kafka-main": { ...record("joined"), phase: "jointed" } }, { path: "zkmigrate:adopted.kafka-main.phase", reason: /^unknown mitosis phase "jointed" \(one of: separate, joined/ }],
        ["a field of the wrong type", { "kafka-main": { ...record("joined"), cutover: "none" } }, { path: "zkmigrate:adopted.kafka-main", reason: /^not an applied record: a field has the wrong type/ }],
    ];
    for (const [name, value, want] of bad) {
        it(`refused: ${name}`, () => {
            const m = mergeAdopted(value, {}, ensembles);
            assert.equal(m.issues.length, 1, JSON.stringify(m.issues));
            assert.equal(m.issues[0].path, want.path);
            assert.match(m.issues[0].reason, want.reason);
        });
    }

    it("is a known key of the stack config (a JSON string from `pulumi config set` too), and not an error by itself", () => {
        const raw = { ...devConfigAt({ "kafka-main": "clients" }), adopted: JSON.stringify({ "kafka-main": record("joined") }) };
        assert.deepEqual(checkConfig(raw).issues, []);
        assert.throws(() => loadConfig({ ...raw, adoptd: 1 }), (e: ConfigError) => /zkmigrate:adoptd: unknown key \(known: .*defaults, ensembles, adopted\)/.test(e.message));
    });
});

describe("zkmigrate plan with zkmigrate:adopted", () => {
    const dir = mkdtempSync(join(tmpdir(), "zkmigrate-adopted-"));
    const dev = readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8").replace(/(name: kafka-main\n\s+procedure: mitosis\n\s+phase: )separate/, "$1clients");

    it("plans from the adopted record (joined -> clients: brokers only, no server restarts)", async () => {
        const file = join(dir, "Pulumi.adopted.yaml");
        writeFileSync(file, dev.replace("config:\n", `config:\n  zkmigrate:adopted:\n    kafka-main: ${JSON.stringify(record("joined"))}\n`));
        const r = await main(["plan", "--stack-config", file, "--format", "json"]);
        assert.equal(r.exitCode, 0, r.stderr);
        const tables = JSON.parse(r.stdout) as { ensemble: string; from: string; to: string; rows: { action?: string }[] }[];
        const t = tables.find((x) => x.ensemble === "kafka-main")!;
        assert.deepEqual([t.from, t.to], ["joined", "clients"]);
        assert.ok(!JSON.stringify(t.rows).includes("restart ZooKeeper"), JSON.stringify(t.rows));
    });

    it("a record contradicting --applied: exit 1 naming the key", async () => {
        const file = join(dir, "Pulumi.contra.yaml");
        writeFileSync(file, dev.replace("config:\n", `config:\n  zkmigrate:adopted:\n    kafka-main: ${JSON.stringify(record("joined"))}\n`));
        const applied = join(dir, "applied.json");
        writeFileSync(applied, JSON.stringify({ "kafka-main": record("clients") }));
        const r = await main(["plan", "--stack-config", file, "--applied", applied]);
        assert.equal(r.exitCode, EXIT.checkFailed);
        assert.match(r.stderr, /zkmigrate:adopted\.kafka-main: the stack has its own applied record of "kafka-main" \(phase clients\)/);
    });
});

describe("zkmigrate adopt: the command line", () => {
    const stack = join(ROOT, "Pulumi.dev.yaml");
    const cases: [string[], RegExp][] = [
        [["adopt", "--stack-config", stack], /the servers' host keys must be checked: give --known-hosts FILE \(or --insecure-host-keys on a network you trust\)/],
        [["adopt", "--stack-config", stack, "--known-hosts", "/dev/null", "--insecure-host-keys"], /give --known-hosts or --insecure-host-keys, not both/],
        [["adopt", "--stack", "dev", "--stack-config", stack, "--insecure-host-keys"], /give --stack or --stack-config, not both/],
        [["adopt", "--stack-config", stack, "--insecure-host-keys", "--ensemble", "nope"], /--ensemble nope: no such ensemble in .*Pulumi\.dev\.yaml \(ensembles: kafka-main, shared\)/],
        [["adopt", "--stack-config", stack, "--insecure-host-keys", "--phase", "joined"], /--phase joined: name the ensemble \(--phase ENSEMBLE=joined\): 2 ensembles are adopted/],
        [["adopt", "--stack-config", stack, "--insecure-host-keys", "--ensemble", "kafka-main", "--phase", "shared=joined"], /--phase shared=joined: no ensemble "shared" is adopted \(kafka-main\)/],
        [["adopt", "--stack-config", stack, "--known-hosts", join(ROOT, "no-such-file")], /--known-hosts .*no-such-file: cannot read it \(ENOENT\)/],
    ];
    for (const [argv, want] of cases) {
        it(argv.slice(1).join(" ").replace(ROOT, "."), async () => {
            const r = await main(argv);
            assert.equal(r.exitCode, EXIT.usage, r.stderr);
            assert.match(r.stderr, want);
            assert.match(r.stderr, /Run 'zkmigrate adopt --help'/);
        });
    }

    it("a kubernetes ensemble named with --ensemble is refused with the reason (nothing is dialled)", async () => {
        const r = await main(["adopt", "--stack-config", stack, "--insecure-host-keys", "--ensemble", "shared"]);
        assert.equal(r.exitCode, EXIT.checkFailed);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /^zkmigrate adopt: .*Pulumi\.dev\.yaml: nothing adopted \(each ensemble must be\):\nshared \(kubernetes\): not adopted\n {2}the kubernetes procedure's phases live in the cluster/);
    });
});
