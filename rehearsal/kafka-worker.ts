// One Kafka client of the rehearsal's load, in a process of its own (rehearsal/kafka-load.ts
// forks it): a client library bug that throws from a callback (seen with @platformatic/kafka
// 1.35 while a group coordinator restarts) ends this process, not the rehearsal; the parent
// records the crash and starts another.
//   kafka-worker.ts '<json WorkerArgs>'   (IPC: reports to the parent, `stop` from it)
import { Consumer, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka";
import { withTimeout } from "./with-timeout";

export type WorkerArgs =
    | { role: "produce"; bootstrap: string[]; topic: string; run: string; name: string; pauseMs: number }
    | { role: "consume"; bootstrap: string[]; topic: string; run: string; groupId: string; name: string }
    | { role: "verify"; bootstrap: string[]; topic: string; run: string; groupId: string; name: string };

/** Worker -> parent. `received` entries are [message id, "partition/offset"]. */
export type WorkerReport =
    | { t: "ack"; id: string; at: number; offset?: string }
    | { t: "fail"; id: string; at: number; error: string }
    | { t: "received"; batch: [string, string][] }
    | { t: "error"; at: number; error: string }
    | { t: "done" };

const CLIENT_TIMEOUT_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const report = (r: WorkerReport) => process.send?.(r);
let stopping = false;
process.on("message", (m: { t?: string }) => {
    if (m?.t === "stop") stopping = true;
});
// The parent going away ends the worker too.
process.on("disconnect", () => process.exit(0));

async function produce(a: Extract<WorkerArgs, { role: "produce" }>): Promise<void> {
    const newProducer = () => new Producer({
        clientId: `zkmigrate-rehearsal-${a.name}`,
        bootstrapBrokers: a.bootstrap,
        serializers: stringSerializers,
        idempotent: true,
        acks: -1,
        timeout: CLIENT_TIMEOUT_MS,
        retries: 30,
        retryDelay: 250,
    });
    let producer = newProducer();
    try {
        for (let seq = 0; !stopping; seq++) {
            const id = `${a.name}:${seq}`;
            try {
                // The key spreads the messages over the partitions (and so over the leaders).
                const res = await withTimeout(producer.send({ messages: [{ topic: a.topic, key: `${a.name}-${seq % 12}`, value: `${a.run}:${id}` }] }), 60_000, "send");
                // Where the broker says it wrote the message ("partition/offset"), for the loss check's diagnosis.
                const o = res.offsets?.[0];
                report({ t: "ack", id, at: Date.now(), ...(o ? { offset: `${o.partition}/${o.offset}` } : {}) });
            } catch (e) {
                // Not acknowledged: the next message gets the next number (a resend of the same
                // number would be a new record, not the producer's own retry).
                report({ t: "fail", id, at: Date.now(), error: (e as Error).message.split("\n")[0] });
                // A new producer (a new producer id) after a send whose outcome is unknown: the
                // client (1.35) advances a partition's sequence number only on success, so the next
                // message would reuse the failed one's number and, when the failed one had been
                // written after all, the broker would acknowledge it as a duplicate without writing it.
                await withTimeout(producer.close(), 20_000, "closing the producer").catch(() => undefined);
                producer = newProducer();
                await sleep(500);
            }
            await sleep(a.pauseMs);
        }
    } finally {
        await withTimeout(producer.close(), 20_000, "closing the producer").catch(() => undefined);
    }
}

/** Reads until stopped (consume) or until the end offsets read at the start (verify). */
async function consume(a: Extract<WorkerArgs, { role: "consume" | "verify" }>): Promise<void> {
    const verify = a.role === "verify";
    const consumer = new Consumer({
        clientId: `zkmigrate-rehearsal-${a.name}`,
        groupId: a.groupId,
        bootstrapBrokers: a.bootstrap,
        deserializers: stringDeserializers,
        timeout: CLIENT_TIMEOUT_MS,
        retries: verify ? 10 : 1000,
        retryDelay: 500,
        sessionTimeout: 20_000,
        heartbeatInterval: 1000,
    });
    let batch: [string, string][] = [];
    const flush = () => {
        if (batch.length > 0) report({ t: "received", batch });
        batch = [];
    };
    const flusher = setInterval(flush, 200);
    try {
        const ends = verify ? ((await withTimeout(consumer.listOffsets({ topics: [a.topic] }), 60_000, "reading end offsets")).get(a.topic) ?? []) : [];
        const left = new Set(ends.map((o, p) => (o > 0n ? p : -1)).filter((p) => p >= 0));
        const stream = await withTimeout(
            consumer.consume({ topics: [a.topic], mode: verify ? "earliest" : "committed", fallbackMode: "earliest", autocommit: verify ? false : 1000, maxWaitTime: 500 }),
            60_000,
            `${a.name} joining`,
        );
        stream.on("data", (m) => {
            const v = m.value;
            if (v && v.startsWith(`${a.run}:`)) batch.push([v.slice(a.run.length + 1), `${m.partition}/${m.offset}`]);
            if (verify && m.offset + 1n >= (ends[m.partition] ?? 0n)) left.delete(m.partition);
        });
        stream.on("error", (e) => report({ t: "error", at: Date.now(), error: (e as Error).message.split("\n")[0] }));
        const deadline = Date.now() + 120_000;
        while (verify ? left.size > 0 : !stopping) {
            if (verify && Date.now() > deadline) throw new Error(`the topic was not read to its end offsets within 120 s (partitions left: ${[...left].join(", ")})`);
            await sleep(100);
        }
    } finally {
        clearInterval(flusher);
        flush();
        await withTimeout(consumer.close(true) as unknown as Promise<void>, 20_000, "closing the consumer").catch(() => undefined);
    }
}

async function main(): Promise<void> {
    const a = JSON.parse(process.argv[2] ?? "{}") as WorkerArgs;
    if (a.role === "produce") await produce(a);
    else await consume(a);
    report({ t: "done" });
}

main().then(
    () => setTimeout(() => process.exit(0), 100),
    (e) => {
        report({ t: "error", at: Date.now(), error: (e as Error).message.split("\n")[0] });
        setTimeout(() => process.exit(1), 100);
    },
);
