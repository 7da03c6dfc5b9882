// The rehearsal's tables (rehearsal/rehearse/scenarios.ts): every scenario names a procedure, its
// own phase functions are phases of that procedure, and the mitosis row gives the stack the
// ensemble entry the rehearsal has always used.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MITOSIS_PHASES } from "../../../src/procedures/mitosis";
import type { LocalFleet, FleetHost } from "../../../rehearsal/fleet";
import { PROCEDURES, SCENARIOS } from "../../../rehearsal/rehearse/scenarios";

function fleetOf(hosts: [string, number][]): LocalFleet {
    return { hosts: hosts.map(([ensemble, id]) => ({ name: `${ensemble}-${id}`, ensemble, id, address: `10.0.0.${10 + id}` }) as FleetHost) } as LocalFleet;
}

describe("rehearse scenarios", () => {
    it("every scenario names a procedure and changes only phases of it; fleet prefixes differ", () => {
        const prefixes = new Set<string>();
        for (const [name, s] of Object.entries(SCENARIOS)) {
            const p = PROCEDURES[s.procedure];
            assert.ok(p, `${name}: procedure ${s.procedure}`);
            for (const phase of Object.keys("phases" in s ? s.phases : {})) assert.ok((p.phases as readonly string[]).includes(phase), `${name}: ${phase} is a phase of ${s.procedure}`);
            assert.match(s.fleetPrefix, /^r[a-z]$/, `${name}: the fleet prefix`);
            assert.ok(!prefixes.has(s.fleetPrefix), `${name}: its own fleet prefix`);
            prefixes.add(s.fleetPrefix);
        }
        assert.deepEqual(Object.keys(SCENARIOS), ["mitosis", "fault"]);
        assert.deepEqual(Object.keys(SCENARIOS.fault.phases), ["joined"]);
    });

    it("mitosis: every phase in order, source 1-3 and an empty target 4-6 with 4 and 5 active", () => {
        const m = PROCEDURES.mitosis;
        assert.deepEqual(m.phases, MITOSIS_PHASES);
        assert.deepEqual(m.ensembles, [
            { name: "source", servers: 3, firstId: 1 },
            { name: "target", servers: 3, firstId: 4 },
        ]);
        const f = fleetOf([["source", 1], ["source", 2], ["source", 3], ["target", 4], ["target", 5], ["target", 6], ["kafka", 1]]);
        assert.deepEqual(m.ensemble(f), {
            procedure: "mitosis",
            phase: "separate",
            source: [1, 2, 3].map((id) => ({ id, host: `10.0.0.${10 + id}` })),
            target: [4, 5, 6].map((id) => ({ id, host: `10.0.0.${10 + id}` })),
            targetEmpty: true,
            activeTargets: [4, 5],
        });
    });
});
