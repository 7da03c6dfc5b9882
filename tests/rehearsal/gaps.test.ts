// The rehearsal's one gap statistic (rehearsal/gaps.ts), shared by the ZooKeeper stress client
// and the Kafka producers: a table of acknowledgement times against windows.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { groupGaps, longestGap } from "../../rehearsal/gaps";

describe("longestGap", () => {
    const cases: { name: string; times: number[]; w: [number, number]; want: number }[] = [
        { name: "no acks at all", times: [], w: [0, 100], want: 0 },
        { name: "steady acks inside the window", times: [0, 10, 20, 30, 40], w: [5, 35], want: 10 },
        { name: "a gap inside the window", times: [0, 10, 60, 70], w: [0, 100], want: 50 },
        { name: "a gap that starts before the window counts whole", times: [0, 50, 55], w: [40, 100], want: 50 },
        { name: "a gap that ends after the window counts whole", times: [0, 10, 90], w: [0, 50], want: 80 },
        { name: "no ack since before the end: up to the end", times: [0, 10], w: [0, 100], want: 90 },
        { name: "a gap wholly before the window does not count", times: [0, 80, 90, 100, 110], w: [85, 120], want: 10 },
        { name: "a gap wholly after the window does not count", times: [0, 10, 20, 200], w: [0, 15], want: 10 },
        { name: "acks only after the window", times: [200, 210], w: [0, 100], want: 0 },
    ];
    for (const c of cases) {
        it(c.name, () => assert.equal(longestGap(c.times, { start: c.w[0], end: c.w[1] }), c.want));
    }
});

describe("groupGaps", () => {
    it("gives the worst client and the longest time no client of the group was acknowledged", () => {
        // Client a stalls from 10 to 70; client b keeps writing until 40, then stalls to 80.
        const a = [0, 10, 70, 80];
        const b = [0, 20, 30, 40, 80];
        assert.deepEqual(groupGaps([a, b], { start: 0, end: 80 }), { perClientMs: 60, groupMs: 30 });
    });

    it("is 0 for a group without clients", () => {
        assert.deepEqual(groupGaps([], { start: 0, end: 10 }), { perClientMs: 0, groupMs: 0 });
    });
});
