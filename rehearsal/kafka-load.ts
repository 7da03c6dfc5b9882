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
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka";
import type { Window } from "./stress";

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
    lostSample: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLIENT_TIMEOUT_MS = 10_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout;
    return Promise.race([
        p.finally(() => clearTimeout(timer)),
        new Promise<T>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
        }),
    ]);
}

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

interface ProducerStats {
    name: string;
    acked: { seq: number; at: number }[];
    failures: { at: number; error: string }[];
}

export class KafkaLoad {
    readonly producers: ProducerStats[] = [];
    /** `producer:seq` -> the offsets (`partition/offset`) at which the live consumers received it, with repeats. */
    private readonly received = new Map<string, string[]>();
    readonly consumerErrors: { at: number; error: string }[] = [];
    private stopped = false;
    private loops: Promise<void>[] = [];
    private consumers: Consumer<string, string, string, string>[] = [];
    private readonly run = `r${Date.now().toString(36)}`;

    private constructor(readonly o: Required<KafkaLoadOptions>) {}

    static async start(options: KafkaLoadOptions): Promise<KafkaLoad> {
        const load = new KafkaLoad({ producers: 2, consumers: 2, pauseMs: 25, ...options });
        await load.startConsumers();
        for (let i = 0; i < load.o.producers; i++) load.startProducer(i);
        // Started: every producer has an acknowledged message (bounded).
        const deadline = Date.now() + 60_000;
        while (!load.producers.every((p) => p.acked.length > 0)) {
            if (Date.now() > deadline) {
                await load.stop();
                throw new Error(`kafka load: no acknowledged message within 60 s: ${load.producers.map((p) => `${p.name}: ${p.failures.at(-1)?.error ?? "no answer"}`).join("; ")}`);
            }
            await sleep(200);
        }
        return load;
    }

    get acknowledged(): number {
        return this.producers.reduce((n, p) => n + p.acked.length, 0);
    }

    get consumed(): number {
        return this.received.size;
    }

    private async startConsumers(): Promise<void> {
        for (let i = 0; i < this.o.consumers; i++) {
            const consumer = new Consumer({
                clientId: `zkmigrate-rehearsal-consumer-${i}`,
                groupId: `zkmigrate-rehearsal-${this.run}`,
                bootstrapBrokers: this.o.bootstrap,
                deserializers: stringDeserializers,
                timeout: CLIENT_TIMEOUT_MS,
                retries: 1000,
                retryDelay: 500,
                sessionTimeout: 20_000,
                heartbeatInterval: 1000,
            });
            this.consumers.push(consumer);
            const stream = await withTimeout(
                consumer.consume({ topics: [this.o.topic], mode: "committed", fallbackMode: "earliest", autocommit: 1000, maxWaitTime: 500 }),
                60_000,
                `consumer ${i} joining`,
            );
            stream.on("data", (m) => this.record(this.received, m.value, m.partition, m.offset));
            // A consumer error is reported by the figures (messages not consumed), not thrown here.
            // A consumer error shows in the figures (messages not consumed live); it is recorded, not thrown.
            stream.on("error", (e) => this.consumerErrors.push({ at: Date.now(), error: (e as Error).message.split("\n")[0] }));
        }
    }

    private record(into: Map<string, string[]>, value: string | undefined, partition: number, offset: bigint): void {
        if (!value || !value.startsWith(`${this.run}:`)) return;
        const id = value.slice(this.run.length + 1);
        const at = `${partition}/${offset}`;
        const list = into.get(id);
        if (list) list.push(at);
        else into.set(id, [at]);
    }

    private startProducer(i: number): void {
        const stats: ProducerStats = { name: `p${i}`, acked: [], failures: [] };
        this.producers.push(stats);
        const producer = new Producer({
            clientId: `zkmigrate-rehearsal-producer-${i}`,
            bootstrapBrokers: this.o.bootstrap,
            serializers: stringSerializers,
            idempotent: true,
            acks: -1,
            timeout: CLIENT_TIMEOUT_MS,
            retries: 30,
            retryDelay: 250,
        });
        this.loops.push(
            (async () => {
                try {
                    for (let seq = 0; !this.stopped; seq++) {
                        try {
                            // The key spreads the messages over the partitions (and so over the leaders).
                            await withTimeout(
                                producer.send({ messages: [{ topic: this.o.topic, key: `${stats.name}-${seq % 12}`, value: `${this.run}:${stats.name}:${seq}` }] }),
                                60_000,
                                "send",
                            );
                            stats.acked.push({ seq, at: Date.now() });
                        } catch (e) {
                            // Not acknowledged: the next message gets the next number (a resend of the
                            // same number would be a new record, not the producer's own retry).
                            stats.failures.push({ at: Date.now(), error: (e as Error).message.split("\n")[0] });
                            await sleep(500);
                        }
                        await sleep(this.o.pauseMs);
                    }
                } finally {
                    await producer.close().catch(() => undefined);
                }
            })(),
        );
    }

