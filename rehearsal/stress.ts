// The rehearsal's stress client, after the seed's stress test: several sessions, each creating
// sequence-numbered znodes one at a time, reading each write back now and then and keeping a
// data watch that its own writes fire. It records when every write was acknowledged (the
// write gaps), every failed operation, and checks at the end that every acknowledged write is
// present (the loss check).
//
// A group follows a connect string that can change (the one the current phase publishes):
// each session moves at its next operation, with a new session on the new ensemble, as a
// client such as Kafka does when its zookeeper.connect changes and it restarts.
import * as zookeeper from "node-zookeeper-client";
import { call, connectClient, zkErrorName } from "../src/zk/session";
import { groupGaps, type Window } from "./gaps";

export interface StressOptions {
    /** A label for the report ("migrating", "source-users"). */
    name: string;
    /** host:port,...[/chroot]. */
    connect: string;
    /** The znode the sessions write under (inside the chroot); created when missing. */
    base: string;
    sessions: number;
    /** Pause between writes of a session (default 20 ms). */
    pauseMs?: number;
    /** Every how many writes a session reads its write back and sets its watched node (default 10). */
    checkEvery?: number;
    /** Per-operation timeout (default 10 s). */
    opTimeoutMs?: number;
}

export interface Ack {
    seq: number;
    at: number;
}

export interface SessionStats {
    session: number;
    acked: Ack[];
    /** Failed operations by error name, with the time of each failure. */
    failures: { at: number; op: string; error: string }[];
    reads: number;
    readMismatches: number;
    watchesSet: number;
    watchesFired: number;
    /** New ZooKeeper sessions after the first (connect string changes, expiries). */
    newSessions: number;
}

interface Conn {
    client: zookeeper.Client;
    connect: string;
    /** Whether the data watch of this session is armed. */
    armed: boolean;
    /** Since when the client has not been connected (undefined while it is). */
    downSince?: number;
}

/**
 * A client disconnected this long has lost its session on the servers (session timeout 10 s,
 * src/zk/session.ts): it is replaced, as Curator's LOST state does. node-zookeeper-client only
 * reports EXPIRED once a server tells it so; after a long outage (the host-lost rehearsal: 6.5
 * min) its sessions stayed DISCONNECTED and never wrote again.
 */
const LOST_AFTER_MS = 25_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pad = (seq: number) => `n${String(seq).padStart(10, "0")}`;

export class StressGroup {
    readonly stats: SessionStats[] = [];
    readonly started = Date.now();
    private connect: string;
    private stopped = false;
    private loops: Promise<void>[] = [];
    private readonly pauseMs: number;
    private readonly checkEvery: number;
    private readonly opTimeoutMs: number;

    private constructor(readonly o: StressOptions) {
        this.connect = o.connect;
        this.pauseMs = o.pauseMs ?? 20;
        this.checkEvery = o.checkEvery ?? 10;
        this.opTimeoutMs = o.opTimeoutMs ?? 10_000;
    }

    /** Creates the base znodes and starts the sessions; resolves once every session has written. */
    static async start(o: StressOptions): Promise<StressGroup> {
        const g = new StressGroup(o);
        const c = await connectClient(o.connect, 30_000);
        try {
            for (let k = 0; k < o.sessions; k++) {
                await call<string>(`mkdirp ${o.base}/s${k}/w`, 15_000, (cb) => c.mkdirp(`${o.base}/s${k}/w`, cb));
            }
        } finally {
            c.close();
        }
        for (let k = 0; k < o.sessions; k++) {
            const s: SessionStats = { session: k, acked: [], failures: [], reads: 0, readMismatches: 0, watchesSet: 0, watchesFired: 0, newSessions: 0 };
            g.stats.push(s);
            g.loops.push(g.loop(k, s));
        }
        const deadline = Date.now() + 30_000;
        while (g.stats.some((s) => s.acked.length === 0)) {
            if (Date.now() > deadline) {
                await g.stop();
                throw new Error(`stress ${o.name}: not every session acknowledged a write within 30 s: ${JSON.stringify(g.stats.map((s) => s.failures.slice(-3)))}`);
            }
            await sleep(50);
        }
        return g;
    }

    /** The connect string the sessions use from their next operation on. */
    setConnect(connect: string): void {
        this.connect = connect;
    }

    get currentConnect(): string {
        return this.connect;
    }

