// The rehearsal's one bound on a promise (rehearsal/with-timeout.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { withTimeout } from "../../rehearsal/with-timeout";

describe("withTimeout", () => {
    it("resolves with the promise's value when it settles in time", async () => {
        assert.equal(await withTimeout(Promise.resolve(7), 1000, "x"), 7);
    });

    it("rejects with the promise's own error when it fails in time", async () => {
        await assert.rejects(withTimeout(Promise.reject(new Error("boom")), 1000, "x"), /^Error: boom$/);
    });

    it("rejects naming what and the bound when the promise takes longer", async () => {
        const slow = new Promise((r) => setTimeout(r, 2000).unref());
        await assert.rejects(withTimeout(slow, 50, "pulumi up (joined)"), { message: "pulumi up (joined): no result within 0.05 s" });
    });
});
