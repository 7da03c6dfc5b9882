// ZooKeeper clients for the integration tests (node-zookeeper-client, every call bounded), and
// the writers: sessions that create sequence-numbered znodes continuously and record which
// writes were acknowledged and when, the seed's stress test with sequence numbers.
import * as zookeeper from "node-zookeeper-client";
import { call } from "../../../src/zk/session";

export interface Client {
    client: zookeeper.Client;
    connect: string;
    close(): void;
}

/** A session to any server of `connect` (host:port,...), resolved once connected. */
export function openClient(connect: string, o: { timeoutMs?: number; sessionTimeoutMs?: number } = {}): Promise<Client> {
    const timeoutMs = o.timeoutMs ?? 20_000;
    const client = zookeeper.createClient(connect, { sessionTimeout: o.sessionTimeoutMs ?? 10_000, spinDelay: 100, retries: 0 });
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            client.close();
            reject(new Error(`no ZooKeeper session with ${connect} within ${timeoutMs} ms`));
        }, timeoutMs);
        client.once("connected", () => {
            clearTimeout(timer);
            resolve({ client, connect, close: () => client.close() });
        });
        client.connect();
    });
}

export function create(c: Client, path: string, data: string, timeoutMs = 10_000): Promise<string> {
    return call<string>(`create ${path}`, timeoutMs, (cb) => c.client.create(path, Buffer.from(data), zookeeper.CreateMode.PERSISTENT, cb));
}

export function mkdirp(c: Client, path: string, timeoutMs = 10_000): Promise<string> {
    return call<string>(`mkdirp ${path}`, timeoutMs, (cb) => c.client.mkdirp(path, cb));
}

export function getChildren(c: Client, path: string, timeoutMs = 20_000): Promise<string[]> {
    return call<string[]>(`getChildren ${path}`, timeoutMs, (cb) => c.client.getChildren(path, (err, children) => cb(err, children)));
}

export async function getData(c: Client, path: string, timeoutMs = 10_000): Promise<string> {
    const b = await call<Buffer>(`getData ${path}`, timeoutMs, (cb) => c.client.getData(path, (err, data) => cb(err, data)));
    return b ? b.toString() : "";
}

/** A write barrier (multi with a check of an existing node): later reads see every earlier ack. */
export function barrier(c: Client, existingPath: string, timeoutMs = 10_000): Promise<void> {
    return call<void>(`barrier ${existingPath}`, timeoutMs, (cb) =>
        c.client
            .transaction()
            .check(existingPath)
            .commit((err) => cb(err)),
    );
}

/** Creates `count` znodes `<base>/d<i>` holding `v<i>`, 100 per multi; returns their names. */
export async function writeData(c: Client, base: string, count: number): Promise<string[]> {
    await mkdirp(c, base);
    const names: string[] = [];
    for (let i = 0; i < count; i += 100) {
        const tx = c.client.transaction();
        for (let j = i; j < Math.min(count, i + 100); j++) {
            const name = `d${String(j).padStart(5, "0")}`;
            tx.create(`${base}/${name}`, Buffer.from(`v${j}`), zookeeper.CreateMode.PERSISTENT);
            names.push(name);
        }
        await call<void>(`multi create under ${base}`, 20_000, (cb) => tx.commit((err) => cb(err)));
    }
    return names;
}

// ---------------------------------------------------------------------------------------------
// Writers

export interface Ack {
    seq: number;
    at: number;
}

export interface WriterReport {
    session: number;
    acked: Ack[];
    failed: number;
    reconnects: number;
    errors: Record<string, number>;
}

export interface StepWindow {
    label: string;
    start: number;
    end: number;
}

/**
 * `sessions` clients, each writing `<base>/s<k>/n<seq>` one at a time (a short pause between
 * writes) until stopped. A session that expires is replaced by a new one.
 */
export class Writers {
    private stopped = false;
    private loops: Promise<void>[] = [];
    readonly reports: WriterReport[] = [];
    readonly started = Date.now();

    private constructor(
        readonly connect: string,
        readonly base: string,
        readonly sessions: number,
        private readonly pauseMs: number,
    ) {}

