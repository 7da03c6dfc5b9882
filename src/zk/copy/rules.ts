// The rules that make the copy faithful where older copy tools were not: multi batches bounded
// by bytes as well as by count, nothing written that the target cannot take, sequential
// counters kept. One object so that the tests can put the old tools' faults in its place
// (tests/integration/zk/legacy-copy.ts) and show that the checks catch each of them.
import type { ChangeSet, CounterRaise } from "./diff";
import { raiseCounters } from "./diff";
import type { ZNode } from "./znode";

export interface CopyRules {
    /** The byte bound of a multi batch: the one asked for, within the target's request limit. */
    batchBytes(asked: number, maxOpBytes: number): number;
    /** Whether one write of `bytes` fits the target's request limit (a refusal before any write when not). */
    fits(bytes: number, maxOpBytes: number): boolean;
    /** The cversion raises that keep each parent's next sequential child after the copied ones. */
    counters(cs: ChangeSet, copied: Map<string, ZNode>, dstNodes: Map<string, ZNode | null>, toCreate: Set<string>): CounterRaise[];
}

export const FAITHFUL: CopyRules = {
    batchBytes: (asked, maxOpBytes) => Math.min(asked, maxOpBytes),
    fits: (bytes, maxOpBytes) => bytes <= maxOpBytes,
    counters: raiseCounters,
};
