// The plan table (src/plan-table.ts) of every update of both procedures of the example stack
// (Pulumi.dev.yaml), each phase from the one before, compared with golden text files under
// tests/unit/golden/plan-table/. After a deliberate change of the table, rewrite them with
//   UPDATE_GOLDEN=1 node --import tsx --test tests/unit/plan-table.test.ts
// and review the diff: it is what a reviewer of a phase pull request will read.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config";
import { planFleet } from "../../src/model";
import { declaredBefore, planTable, renderJson, renderMarkdown, renderText, type PlanTable } from "../../src/plan-table";
import type { AppliedState } from "../../src/types";
import { devConfigAt, ROOT } from "../fixtures";

const GOLDEN = join(ROOT, "tests", "unit", "golden", "plan-table");

const MITOSIS = ["separate", "joined", "clients", "prepared", "split", "source-restarted", "done"];
/** The kubernetes updates: phase and cutover, one server per `pods` update. */
const KUBERNETES: { phase: string; cutover: number[] }[] = [
    { phase: "hosts", cutover: [] },
    { phase: "services", cutover: [] },
    { phase: "clients", cutover: [] },
    { phase: "peers", cutover: [] },
    { phase: "pods", cutover: [11] },
    { phase: "pods", cutover: [11, 12] },
    { phase: "pods", cutover: [11, 12, 13] },
    { phase: "done", cutover: [11, 12, 13] },
];

/** The table of one ensemble's update from `from` (nothing applied for the first phase) to `to`. */
function tableOf(name: string, to: { phase: string; cutover: number[] }, from?: { phase: string; cutover: number[] }): PlanTable {
    const config = loadConfig(devConfigAt({ [name]: to.phase }, to.cutover));
    const e = config.ensembles.find((x) => x.name === name)!;
    const servers = name === "kafka-main" ? [1, 2, 3, 4, 5, 6] : [11, 12, 13];
    const applied: AppliedState = from ? { [name]: { procedure: e.procedure, phase: from.phase, cutover: from.cutover, servers } } : {};
    // The other ensemble stays at its first phase (nothing applied).
    const p = planFleet({ ...config, ensembles: [e] }, applied).get(name)!;
    return planTable(p, declaredBefore(e, p));
}

function golden(file: string, actual: string) {
    const path = join(GOLDEN, file);
    if (process.env.UPDATE_GOLDEN === "1") {
        mkdirSync(GOLDEN, { recursive: true });
        writeFileSync(path, actual);
    }
    assert.ok(existsSync(path), `${path} is missing: run with UPDATE_GOLDEN=1 and review it`);
    assert.equal(actual, readFileSync(path, "utf8"), `${file} differs from the golden file`);
}

describe("plan table: golden text of every update of the example stack", () => {
    MITOSIS.forEach((phase, i) => {
        it(`kafka-main (mitosis) ${i === 0 ? "(new)" : MITOSIS[i - 1]} -> ${phase}`, () => {
            const t = tableOf("kafka-main", { phase, cutover: [] }, i === 0 ? undefined : { phase: MITOSIS[i - 1], cutover: [] });
            golden(`kafka-main-${String(i + 1).padStart(2, "0")}-${phase}.txt`, renderText([t]));
        });
    });
    KUBERNETES.forEach((u, i) => {
        const label = `${u.phase}${u.phase === "pods" ? `-${u.cutover.join("-")}` : ""}`;
        it(`shared (kubernetes) ${i === 0 ? "(new)" : KUBERNETES[i - 1].phase} -> ${label}`, () => {
            const t = tableOf("shared", u, i === 0 ? undefined : KUBERNETES[i - 1]);
            golden(`shared-${String(i + 1).padStart(2, "0")}-${label}.txt`, renderText([t]));
        });
    });
});

