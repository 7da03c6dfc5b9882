// The rehearsal's Kafka load, after Yelp's check that mitosis loses no message: producers
// (idempotent, acks=all) send sequence-numbered messages one at a time and record when each was
// acknowledged; a consumer group reads them throughout. At the end a fresh consumer reads the
// whole topic from the beginning (the log as it is), and every acknowledged message must be there.
//
// Client: @platformatic/kafka, a maintained pure-JavaScript client (kafkajs has had no release
// since 2023; the librdkafka bindings need prebuilt native binaries from GitHub). It speaks
// Kafka 3.5 to 4.1 and has the idempotent producer (acks=all, one request in flight).
//
// Definitions (the report's `kafka` object):
//   acknowledged  messages whose send() resolved (acks=all: in the ISR of their partition);
//   consumed      distinct messages the live consumer group received during the run;
//   lost          acknowledged messages absent from the log read at the end (must be 0);
//   duplicated    messages present in the log more than once (at two offsets): what the
//                 idempotent producer prevents. A message a consumer received twice at the same
//                 offset (a replay after a rebalance or an uncommitted offset) is a redelivery,
//                 counted apart in `redelivered`: at-least-once consuming allows it.
// Every client runs in a worker process (rehearsal/kafka-worker.ts); a worker that crashes is
// recorded (`workerCrashes`) and replaced: a producer by a new one with a new name (its sequence
// numbers stay unique), a consumer by a new member of the same group. After a failed send a
// producer starts over with a new producer id (see kafka-worker.ts: the client reuses the failed
// message's idempotence sequence number, and the broker drops the next message as its duplicate).
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { Admin } from "@platformatic/kafka";
import { groupGaps, type Window } from "./gaps";
import { withTimeout } from "./with-timeout";
import type { WorkerArgs, WorkerReport } from "./kafka-worker";

export interface KafkaLoadOptions {
    /** host:port of the brokers. */
    bootstrap: string[];
    topic: string;
    /** Producers, each with its own sequence (default 2). */
    producers?: number;
    /** Consumers of the live group (default 2). */
    consumers?: number;
    /** Pause between sends of a producer (default 25 ms). */
    pauseMs?: number;
}

export interface KafkaFigures {
    acknowledged: number;
    consumed: number;
    lost: number;
    duplicated: number;
    redelivered: number;
    /** Sends that failed (not acknowledged; they may or may not be in the log, and count as neither). */
    failedSends: number;
    /** Acknowledged messages the live consumers had not received when they stopped. */
    notConsumedLive: number;
    /** Messages in the log at the end. */
    inLog: number;
    /** Worker processes that died of a client error and were replaced. */
    workerCrashes: number;
    /** Consumers replaced because they had stopped receiving (a client stall, see checkStalls). */
    consumerStalls: number;
    lostSample: string[];
    /**
     * Per lost message (at most 20): when it was acknowledged, the offset the broker acknowledged
     * it at, and what the log holds at that offset now (another message: the log was truncated
     * and rewritten after the acknowledgement; nothing: the offset is gone).
     */
    lostDetail: { id: string; ackedAt: string; offset?: string; nowAtOffset: string }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLIENT_TIMEOUT_MS = 10_000;

/** Creates the topic (replication factor 3, min.insync.replicas 2) unless it exists. */
export async function createTopic(bootstrap: string[], topic: string, partitions = 3, replicas = 3): Promise<void> {
    const admin = new Admin({ clientId: "zkmigrate-rehearsal-admin", bootstrapBrokers: bootstrap, timeout: CLIENT_TIMEOUT_MS, retries: 5, retryDelay: 1000 });
    try {
        const existing = await withTimeout(admin.listTopics(), 30_000, "listing topics");
        if (!existing.includes(topic)) {
            await withTimeout(
                admin.createTopics({ topics: [topic], partitions, replicas, configs: [{ name: "min.insync.replicas", value: "2" }] }),
                60_000,
                `creating topic ${topic}`,
            );
        }
        // Bounded: until every partition has a leader and its full ISR.
        const deadline = Date.now() + 60_000;
        for (;;) {
            const md = await withTimeout(admin.metadata({ topics: [topic], forceUpdate: true }), 30_000, "reading metadata");
            const t = md.topics.get(topic);
            if (t && t.partitions.length === partitions && t.partitions.every((p) => p && p.leader >= 0 && p.isr.length === replicas)) return;
            if (Date.now() > deadline) throw new Error(`topic ${topic}: partitions not fully in sync within 60 s: ${JSON.stringify(t?.partitions ?? [])}`);
            await sleep(500);
        }
    } finally {
        await admin.close().catch(() => undefined);
    }
}

interface Slot {
    name: string;
    acked: { id: string; at: number; offset?: string }[];
    failures: { at: number; error: string }[];
}

interface Worker {
    args: WorkerArgs;
    child: ChildProcess;
    stderr: string;
    done: Promise<number | null>;
    startedAt: number;
    /** When it last reported a received message (consumers). */
    lastReceivedAt: number;
    /** Replaced by the watchdog (not a crash). */
    stalled?: boolean;
}

const WORKER = join(__dirname, "kafka-worker.ts");
const MAX_RESTARTS = 20;
/** A consumer that received nothing for this long while the producers were acknowledged is replaced. */
const STALL_MS = 20_000;

export class KafkaLoad {
    readonly producers: Slot[] = [];
    readonly consumerErrors: { at: number; error: string }[] = [];
    readonly crashes: { at: number; worker: string; error: string }[] = [];
    /** Consumers replaced because they stopped receiving while messages were produced. */
    readonly stalls: { at: number; worker: string }[] = [];
    private watchdog?: NodeJS.Timeout;
    /** message id -> the offsets ("partition/offset") at which the live consumers received it, with repeats. */
    private readonly received = new Map<string, string[]>();
    private stopped = false;
    private readonly workers = new Set<Worker>();
    private loops: Promise<void>[] = [];
    private readonly run = `r${Date.now().toString(36)}${process.pid}`;

