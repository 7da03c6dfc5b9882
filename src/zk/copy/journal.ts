// The change journal of block & copy: while the clients still run, a persistent recursive watch
// (ZooKeeper 3.6+'s addWatch) on the source subtree records every path that changes, so that
// the final copy (clients blocked) visits those paths only instead of every node's stat: the
// blocked window grows with the change, not with the tree.
//
// It runs as a background process (`zkmigrate journal start`, started before the precopy reads)
// that keeps one session to one source server and writes a state file (JSON) and, beside it,
// the changed paths (`<file>.paths`, one `zxid type path` line per path, first change). The final
// copy (`zkmigrate copy --journal <file>`) stops it (a sync first: every change committed before
// has been notified) and uses it only when nothing can be missing from it: the process recorded
// without a break from before the precopy's watermark until this stop. Anything else (an older
// server, a lost connection or session, which ZooKeeper does not replay a persistent watch's
// events over, a journal started after the precopy, stopped before this copy, or of another
// tree) makes the copy fall back to the scan of every node's stat, and say why.
//
// ZooKeeper fires no watch for setACL: an ACL changed without a data change is not in the
// journal (the copy says so; --verify compares every ACL).
import { spawn } from "node:child_process";
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type * as zookeeper from "node-zookeeper-client";
import { formatServer } from "../../format/connect-string";
import { ERR, EVENT, RawError, WATCH_MODE, onNotification, rawAddWatch, rawGetAcl, rawSync } from "../raw";
import { abort } from "../session";
import { type AuthInfo, CopyError, type Endpoint, parseEndpoint } from "./options";
import { connectOne } from "./sessions";

export type JournalStatus = "starting" | "recording" | "stopped" | "unsupported" | "broken" | "failed";

export interface JournalState {
    version: 1;
    kind: "zkmigrate-journal";
    /** The source as given (`host:port,.../path`). */
    source: string;
    pid: number;
    status: JournalStatus;
    /** Why it is not recording (unsupported, broken, failed), for the fallback's message. */
    reason?: string;
    /** The source server the journal's session talks to. */
    server?: string;
    /** czxid of the source path when the watch was set (another tree at the path is refused). */
    rootCzxid?: string;
    /** The server's last zxid when the watch was set (hex): every later change is recorded. */
    startZxid?: string;
    /** The server's last zxid at the sync of the stop (hex). */
    endZxid?: string;
    /** Distinct changed paths, and notifications received. */
    paths: number;
    events: number;
    startedAt: string;
    stoppedAt?: string;
    /** The latest time the process ends by itself (it never outlives the migration). */
    endsBy: string;
}

export function pathsFile(file: string): string {
    return `${file}.paths`;
}

function writeJournalState(file: string, s: JournalState): void {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(s, null, 1) + "\n");
    renameSync(tmp, file);
}

export function readJournalState(file: string): JournalState {
    let parsed: unknown;
    try {
        parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
        throw new CopyError(`--journal ${file}: cannot read the journal: ${e instanceof Error ? e.message : String(e)}`, "usage");
    }
    const s = parsed as Partial<JournalState>;
    if (!s || s.version !== 1 || s.kind !== "zkmigrate-journal" || typeof s.pid !== "number" || typeof s.status !== "string" || typeof s.source !== "string") {
        throw new CopyError(`--journal ${file}: not a zkmigrate journal state file`, "usage");
    }
    return s as JournalState;
}

function pidAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

// ---------------------------------------------------------------------------------------------
// The recording process

export interface RecordOptions {
    source: string;
    file: string;
    auth: AuthInfo[];
    connectTimeoutMs: number;
    sessionTimeoutMs: number;
    /** The process ends by itself after this long (default 24 h). */
    maxLifetimeMs: number;
}