describe("plan table: content", () => {
    it("joined: a row per changed server in restart order, whole server lines before and after, the preflight deletes explained", () => {
        const t = tableOf("kafka-main", { phase: "joined", cutover: [] }, { phase: "separate", cutover: [] });
        assert.deepEqual(
            t.rows.map((r) => r.myid),
            [6, 4, 5, 1, 2, 3],
        );
        const r4 = t.rows[1];
        assert.equal(r4.host, "192.0.2.4");
        assert.equal(r4.resource, "kafka-main-restart-4");
        assert.deepEqual(r4.after, [1, 2, 3, 4, 5].map((id) => `server.${id}=192.0.2.${id}:2888:3888`).concat("quorumListenOnAllIPs=false"));
        assert.deepEqual(t.rows[0].after, ["(stopped)"]);
        assert.deepEqual(t.deletes, [{ resources: [1, 2, 3, 4, 5, 6].map((id) => `kafka-main-preflight-${id}`), effect: "the read-only preflight of the first phase; its delete runs nothing" }]);
    });

    it("split: the targets restart together behind the firewall, the window with its expected length and source", () => {
        const t = tableOf("kafka-main", { phase: "split", cutover: [] }, { phase: "prepared", cutover: [] });
        assert.deepEqual(t.windows.map((w) => `${w.group}:${w.kind}`), ["migrating:no-quorum", "source-users:election"]);
        assert.match(t.windows[0].expected, /2\.3 s .*README, The rehearsal.*healthTimeoutSeconds = 120 s \(config\)/);
        // The sources' election at the split is declared with its own figure, on the firewall's row.
        assert.match(t.windows[1].expected, /sources' longest write gap at the split/);
        assert.deepEqual(t.windows[1].rows, t.rows.filter((r) => r.windows.includes("source-users")).map((r) => r.step));
        // The rules go up with the arms; the firewall steps after them commit the split (gates.ts).
        assert.ok(t.rows.some((r) => r.action.startsWith("arm the dead man's switch") && r.action.includes("reject TCP") && r.windows.includes("migrating")));
        assert.deepEqual(t.rows.filter((r) => r.action.startsWith("commit the split")).map((r) => r.stepId), ["firewall-4", "firewall-5", "firewall-6"]);
    });

    it("clients: the brokers in order with the old and new zookeeper.connect, the controller reason", () => {
        const t = tableOf("kafka-main", { phase: "clients", cutover: [] }, { phase: "joined", cutover: [] });
        const brokers = t.rows.filter((r) => r.broker !== undefined);
        assert.deepEqual(brokers.map((r) => r.broker), [21, 22, 23]);
        assert.deepEqual(brokers[0].before, ["zookeeper.connect=192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka"]);
        assert.deepEqual(brokers[0].after, ["zookeeper.connect=192.0.2.4:2181,192.0.2.5:2181,192.0.2.6:2181/kafka"]);
    });

    it("renders markdown (one table per ensemble, lines not cut) and json (the same rows)", () => {
        const t = tableOf("kafka-main", { phase: "joined", cutover: [] }, { phase: "separate", cutover: [] });
        const md = renderMarkdown([t]);
        assert.match(md, /^### kafka-main \(mitosis\): `separate` → `joined`/);
        assert.match(md, /\| 2 \| 192\.0\.2\.4<br>`kafka-main-restart-4` \| myid 4 \|/);
        assert.ok(md.includes("`server.5=192.0.2.5:2888:3888`<br>`quorumListenOnAllIPs=false` |"));
        assert.deepEqual(JSON.parse(renderJson([t])), JSON.parse(JSON.stringify([t])));
    });
});

describe("the plan table of the observer join (joinAs: observer)", () => {
    const observerTable = (to: string, from: string): PlanTable => {
        const raw = devConfigAt({ "kafka-main": to });
        raw.ensembles = (raw.ensembles as Record<string, unknown>[]).map((x) => {
            if (x.name !== "kafka-main") return x;
            const { activeTargets: _, ...rest } = x;
            return { ...rest, joinAs: "observer" };
        });
        const config = loadConfig(raw);
        const e = config.ensembles.find((x) => x.name === "kafka-main")!;
        const applied: AppliedState = { "kafka-main": { procedure: "mitosis", phase: from, cutover: [], servers: [1, 2, 3, 4, 5, 6], joinAs: "observer" } };
        const p = planFleet({ ...config, ensembles: [e] }, applied).get("kafka-main")!;
        return planTable(p, declaredBefore(e, p));
    };

    it("joined: each target's row shows the observer lines and says it runs as an observer; no source row", () => {
        const t = observerTable("joined", "separate");
        const restarts = t.rows.filter((r) => r.action.includes("restart ZooKeeper"));
        assert.deepEqual(restarts.map((r) => r.myid), [4, 5, 6]);
        for (const r of restarts) {
            assert.match(r.action, /as an observer \(peerType=observer\)/);
            assert.deepEqual(r.after?.filter((l) => l.endsWith(":observer")), ["server.4=192.0.2.4:2888:3888:observer", "server.5=192.0.2.5:2888:3888:observer", "server.6=192.0.2.6:2888:3888:observer"]);
        }
        assert.match(renderText([t]), /server\.5=192\.0\.2\.5:2888:3888:observer/);
    });

    it("split: the firewall on the source hosts, then the targets together as participants of T (no observer line)", () => {
        const t = observerTable("split", "prepared");
        const restarts = t.rows.filter((r) => r.action.includes("restart ZooKeeper"));
        assert.deepEqual(restarts.map((r) => r.myid), [4, 5, 6]);
        for (const r of restarts) assert.ok(!r.action.includes("observer") && !(r.after ?? []).some((l) => l.includes(":observer")), r.action);
        assert.ok(t.rows.some((r) => r.myid === 3 && /firewall|iptables|reject/i.test(r.action)), JSON.stringify(t.rows.map((r) => [r.myid, r.action])));
    });
});