    /** The longest time without an acknowledged send of one producer within `w` (as stress.ts counts write gaps). */
    gaps(w: Window): { perProducerMs: number; groupMs: number } {
        const gapIn = (times: number[]) => {
            let max = 0;
            let prev: number | undefined;
            for (const t of times) {
                if (prev !== undefined && t > w.start && prev < w.end) max = Math.max(max, t - prev);
                prev = t;
                if (t > w.end) break;
            }
            if (prev !== undefined && prev < w.end) max = Math.max(max, w.end - prev);
            return max;
        };
        const perProducerMs = Math.max(0, ...this.producers.map((p) => gapIn(p.acked.map((a) => a.at))));
        const all = this.producers.flatMap((p) => p.acked.map((a) => a.at)).sort((a, b) => a - b);
        return { perProducerMs, groupMs: gapIn(all) };
    }

    acknowledgedIn(w: Window): number {
        return this.producers.reduce((n, p) => n + p.acked.filter((a) => a.at >= w.start && a.at <= w.end).length, 0);
    }

    failuresIn(w: Window): number {
        return this.producers.reduce((n, p) => n + p.failures.filter((f) => f.at >= w.start && f.at <= w.end).length, 0);
    }

    /** Stops the producers; the consumers keep reading until they caught up (bounded) and stop. */
    async stop(drainMs = 60_000): Promise<void> {
        if (this.stopped && this.consumers.length === 0) return;
        this.stopped = true;
        await Promise.all(this.loops);
        const want = this.producers.flatMap((p) => p.acked.map((a) => `${p.name}:${a.seq}`));
        const deadline = Date.now() + drainMs;
        while (want.some((id) => !this.received.has(id)) && Date.now() < deadline) await sleep(250);
        await Promise.all(this.consumers.map((c) => withTimeout((c.close(true) as unknown as Promise<void>), 30_000, "closing a consumer").catch(() => undefined)));
        this.consumers = [];
    }

    /** The loss check: a fresh consumer reads the topic from the beginning up to its end offsets. */
    async verify(): Promise<KafkaFigures> {
        await this.stop();
        const inLog = new Map<string, string[]>();
        const admin = new Admin({ clientId: "zkmigrate-rehearsal-verify", bootstrapBrokers: this.o.bootstrap, timeout: CLIENT_TIMEOUT_MS, retries: 10, retryDelay: 500 });
        const consumer = new Consumer({
            clientId: "zkmigrate-rehearsal-verify",
            groupId: `zkmigrate-rehearsal-verify-${this.run}`,
            bootstrapBrokers: this.o.bootstrap,
            deserializers: stringDeserializers,
            timeout: CLIENT_TIMEOUT_MS,
            retries: 10,
            retryDelay: 500,
        });
        try {
            const end = await withTimeout(consumer.listOffsets({ topics: [this.o.topic] }), 60_000, "reading end offsets");
            const ends = end.get(this.o.topic) ?? [];
            const remaining = new Map<number, bigint>(ends.map((o, p) => [p, o]));
            const stream = await withTimeout(consumer.consume({ topics: [this.o.topic], mode: "earliest", autocommit: false, maxWaitTime: 500 }), 60_000, "verify consumer joining");
            const deadline = Date.now() + 120_000;
            await new Promise<void>((resolve, reject) => {
                const done = () => [...remaining.values()].every((o) => o <= 0n);
                if (done()) return resolve();
                const timer = setInterval(() => {
                    if (Date.now() > deadline) {
                        clearInterval(timer);
                        reject(new Error(`verify: the topic was not read to its end offsets within 120 s (left: ${JSON.stringify([...remaining].map(([p, o]) => [p, String(o)]))})`));
                    }
                }, 500);
                stream.on("data", (m) => {
                    this.record(inLog, m.value, m.partition, m.offset);
                    const endOffset = ends[m.partition] ?? 0n;
                    if (m.offset + 1n >= endOffset) remaining.set(m.partition, 0n);
                    if (done()) {
                        clearInterval(timer);
                        resolve();
                    }
                });
                stream.on("error", (e) => {
                    clearInterval(timer);
                    reject(e);
                });
            });
        } finally {
            await withTimeout(consumer.close(true) as unknown as Promise<void>, 30_000, "closing the verify consumer").catch(() => undefined);
            await admin.close().catch(() => undefined);
        }
        const acked = this.producers.flatMap((p) => p.acked.map((a) => `${p.name}:${a.seq}`));
        const lost = acked.filter((id) => !inLog.has(id));
        let duplicated = 0;
        for (const at of inLog.values()) if (new Set(at).size > 1) duplicated += new Set(at).size - 1;
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
            lostSample: lost.slice(0, 10),
        };
    }
}
