// The incremental copy's memory: the state file a run leaves for the next one, and what
// `--mtime-since` asks for (a time, or a state file).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { CopyError, type CopyOptions } from "./options";

/**
 * What an incremental run needs from the previous one. `zxid` is the source's last zxid at the
 * start of the previous run's reads (the least over the sessions it read through): every change
 * at or before it was seen then, every later one has a greater mzxid (data), czxid (new node)
 * or pzxid (children added or removed). ZooKeeper records neither a time nor a zxid for setACL,
 * so `aversions` keeps each node's ACL version where it is not 0.
 */
export interface CopyState {
    version: 1;
    source: string;
    /** czxid of the source path: another tree at the same path is refused. */
    rootCzxid: string;
    /** Hexadecimal zxid watermark (see above). */
    zxid: string;
    /** The newest mtime seen (ms since the epoch): usable as `--mtime-since <ms>`. */
    mtime: number;
    aversions: Record<string, number>;
    writtenAt: string;
}

export function readState(file: string): CopyState {
    let parsed: unknown;
    try {
        parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
        throw new CopyError(`--mtime-since ${file}: cannot read the state file: ${e instanceof Error ? e.message : String(e)}`, "usage");
    }
    const s = parsed as Partial<CopyState>;
    if (!s || s.version !== 1 || typeof s.zxid !== "string" || !/^[0-9a-f]+$/.test(s.zxid) || typeof s.mtime !== "number" || typeof s.rootCzxid !== "string" || typeof s.aversions !== "object") {
        throw new CopyError(`--mtime-since ${file}: not a zkmigrate copy state file (version 1 with zxid, mtime, rootCzxid, aversions)`, "usage");
    }
    return s as CopyState;
}

export function writeState(file: string, state: CopyState): void {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(state) + "\n");
    renameSync(tmp, file);
}

export interface Since {
    mtime?: number;
    zxid?: bigint;
    state?: CopyState;
    /** The file the state comes from (or goes to, when it does not exist yet). */
    file?: string;
}

export function resolveSince(o: CopyOptions): Since | undefined {
    const v = o.mtimeSince;
    if (v === undefined) return undefined;
    if (typeof v === "number") {
        if (!Number.isFinite(v) || v < 0) throw new CopyError(`--mtime-since ${v}: expected milliseconds since the epoch or a state file`, "usage");
        return { mtime: v };
    }
    if (/^\d+$/.test(v)) return { mtime: Number(v) };
    if (!existsSync(v)) return { file: v }; // first run: a full copy that writes the state
    const state = readState(v);
    return { mtime: state.mtime, zxid: BigInt(`0x${state.zxid}`), state, file: v };
}