    private async loop(k: number, s: SessionStats): Promise<void> {
        let conn: Conn | undefined;
        let seq = 0;
        const dir = `${this.o.base}/s${k}`;
        const fail = (op: string, e: unknown) => s.failures.push({ at: Date.now(), op, error: (e as { code?: string }).code ?? zkErrorName(e) });
        const arm = (c: Conn) => {
            // A data watch on the session's own node: each of its setData calls fires it once.
            c.client.getData(
                `${dir}/w`,
                () => {
                    s.watchesFired++;
                    if (conn === c && !this.stopped) arm(c);
                },
                (err) => {
                    if (err) {
                        c.armed = false;
                        fail("getData+watch", err);
                    }
                },
            );
            c.armed = true;
            s.watchesSet++;
        };
        while (!this.stopped) {
            try {
                if (conn) {
                    const st = conn.client.getState();
                    const up = st === zookeeper.State.SYNC_CONNECTED || st === zookeeper.State.CONNECTED_READ_ONLY;
                    conn.downSince = up ? undefined : (conn.downSince ?? Date.now());
                }
                if (conn && (conn.connect !== this.connect || conn.client.getState() === zookeeper.State.EXPIRED || (conn.downSince !== undefined && Date.now() - conn.downSince > LOST_AFTER_MS))) {
                    conn.client.close();
                    conn = undefined;
                }
                if (!conn) {
                    if (s.acked.length > 0 || s.failures.length > 0) s.newSessions++;
                    const connect = this.connect;
                    conn = { client: await connectClient(connect, 15_000), connect, armed: false };
                }
                const c = conn;
                if (!c.armed) arm(c);
                seq++;
                const path = `${dir}/${pad(seq)}`;
                const data = `${this.o.name}:${k}:${seq}`;
                await call<string>(`create ${path}`, this.opTimeoutMs, (cb) => c.client.create(path, Buffer.from(data), zookeeper.CreateMode.PERSISTENT, cb));
                s.acked.push({ seq, at: Date.now() });
                if (seq % this.checkEvery === 0) {
                    const got = await call<Buffer>(`getData ${path}`, this.opTimeoutMs, (cb) => c.client.getData(path, (err, d) => cb(err, d)));
                    s.reads++;
                    if (got?.toString() !== data) s.readMismatches++;
                    await call<unknown>(`setData ${dir}/w`, this.opTimeoutMs, (cb) => c.client.setData(`${dir}/w`, Buffer.from(String(seq)), -1, cb));
                }
            } catch (e) {
                fail("write", e);
                // An expired session is replaced at the top of the loop.
                await sleep(conn ? 20 : 100);
                continue;
            }
            if (this.pauseMs > 0) await sleep(this.pauseMs);
        }
        conn?.client.close();
    }

    async stop(): Promise<void> {
        this.stopped = true;
        // Every operation is bounded: a loop ends within one timeout.
        await Promise.all(this.loops);
    }

    get acknowledged(): number {
        return this.stats.reduce((n, s) => n + s.acked.length, 0);
    }

    failuresIn(w: Window): number {
        return this.stats.reduce((n, s) => n + s.failures.filter((f) => f.at >= w.start && f.at <= w.end).length, 0);
    }

    /**
     * The longest time without an acknowledged write that overlaps the window: for the worst
     * single session (`perSessionMs`) and for the group as a whole (`groupMs`, no session wrote).
     * A gap that overlaps the window counts whole, from the ack before it to the ack after it.
     */
    gaps(w: Window): { perSessionMs: number; groupMs: number } {
        const g = groupGaps(
            this.stats.map((s) => s.acked.map((a) => a.at)),
            w,
        );
        return { perSessionMs: g.perClientMs, groupMs: g.groupMs };
    }

    /** The first ack of any session at or after `t` (undefined when none). */
    firstAckAfter(t: number): number | undefined {
        let first: number | undefined;
        for (const s of this.stats) {
            const a = s.acked.find((x) => x.at >= t);
            if (a && (first === undefined || a.at < first)) first = a.at;
        }
        return first;
    }

    /**
     * The loss check against `connect` (default the current one): every acknowledged write must
     * be there. A write barrier first, so that the reads see every earlier acknowledged write.
     */
    async verify(connect: string = this.connect): Promise<{ acknowledged: number; present: number; lost: string[] }> {
        const c = await connectClient(connect, 30_000);
        try {
            await call<void>(`barrier ${this.o.base}`, 15_000, (cb) =>
                c
                    .transaction()
                    .check(this.o.base)
                    .commit((err) => cb(err)),
            );
            let acknowledged = 0;
            let present = 0;
            const lost: string[] = [];
            for (const s of this.stats) {
                const dir = `${this.o.base}/s${s.session}`;
                const children = new Set(await call<string[]>(`getChildren ${dir}`, 60_000, (cb) => c.getChildren(dir, (err, ch) => cb(err, ch))));
                present += children.size - (children.has("w") ? 1 : 0);
                for (const a of s.acked) {
                    acknowledged++;
                    if (!children.has(pad(a.seq))) lost.push(`${dir}/${pad(a.seq)}`);
                }
            }
            return { acknowledged, present, lost };
        } finally {
            c.close();
        }
    }
}