    static async start(o: { connect: string; base: string; sessions: number; pauseMs?: number }): Promise<Writers> {
        const w = new Writers(o.connect, o.base, o.sessions, o.pauseMs ?? 20);
        const setup = await openClient(o.connect);
        try {
            for (let k = 0; k < o.sessions; k++) await mkdirp(setup, `${o.base}/s${k}`);
        } finally {
            setup.close();
        }
        for (let k = 0; k < o.sessions; k++) {
            const report: WriterReport = { session: k, acked: [], failed: 0, reconnects: 0, errors: {} };
            w.reports.push(report);
            w.loops.push(w.loop(k, report));
        }
        // Every session writes before anything is restarted.
        const deadline = Date.now() + 30_000;
        while (w.reports.some((r) => r.acked.length === 0)) {
            if (Date.now() > deadline) throw new Error(`writers: not every session acknowledged a write within 30 s (${JSON.stringify(w.reports.map((r) => r.errors))})`);
            await new Promise((r) => setTimeout(r, 50));
        }
        return w;
    }

    private async loop(k: number, report: WriterReport): Promise<void> {
        let c: Client | undefined;
        let seq = 0;
        while (!this.stopped) {
            try {
                if (!c) c = await openClient(this.connect, { timeoutMs: 15_000 });
                seq++;
                const at0 = Date.now();
                await create(c, `${this.base}/s${k}/n${String(seq).padStart(8, "0")}`, `${k}:${seq}:${at0}`, 15_000);
                report.acked.push({ seq, at: Date.now() });
            } catch (e) {
                report.failed++;
                const code = (e as { code?: string }).code ?? (e as Error).message;
                report.errors[code] = (report.errors[code] ?? 0) + 1;
                // An expired session (or one that cannot connect) is replaced.
                if (c && (c.client.getState() === zookeeper.State.EXPIRED || code === "SESSION_EXPIRED")) {
                    c.close();
                    c = undefined;
                    report.reconnects++;
                }
                await new Promise((r) => setTimeout(r, 50));
                continue;
            }
            if (this.pauseMs > 0) await new Promise((r) => setTimeout(r, this.pauseMs));
        }
        c?.close();
    }

    async stop(): Promise<WriterReport[]> {
        this.stopped = true;
        await Promise.all(this.loops);
        return this.reports;
    }

    /** Reads every session's znodes back; returns the acknowledged writes that are missing. */
    async verify(readConnect: string = this.connect): Promise<{ acked: number; present: number; missing: string[] }> {
        const c = await openClient(readConnect);
        try {
            // Reads after the barrier see every write acknowledged before it.
            await barrier(c, this.base);
            let acked = 0;
            let present = 0;
            const missing: string[] = [];
            for (const r of this.reports) {
                const children = new Set(await getChildren(c, `${this.base}/s${r.session}`, 60_000));
                present += children.size;
                for (const a of r.acked) {
                    acked++;
                    if (!children.has(`n${String(a.seq).padStart(8, "0")}`)) missing.push(`${this.base}/s${r.session}/n${a.seq}`);
                }
            }
            return { acked, present, missing };
        } finally {
            c.close();
        }
    }

    /**
     * The longest time without an acknowledged write within a window: per session (the worst
     * session), and for all sessions together.
     */
    gaps(w: StepWindow): { perSessionMs: number; anySessionMs: number } {
        const gapIn = (times: number[]) => {
            const inside = [w.start, ...times.filter((t) => t > w.start && t < w.end), w.end];
            // A gap that starts before the window counts from its last ack before the window.
            const before = times.filter((t) => t <= w.start);
            if (before.length > 0) inside[0] = before[before.length - 1];
            const after = times.find((t) => t >= w.end);
            if (after !== undefined) inside[inside.length - 1] = after;
            let max = 0;
            for (let i = 1; i < inside.length; i++) max = Math.max(max, inside[i] - inside[i - 1]);
            return max;
        };
        const perSession = Math.max(...this.reports.map((r) => gapIn(r.acked.map((a) => a.at))));
        const all = this.reports.flatMap((r) => r.acked.map((a) => a.at)).sort((a, b) => a - b);
        return { perSessionMs: perSession, anySessionMs: gapIn(all) };
    }
}
