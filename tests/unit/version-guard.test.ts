// The version guard (src/versions.ts, src/version-guard.ts): a step that restarts servers into a
// new membership is refused on the releases of ZOOKEEPER-3829/3830, with a warning where the
// version is unknown.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { appliedOf, type AppliedState } from "../../src/config";
import { planFleet } from "../../src/model";
import type { LeaderInfo } from "../../src/steps";
import { membershipRestarts, versionGuard } from "../../src/version-guard";
import { isAffected, ROLLING_MEMBERSHIP_BUG } from "../../src/versions";
import { devFleet } from "../fixtures";

describe("isAffected: ZOOKEEPER-3829/3830", () => {
    const table: [string, boolean | undefined][] = [
        ["3.4.14", false],
        ["3.5.0", true],
        ["3.5.7", true],
        ["3.5.8", true],
        ["3.5.9", false],
        ["3.5.10", false],
        ["3.6.0", true],
        ["3.6.1", true],
        ["3.6.1--104dcb3e3fb464b30c5186d229e00af9f332524b, built on 04/21/2020 15:01 GMT", true],
        ["3.6.2", false],
        ["3.7.0", false],
        ["3.9.5", false],
        ["unknown", undefined],
    ];
    for (const [v, want] of table) it(`${v}: ${want}`, () => assert.equal(isAffected(ROLLING_MEMBERSHIP_BUG, v), want));
});

/** The plans of the example fleet from `from` to `to` (per ensemble name). */
function plansOf(from: Record<string, string>, to: Record<string, string>) {
    const applied: AppliedState = Object.fromEntries(devFleet(from).ensembles.map((e) => [e.name, appliedOf(e)]));
    const config = devFleet(to);
    return { config, plans: planFleet(config, applied) };
}

const probed = (versions: Record<number, string>): LeaderInfo => ({ leaders: [], known: false, detail: "test", versions });
const all = (v: string, ids: number[]) => Object.fromEntries(ids.map((id) => [id, v]));
const MITOSIS = [1, 2, 3, 4, 5, 6];
const K8S = [11, 12, 13];

describe("membershipRestarts: the servers a step restarts into another membership", () => {
    const cases: { name: string; from: Record<string, string>; to: Record<string, string>; ensemble: string; want: number[] }[] = [
        { name: "mitosis separate -> joined (sources and active targets)", from: {}, to: { "kafka-main": "joined" }, ensemble: "kafka-main", want: [1, 2, 3, 4, 5] },
        { name: "mitosis joined -> clients (only the clients move)", from: { "kafka-main": "joined" }, to: { "kafka-main": "clients" }, ensemble: "kafka-main", want: [] },
        { name: "mitosis clients -> prepared (configs written, nothing restarts)", from: { "kafka-main": "clients" }, to: { "kafka-main": "prepared" }, ensemble: "kafka-main", want: [] },
        { name: "mitosis prepared -> split (the active targets onto T)", from: { "kafka-main": "prepared" }, to: { "kafka-main": "split" }, ensemble: "kafka-main", want: [4, 5] },
        { name: "kubernetes clients -> peers (addresses become Service names)", from: { shared: "clients" }, to: { shared: "peers" }, ensemble: "shared", want: [11, 12, 13] },
        { name: "kubernetes hosts -> services (no restart)", from: {}, to: { shared: "services" }, ensemble: "shared", want: [] },
    ];
    for (const c of cases) {
        it(c.name, () => {
            const { plans } = plansOf(c.from, c.to);
            assert.deepEqual(membershipRestarts(plans.get(c.ensemble)!).sort((a, b) => a - b), c.want);
        });
    }
});

describe("versionGuard at preview", () => {
    it("refuses a membership change when a server runs an affected release, naming the tickets and the fixed releases", () => {
        const { config, plans } = plansOf({}, { "kafka-main": "joined" });
        const g = versionGuard(config.ensembles, plans, { "kafka-main": probed({ ...all("3.9.5", MITOSIS), 2: "3.6.1", 5: "3.5.8" }), shared: probed(all("3.9.5", K8S)) });
        assert.deepEqual(g.issues, [
            {
                path: "zkmigrate:ensembles[kafka-main].phase",
                reason:
                    "this step restarts servers 1, 2, 3, 4, 5 into a new membership, and server 2 runs ZooKeeper 3.6.1, server 5 runs ZooKeeper 3.5.8 (read with srvr): " +
                    "ZOOKEEPER-3829/ZOOKEEPER-3830: on ZooKeeper 3.5.0–3.5.8 and 3.6.0–3.6.1 a membership change by rolling restart can leave a leader that cannot commit; " +
                    "upgrade to 3.5.9, 3.6.2, 3.7.0 or later first (a rolling upgrade keeps the membership), then take this step; nothing was changed",
            },
        ]);
        assert.equal(g.warnings.size, 0);
    });

    it("passes fixed releases, and steps that change no membership on any release", () => {
        const fixed = plansOf({}, { "kafka-main": "joined", shared: "services" });
        assert.deepEqual(versionGuard(fixed.config.ensembles, fixed.plans, { "kafka-main": probed(all("3.6.2", MITOSIS)), shared: probed(all("3.6.1", K8S)) }), { issues: [], warnings: new Map() });
        const clients = plansOf({ "kafka-main": "joined" }, { "kafka-main": "clients" });
        assert.deepEqual(versionGuard(clients.config.ensembles, clients.plans, { "kafka-main": probed(all("3.6.1", MITOSIS)) }).issues, []);
    });

    it("an unknown version is a warning, not a refusal", () => {
        const { config, plans } = plansOf({ shared: "clients" }, { shared: "peers" });
        const some = versionGuard(config.ensembles, plans, { shared: probed({ 11: "3.9.5" }) });
        assert.deepEqual(some.issues, []);
        assert.deepEqual(some.warnings.get("shared"), [
            "shared: this step restarts servers 11, 12, 13 into a new membership; the ZooKeeper version of servers 12, 13 is unknown (no answer to srvr from here). " +
                "ZOOKEEPER-3829/ZOOKEEPER-3830: on ZooKeeper 3.5.0–3.5.8 and 3.6.0–3.6.1 a membership change by rolling restart can leave a leader that cannot commit; " +
                "upgrade to 3.5.9, 3.6.2, 3.7.0 or later first (the first phase's preflight checks it on each server that runs then)",
        ]);
        const off = versionGuard(config.ensembles, plans, undefined);
        assert.match(off.warnings.get("shared")![0], /servers 11, 12, 13 is unknown \(zkmigrate:leaderProbe is off\)/);
    });

    it("the preflight of the first phase asks for the version check on every server", () => {
        const { plans } = plansOf({}, {});
        for (const name of ["kafka-main", "shared"]) {
            const preflights = plans.get(name)!.plan.steps.filter((s) => s.kind === "preflight");
            assert.ok(preflights.length > 0, name);
            for (const s of preflights) assert.equal(s.kind === "preflight" && s.check.versionGuard, true, `${name} ${s.id}`);
        }
    });
});