/** The journal process: records until SIGTERM (or a break, or its lifetime), then exits. */
export async function recordJournal(o: RecordOptions): Promise<JournalState> {
    const src = parseEndpoint(o.source, "source");
    const root = src.path;
    const started = Date.now();
    const state: JournalState = {
        version: 1,
        kind: "zkmigrate-journal",
        source: src.text,
        pid: process.pid,
        status: "starting",
        paths: 0,
        events: 0,
        startedAt: new Date(started).toISOString(),
        endsBy: new Date(started + o.maxLifetimeMs).toISOString(),
    };
    const paths = pathsFile(o.file);
    writeFileSync(paths, "");
    writeJournalState(o.file, state);
    const seen = new Set<string>();
    let pending: string[] = [];
    const flush = () => {
        if (pending.length > 0) {
            appendFileSync(paths, pending.join(""));
            pending = [];
        }
        state.paths = seen.size;
    };
    let client: zookeeper.Client | undefined;
    let finish!: (s: JournalState) => void;
    const done = new Promise<JournalState>((resolve) => (finish = resolve));
    let ended = false;
    const timers: NodeJS.Timeout[] = [];
    const end = (status: JournalStatus, reason?: string) => {
        if (ended) return;
        ended = true;
        for (const t of timers) clearTimeout(t);
        flush();
        state.status = status;
        if (reason) state.reason = reason;
        state.stoppedAt = new Date().toISOString();
        writeJournalState(o.file, state);
        if (client) abort(client);
        finish(state);
    };

    // A session to the first source server that answers (in the order given).
    const errors: string[] = [];
    for (const server of src.connect.servers) {
        try {
            client = await connectOne(server, o.auth, o.connectTimeoutMs, o.sessionTimeoutMs);
            state.server = formatServer(server);
            break;
        } catch (e) {
            errors.push(`${formatServer(server)}: ${e instanceof Error ? e.message : String(e)}`);
        }
    }
    if (!client) {
        end("failed", `no source server answered: ${errors.join("; ")}`);
        return done;
    }
    const c = client;
    let lost: string | undefined;
    c.on("state", (st: zookeeper.State) => {
        if (ended) return;
        const name = String(st);
        if (/EXPIRED/.test(name)) end("broken", `the journal's session with ${state.server} expired: its watch and the events since are gone`);
        else if (/DISCONNECTED/.test(name)) {
            // A gap in any case; wait a little to name an expiry (seen on the reconnect) as such.
            lost = `the journal's session lost its connection to ${state.server}: ZooKeeper does not replay a persistent watch's events after a reconnect`;
            const t = setTimeout(() => end("broken", lost), 3000);
            t.unref();
            timers.push(t);
        }
    });
    onNotification(c, (n) => {
        if (ended) return;
        if (n.type === EVENT.created || n.type === EVENT.deleted || n.type === EVENT.dataChanged) {
            state.events++;
            if (!seen.has(n.path)) {
                seen.add(n.path);
                pending.push(`${n.zxid > 0n ? n.zxid.toString(16) : "-"} ${n.type} ${n.path}\n`);
            }
        } else if (n.type !== EVENT.none && n.type !== EVENT.childrenChanged) {
            end("broken", `the journal's watch was removed (event type ${n.type})`);
        }
    });
    try {
        const { stat } = await rawGetAcl(c, root);
        state.rootCzxid = stat.czxid.toString(16);
        state.startZxid = (await rawAddWatch(c, root, WATCH_MODE.persistentRecursive)).toString(16);
    } catch (e) {
        const code = e instanceof RawError ? e.code : undefined;
        const lost = !(e instanceof RawError) && /CONNECTION_LOSS|closed|connection/i.test(String(e));
        if (code === ERR.unimplemented || code === ERR.connectionLoss || code === -5 || lost) {
            end("unsupported", `${state.server} answers no addWatch (ZooKeeper before 3.6)`);
        } else if (code === ERR.noNode) {
            end("failed", `source path ${root} does not exist`);
        } else {
            end("failed", `setting the watch on ${root}: ${e instanceof Error ? e.message : String(e)}`);
        }
        return done;
    }
    state.status = "recording";
    writeJournalState(o.file, state);
    // Keepalive of our own: node-zookeeper-client 1.1.3 pings only when its socket is idle both
    // ways (socket.setTimeout), and the watch's notifications keep it busy: under a steady write
    // load the journal never sent a ping, and the server expired its session after the session
    // timeout (seen in the block-copy rehearsal). A cheap read a third of the timeout apart.
    timers.push(
        setInterval(() => {
            if (!ended) c.exists("/", () => undefined);
        }, Math.max(1000, Math.floor(o.sessionTimeoutMs / 3))),
    );
    timers.push(
        setInterval(() => {
            if (ended) return;
            flush();
            writeJournalState(o.file, state);
        }, 500),
    );
    const lifetime = setTimeout(() => end("broken", `the journal ran for its whole lifetime (until ${state.endsBy}) and stopped`), o.maxLifetimeMs);
    lifetime.unref();
    const stop = () => {
        if (ended) return;
        // The sync: the server has sent the notifications of every change committed before it.
        const t = setTimeout(() => end("broken", `the journal's sync at the stop got no answer from ${state.server} within 10 s`), 10_000);
        rawSync(c, root).then(
            (zxid) => {
                clearTimeout(t);
                state.endZxid = zxid.toString(16);
                if (lost) end("broken", lost);
                else end("stopped");
            },
            (e) => {
                clearTimeout(t);
                end("broken", `the journal's sync at the stop failed: ${e instanceof Error ? e.message : String(e)}`);
            },
        );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    const result = await done;
    clearTimeout(lifetime);
    process.removeListener("SIGTERM", stop);
    process.removeListener("SIGINT", stop);
    return result;
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping the process

export interface StartOptions {
    source: string;
    file: string;
    auth: AuthInfo[];
    connectTimeoutMs?: number;
    sessionTimeoutMs?: number;
    maxLifetimeMs?: number;
    /** Bound of waiting for the process to record (or to say why it cannot). */
    startTimeoutMs?: number;
}

/** The environment variable that hands the credentials to the process (never its command line). */
const AUTH_ENV = "ZKMIGRATE_JOURNAL_AUTH";

/**
 * Starts the journal process in the background and waits until it records (or says why it
 * cannot: an older server gives status "unsupported", which is not an error: the final copy
 * then scans). Refuses a journal file that a live process still records into.
 */
export async function startJournal(o: StartOptions): Promise<JournalState> {
    parseEndpoint(o.source, "source");
    if (existsSync(o.file)) {
        const old = readJournalState(o.file);
        if ((old.status === "recording" || old.status === "starting") && pidAlive(old.pid)) {
            throw new CopyError(`--journal-file ${o.file}: a journal still records into it (pid ${old.pid}): stop it first (zkmigrate journal stop)`, "usage");
        }
    }
    const args = [
        "run",
        o.source,
        "--journal-file",
        o.file,
        "--connect-timeout",
        String(o.connectTimeoutMs ?? 10_000),
        "--session-timeout",
        String(o.sessionTimeoutMs ?? 30_000),
        "--max-lifetime",
        String(o.maxLifetimeMs ?? 24 * 3600_000),
    ];
    const entry = __filename;
    const node = entry.endsWith(".ts") ? ["--import", require.resolve("tsx"), entry] : [entry];
    const log = openSync(`${o.file}.log`, "a");
    const t0 = Date.now();
    try {
        writeFileSync(o.file, JSON.stringify({ version: 1, kind: "zkmigrate-journal", source: o.source, pid: 0, status: "starting", paths: 0, events: 0, startedAt: new Date().toISOString(), endsBy: "" }) + "\n");
        const child = spawn(process.execPath, [...node, ...args], {
            detached: true,
            stdio: ["ignore", log, log],
            env: { ...process.env, [AUTH_ENV]: JSON.stringify(o.auth) },
        });
        child.unref();
        let exited: number | null | undefined;
        child.once("exit", (code) => (exited = code));
        const bound = o.startTimeoutMs ?? (o.connectTimeoutMs ?? 10_000) * 2 + 10_000;
        for (;;) {
            const s = readJournalState(o.file);
            if (s.status !== "starting") return s;
            if (exited !== undefined) throw new CopyError(`the journal process exited (code ${exited}) before it recorded; see ${o.file}.log`, "connect");
            if (Date.now() - t0 > bound) {
                if (child.pid) process.kill(child.pid, "SIGTERM");
                throw new CopyError(`the journal did not start recording within ${bound} ms; see ${o.file}.log`, "connect");
            }
            await new Promise((r) => setTimeout(r, 50));
        }
    } finally {
        closeSync(log);
    }
}

/**
 * Stops a recording journal (SIGTERM: the process syncs, writes its last paths and exits) and
 * returns its final state; a journal that is not recording is returned as it is. A process that
 * is gone while its state says recording is marked broken.
 */
export async function stopJournal(file: string, timeoutMs = 20_000): Promise<JournalState> {
    let s = readJournalState(file);
    if (s.status !== "recording" && s.status !== "starting") return s;
    if (!pidAlive(s.pid)) {
        s = { ...s, status: "broken", reason: `the journal process (pid ${s.pid}) ended without stopping` };
        writeJournalState(file, s);
        return s;
    }
    process.kill(s.pid, "SIGTERM");
    const t0 = Date.now();
    for (;;) {
        await new Promise((r) => setTimeout(r, 25));
        s = readJournalState(file);
        if (s.status !== "recording" && s.status !== "starting") return s;
        if (!pidAlive(s.pid)) {
            s = { ...s, status: "broken", reason: `the journal process (pid ${s.pid}) ended without stopping` };
            writeJournalState(file, s);
            return s;
        }
        if (Date.now() - t0 > timeoutMs) {
            process.kill(s.pid, "SIGKILL");
            s = { ...s, status: "broken", reason: `the journal process (pid ${s.pid}) did not stop within ${timeoutMs} ms (killed)` };
            writeJournalState(file, s);
            return s;
        }
    }
}

/** The changed paths a stopped journal recorded (absolute, first change order). */
export function journalPaths(file: string): string[] {
    const text = readFileSync(pathsFile(file), "utf8");
    const out: string[] = [];
    for (const line of text.split("\n")) {
        if (line === "") continue;
        const a = line.indexOf(" ");
        const b = line.indexOf(" ", a + 1);
        out.push(line.slice(b + 1));
    }
    return out;
}

/** Why a journal is not of the tree at the source path now (its root's czxid differs), or undefined. */
export function journalOfOtherTree(s: JournalState, src: Endpoint, rootCzxid: bigint): string | undefined {
    return s.rootCzxid === rootCzxid.toString(16) ? undefined : `the journal is of another tree at ${src.path} (root czxid ${s.rootCzxid}, now ${rootCzxid.toString(16)})`;
}

export type JournalUse = { ok: true; state: JournalState; paths: string[] } | { ok: false; reason: string; state?: JournalState };

/**
 * Stops the journal and says whether the final copy may use it instead of the scan: it recorded
 * without a break from before the precopy's reads (`watermark`, the state file's zxid) until
 * now, on the same tree (`rootCzxid`, when given; else see journalOfOtherTree) of the same source.
 */
export async function consumeJournal(file: string, src: Endpoint, watermark: bigint | undefined, rootCzxid?: bigint): Promise<JournalUse> {
    if (!existsSync(file)) return { ok: false, reason: `no journal file ${file}` };
    if (watermark === undefined) return { ok: false, reason: "no state file of a previous copy (its zxid says where the journal must have started); the journal is left running" };
    const before = readJournalState(file);
    if (before.status !== "recording") {
        return { ok: false, state: before, reason: before.status === "stopped" ? `the journal was stopped before this copy (at ${before.stoppedAt}): changes since are not in it` : `the journal is ${before.status}${before.reason ? `: ${before.reason}` : ""}` };
    }
    const s = await stopJournal(file);
    if (s.status !== "stopped") return { ok: false, state: s, reason: `the journal is ${s.status}${s.reason ? `: ${s.reason}` : ""}` };
    const same = (a: string, b: string) => {
        const x = parseEndpoint(a, "source");
        const y = parseEndpoint(b, "source");
        return x.path === y.path && x.connect.servers.map(formatServer).sort().join(",") === y.connect.servers.map(formatServer).sort().join(",");
    };
    if (!same(s.source, src.text)) return { ok: false, state: s, reason: `the journal is of ${s.source}, not of ${src.text}` };
    if (rootCzxid !== undefined) {
        const other = journalOfOtherTree(s, src, rootCzxid);
        if (other) return { ok: false, state: s, reason: other };
    }
    if (BigInt(`0x${s.startZxid}`) > watermark) {
        return { ok: false, state: s, reason: `the journal started (zxid 0x${s.startZxid}) after the previous copy's reads (zxid 0x${watermark.toString(16)}): changes in between may be missing` };
    }
    return { ok: true, state: s, paths: journalPaths(file) };
}

// ---------------------------------------------------------------------------------------------
// The process's entry (started by startJournal)

function argOf(argv: string[], name: string): string {
    const i = argv.indexOf(`--${name}`);
    if (i < 0 || argv[i + 1] === undefined) throw new Error(`journal run: --${name} is missing`);
    return argv[i + 1];
}

if (require.main === module) {
    const argv = process.argv.slice(2);
    if (argv[0] !== "run") {
        console.error("usage: journal.ts run <src-connect>/<path> --journal-file F ... (started by zkmigrate journal start)");
        process.exit(2);
    }
    const auth = JSON.parse(process.env[AUTH_ENV] ?? "[]") as AuthInfo[];
    delete process.env[AUTH_ENV];
    recordJournal({
        source: argv[1],
        file: argOf(argv, "journal-file"),
        auth,
        connectTimeoutMs: Number(argOf(argv, "connect-timeout")),
        sessionTimeoutMs: Number(argOf(argv, "session-timeout")),
        maxLifetimeMs: Number(argOf(argv, "max-lifetime")),
    }).then(
        (s) => {
            console.log(`${new Date().toISOString()} journal ${s.status}${s.reason ? `: ${s.reason}` : ""} (${s.paths} paths, ${s.events} events)`);
            process.exit(0);
        },
        (e) => {
            console.error(`${new Date().toISOString()} journal failed: ${e instanceof Error ? e.stack : String(e)}`);
            process.exit(1);
        },
    );
}
