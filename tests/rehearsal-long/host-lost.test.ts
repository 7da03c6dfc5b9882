// The long fault scenario (`npm run test:long`, not part of `npm test`: about 17 min, most of it
// the dead man's bound and ZooKeeper's election backoff): a target's sshd lost at the split, before
// the step (the gates stop pulumi up before any change) and after its first change (the dead
// man's switches decide); both ensembles keep serving; after the repair the split completes, 0 lost.
// npm test covers the switch itself on real iptables (tests/integration/deadman.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertCleanedUp, rehearse } from "../helpers/rehearse";

describe("npm run rehearse -- --scenario host-lost", () => {
    it("host-lost: a target's sshd lost before the split and after its first step: both ensembles serve, the repair completes the split, 0 lost", { timeout: 25 * 60_000 + 120_000 }, async () => {
        const r = await rehearse("host-lost", [], 25 * 60_000);
        const s = r.summary;
        assert.equal(r.code, 0, `rehearsal failed: ${s.failure ?? ""}`);
        assert.equal(s.lost, 0);
        const splits = (r.report.phases as { phase: string; attempt: number; result: string }[]).filter((p) => p.phase === "split").map((p) => `${p.attempt}:${p.result}`);
        assert.equal(splits[0], "1:failed", "the gates stopped the first pulumi up");
        assert.equal(splits[splits.length - 1], `${splits.length}:succeeded`, "the split completed after the repair");
        assert.match(r.stderr, /host-lost: the switches decided: |the second pulumi up succeeded/);
        assertCleanedUp(r.report.fleet);
    });

});
