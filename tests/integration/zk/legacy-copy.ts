// A test double of the copy: `zkmigrate copy` with the faults of the older copy tools users
// reported, each one alone, so that the integration tests can show that the copy's own check
// (or --verify) catches it. Nothing here is reachable from the CLI.
import { type CopyOptions, type CopyRules, type CopySummary, FAITHFUL, copyTree } from "../../../src/zk/copy";

export interface LegacyFaults {
    /** Batches bounded by op count only, and no refusal of values over jute.maxbuffer. */
    ignoreByteBound?: boolean;
    /** Sequential counters not brought up: the next sequential child collides. */
    keepCounters?: false;
    /** Every ACL open (world:anyone, all permissions) instead of the source's. */
    acl?: "open";
    /** Ephemeral nodes copied, as persistent ones. */
    copyEphemeralAsPersistent?: boolean;
}

export function legacyRules(f: LegacyFaults): CopyRules {
    return {
        batchBytes: f.ignoreByteBound ? () => Number.MAX_SAFE_INTEGER : FAITHFUL.batchBytes,
        fits: f.ignoreByteBound ? () => true : FAITHFUL.fits,
        counters: f.keepCounters === false ? () => [] : FAITHFUL.counters,
    };
}

/** The copy as an older tool did it: the faithful copy with the faults of `f`. */
export function legacyCopy(source: string, target: string, o: CopyOptions, f: LegacyFaults): Promise<CopySummary> {
    const options: CopyOptions = { ...o };
    if (f.acl) options.acl = f.acl;
    if (f.copyEphemeralAsPersistent) options.includeEphemeral = true;
    return copyTree(source, target, options, legacyRules(f));
}
