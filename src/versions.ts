// ZooKeeper releases with known bugs that a migration step would trigger (a leaf: the preview's
// guard, src/version-guard.ts, and the preflight script, src/scripts/preflight.ts, read it).

/** A known bug: the releases it affects (inclusive ranges) and those that fix it. */
export interface KnownBug {
    tickets: string[];
    /** [first, last] affected release, inclusive. */
    affected: [string, string][];
    fixed: string[];
    /** What goes wrong, for the refusal. */
    summary: string;
}

/**
 * ZOOKEEPER-3829 / ZOOKEEPER-3830 (fixed by apache/zookeeper#1356 for 3.6.2 and 3.7.0, #1370 for
 * 3.5.9): with dynamic reconfig disabled (the default since 3.5.3), changing the membership by a
 * rolling restart, as every zkmigrate procedure does, can leave an elected leader that cannot
 * commit any transaction (seen when a server joins: 1,2,3 -> 1,2,3,4, restarted one by one), and
 * servers that keep trying a removed member after a host name change. 3.4 was not affected.
 */
export const ROLLING_MEMBERSHIP_BUG: KnownBug = {
    tickets: ["ZOOKEEPER-3829", "ZOOKEEPER-3830"],
    affected: [
        ["3.5.0", "3.5.8"],
        ["3.6.0", "3.6.1"],
    ],
    fixed: ["3.5.9", "3.6.2", "3.7.0"],
    summary: "a membership change by rolling restart can leave a leader that cannot commit",
};

/** `3.6.1` (or a longer version text such as `3.6.1--104dcb3e, built on ...`) as [3, 6, 1]; undefined when unreadable. */
export function parseRelease(version: string): [number, number, number] | undefined {
    const m = /^\s*(\d+)\.(\d+)\.(\d+)/.exec(version);
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function compare(a: [number, number, number], b: [number, number, number]): number {
    return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Whether `version` is one the bug affects; undefined when the version cannot be read. */
export function isAffected(bug: KnownBug, version: string): boolean | undefined {
    const v = parseRelease(version);
    if (!v) return undefined;
    return bug.affected.some(([lo, hi]) => compare(v, parseRelease(lo)!) >= 0 && compare(v, parseRelease(hi)!) <= 0);
}

/** "3.5.0–3.5.8 and 3.6.0–3.6.1". */
export function affectedText(bug: KnownBug): string {
    return bug.affected.map(([lo, hi]) => `${lo}–${hi}`).join(" and ");
}

/** The refusal's words: the tickets, what happens, the fixed releases. */
export function bugText(bug: KnownBug): string {
    return `${bug.tickets.join("/")}: on ZooKeeper ${affectedText(bug)} ${bug.summary}; upgrade to ${bug.fixed.join(", ")} or later first`;
}
