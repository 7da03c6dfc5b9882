// The gap statistic of the rehearsal's load: how long clients went without an acknowledged
// write (ZooKeeper sessions, stress.ts) or send (Kafka producers, kafka-load.ts) while something
// ran (a phase, one restart step). One definition for both, so their figures compare.

/** A time window in ms since the epoch (both ends included). */
export interface Window {
    start: number;
    end: number;
}

/**
 * The longest time without an acknowledgement that overlaps the window, in ms. `times` are the
 * acknowledgement times of one client, ascending. A gap that overlaps the window counts whole,
 * from the ack before it to the ack after it; a client with no ack since before the window's end
 * has a gap up to the end. 0 for a client with no acks at all.
 */
export function longestGap(times: readonly number[], w: Window): number {
    let max = 0;
    let prev: number | undefined;
    for (const t of times) {
        if (prev !== undefined && t > w.start && prev < w.end) max = Math.max(max, t - prev);
        prev = t;
        if (t > w.end) break;
    }
    // No ack since before the end of the window.
    if (prev !== undefined && prev < w.end) max = Math.max(max, w.end - prev);
    return max;
}

/**
 * The gaps of a group of clients within the window: the worst single client (`perClientMs`) and
 * the group as a whole (`groupMs`: the longest time no client of the group was acknowledged).
 */
export function groupGaps(clients: readonly (readonly number[])[], w: Window): { perClientMs: number; groupMs: number } {
    const perClientMs = Math.max(0, ...clients.map((times) => longestGap(times, w)));
    const all = clients.flat().sort((a, b) => a - b);
    return { perClientMs, groupMs: longestGap(all, w) };
}