    private constructor(readonly o: Required<KafkaLoadOptions>) {}

    static async start(options: KafkaLoadOptions): Promise<KafkaLoad> {
        const load = new KafkaLoad({ producers: 2, consumers: 2, pauseMs: 25, ...options });
        const groupId = `zkmigrate-rehearsal-${load.run}`;
        for (let i = 0; i < load.o.consumers; i++) {
            load.loops.push(load.supervise(`consumer-${i}`, (gen) => ({ role: "consume", bootstrap: load.o.bootstrap, topic: load.o.topic, run: load.run, groupId, name: `c${i}.${gen}` })));
        }
        for (let i = 0; i < load.o.producers; i++) {
            const slot: Slot = { name: `p${i}`, acked: [], failures: [] };
            load.producers.push(slot);
            load.loops.push(
                load.supervise(`producer-${i}`, (gen) => ({ role: "produce", bootstrap: load.o.bootstrap, topic: load.o.topic, run: load.run, name: `p${i}.${gen}`, pauseMs: load.o.pauseMs }), slot),
            );
        }
        load.watchdog = setInterval(() => load.checkStalls(), 2000);
        load.watchdog.unref();
        // Started: every producer has an acknowledged message (bounded).
        const deadline = Date.now() + 90_000;
        while (!load.producers.every((p) => p.acked.length > 0)) {
            if (Date.now() > deadline) {
                await load.stop(0);
                throw new Error(`kafka load: no acknowledged message within 90 s: ${load.producers.map((p) => `${p.name}: ${p.failures.at(-1)?.error ?? "no answer"}`).concat(load.crashes.map((c) => `${c.worker} crashed: ${c.error}`)).join("; ")}`);
            }
            await sleep(200);
        }
        return load;
    }

    private spawn(args: WorkerArgs, slot?: Slot, into: Map<string, string[]> = this.received): Worker {
        const child = fork(WORKER, [JSON.stringify(args)], { execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "pipe", "ipc"] });
        const w: Worker = { args, child, stderr: "", done: Promise.resolve(null), startedAt: Date.now(), lastReceivedAt: Date.now() };
        child.stderr?.on("data", (d) => (w.stderr = (w.stderr + String(d)).slice(-4000)));
        child.on("message", (m: WorkerReport) => {
            if (m.t === "ack") slot?.acked.push({ id: m.id, at: m.at, offset: m.offset });
            else if (m.t === "fail") slot?.failures.push({ at: m.at, error: m.error });
            else if (m.t === "received") {
                w.lastReceivedAt = Date.now();
                for (const [id, at] of m.batch) this.record(into, id, at);
            }
            else if (m.t === "error") this.consumerErrors.push({ at: m.at, error: `${args.role} ${args.name}: ${m.error}` });
        });
        w.done = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
        this.workers.add(w);
        void w.done.then(() => this.workers.delete(w));
        return w;
    }

    /** Runs a worker until stop(), replacing it when it dies (bounded). */
    private async supervise(label: string, argsOf: (generation: number) => WorkerArgs, slot?: Slot): Promise<void> {
        for (let gen = 0; !this.stopped && gen <= MAX_RESTARTS; gen++) {
            const w = this.spawn(argsOf(gen), slot);
            const code = await w.done;
            if (this.stopped) return;
            if (w.stalled) continue;
            const last = w.stderr.split("\n").filter((l) => l.trim() && !/^\s+at /.test(l)).slice(-2).join(" | ");
            this.crashes.push({ at: Date.now(), worker: label, error: `exit ${code}: ${last}`.slice(0, 400) });
            await sleep(1000);
        }
    }

    /**
     * The client library sometimes stops fetching after a leader moved, without an error: a
     * consumer that received nothing for STALL_MS while messages were acknowledged leaves the
     * group (stop, SIGKILL 10 s later) and a new member takes over from the committed offsets.
     */
    private checkStalls(): void {
        if (this.stopped) return;
        const now = Date.now();
        const lastAck = Math.max(0, ...this.producers.map((p) => p.acked.at(-1)?.at ?? 0));
        for (const w of this.workers) {
            if (w.args.role !== "consume" || w.stalled || now - lastAck > 2000) continue;
            if (now - w.lastReceivedAt > STALL_MS && now - w.startedAt > STALL_MS) {
                w.stalled = true;
                this.stalls.push({ at: now, worker: w.args.name });
                if (w.child.connected) w.child.send({ t: "stop" });
                setTimeout(() => w.child.kill("SIGKILL"), 10_000).unref();
            }
        }
    }

    get acknowledged(): number {
        return this.producers.reduce((n, p) => n + p.acked.length, 0);
    }

    get consumed(): number {
        return this.received.size;
    }

    private record(into: Map<string, string[]>, id: string, at: string): void {
        const list = into.get(id);
        if (list) list.push(at);
        else into.set(id, [at]);
    }

    /** The longest time without an acknowledged send of one producer within `w` (as stress.ts counts write gaps). */
    gaps(w: Window): { perProducerMs: number; groupMs: number } {
        const g = groupGaps(
            this.producers.map((p) => p.acked.map((a) => a.at)),
            w,
        );
        return { perProducerMs: g.perClientMs, groupMs: g.groupMs };
    }

    acknowledgedIn(w: Window): number {
        return this.producers.reduce((n, p) => n + p.acked.filter((a) => a.at >= w.start && a.at <= w.end).length, 0);
    }

    failuresIn(w: Window): number {
        return this.producers.reduce((n, p) => n + p.failures.filter((f) => f.at >= w.start && f.at <= w.end).length, 0);
    }

    /** Stops the producers, lets the consumers catch up (at most drainMs), then stops them; bounded. */
    async stop(drainMs = 60_000): Promise<void> {
        const stopWorkers = async (pred: (w: Worker) => boolean) => {
            const ws = [...this.workers].filter(pred);
            for (const w of ws) w.child.connected && w.child.send({ t: "stop" });
            const timer = setTimeout(() => ws.forEach((w) => w.child.kill("SIGKILL")), 30_000);
            await Promise.all(ws.map((w) => w.done));
            clearTimeout(timer);
        };
        this.stopped = true;
        if (this.watchdog) clearInterval(this.watchdog);
        await stopWorkers((w) => w.args.role === "produce");
        const want = this.producers.flatMap((p) => p.acked.map((a) => a.id));
        const deadline = Date.now() + drainMs;
        while (want.some((id) => !this.received.has(id)) && Date.now() < deadline) await sleep(250);
        await stopWorkers(() => true);
        await Promise.all(this.loops);
    }

    /** The loss check: a fresh consumer reads the topic from the beginning up to its end offsets (retried if its worker dies). */
    async verify(): Promise<KafkaFigures> {
        await this.stop();
        let inLog = new Map<string, string[]>();
        let error = "";
        for (let attempt = 0; attempt < 3; attempt++) {
            inLog = new Map();
            const w = this.spawn({ role: "verify", bootstrap: this.o.bootstrap, topic: this.o.topic, run: this.run, groupId: `zkmigrate-rehearsal-verify-${this.run}-${attempt}`, name: `verify.${attempt}` }, undefined, inLog);
            const timer = setTimeout(() => w.child.kill("SIGKILL"), 240_000);
            const code = await w.done;
            clearTimeout(timer);
            if (code === 0) {
                error = "";
                break;
            }
            error = `verify worker exit ${code}: ${w.stderr.split("\n").filter((l) => l.trim() && !/^\s+at /.test(l)).slice(-2).join(" | ")}`;
            this.crashes.push({ at: Date.now(), worker: "verify", error });
        }
        if (error) throw new Error(`kafka loss check: the topic could not be read: ${error}`);
        const acked = this.producers.flatMap((p) => p.acked.map((a) => a.id));
        const lost = acked.filter((id) => !inLog.has(id));
        const atOffset = new Map<string, string>();
        for (const [id, offsets] of inLog) for (const o of offsets) atOffset.set(o, id);
        const ackOf = new Map(this.producers.flatMap((p) => p.acked.map((a) => [a.id, a] as const)));
        const lostDetail = lost.slice(0, 20).map((id) => {
            const a = ackOf.get(id)!;
            return { id, ackedAt: new Date(a.at).toISOString(), offset: a.offset, nowAtOffset: a.offset ? (atOffset.get(a.offset) ?? "nothing") : "unknown" };
        });
        let duplicated = 0;
        for (const at of inLog.values()) duplicated += new Set(at).size - 1;
        let redelivered = 0;
        for (const at of this.received.values()) redelivered += at.length - new Set(at).size;
        return {
            acknowledged: acked.length,
            consumed: this.received.size,
            lost: lost.length,
            duplicated,
            redelivered,
            failedSends: this.producers.reduce((n, p) => n + p.failures.length, 0),
            notConsumedLive: acked.filter((id) => !this.received.has(id)).length,
            inLog: inLog.size,
            workerCrashes: this.crashes.length,
            consumerStalls: this.stalls.length,
            lostSample: lost.slice(0, 10),
            lostDetail,
        };
    }
}
