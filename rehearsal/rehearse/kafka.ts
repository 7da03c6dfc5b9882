// The rehearsal's --kafka part: three brokers (ZooKeeper mode, hosts of their own) on the source's
// chroot, moved to the target in `clients` (rewritten zookeeper.connect, rolling restart, the
// controller last), under producers (idempotent, acks=all) and a consumer group through every
// phase (rehearsal/kafka-load.ts defines each figure).
import { probeKafkaController } from "../../src/zk/kafka";
import { hostsOf, kafkaBootstrap, type LocalFleet, type FleetKafkaSpec } from "../fleet";
import type { Window } from "../gaps";
import { KafkaLoad, createTopic, type KafkaFigures } from "../kafka-load";
import type { PhaseReport } from "./report";

export const TOPIC = "zkmigrate-rehearsal";

/** The fleet's brokers: 1-3 on the source ensemble's chroot. */
export function kafkaFleet(chroot: string): FleetKafkaSpec {
    return { brokers: 3, firstId: 1, zookeeper: "source", chroot };
}

/** The stack's `clients.kafka` entry for the fleet's brokers. */
export function kafkaClients(f: LocalFleet): Record<string, unknown> {
    if (!f.kafkaSettings) return {};
    return {
        kafka: {
            brokers: hostsOf(f, "kafka").map((h) => ({ id: h.id, host: h.address })),
            serverProperties: f.kafkaSettings.serverProperties,
            binDir: f.kafkaSettings.binDir,
            port: f.kafkaSettings.port,
            service: f.kafkaSettings.service,
            healthTimeoutSeconds: f.kafkaSettings.healthTimeoutSeconds,
            spacingSeconds: f.kafkaSettings.spacingSeconds,
        },
    };
}

/** The topic and the load on it; the controller read before `clients`. */
export class KafkaPart {
    controller?: number;
    private constructor(readonly load: KafkaLoad) {}

    static async start(f: LocalFleet): Promise<KafkaPart> {
        const bootstrap = kafkaBootstrap(f);
        console.error(`rehearse: Kafka: topic ${TOPIC} (3 partitions, replication factor 3, min.insync.replicas 2), producers and consumers on ${bootstrap.join(",")}`);
        await createTopic(bootstrap, TOPIC);
        return new KafkaPart(await KafkaLoad.start({ bootstrap, topic: TOPIC }));
    }

    /** Before `clients`: which broker is the controller (it must restart last). */
    async beforePhase(phase: string, kafkaConnect: string, say: (line: string) => void): Promise<void> {
        if (phase !== "clients") return;
        const c = await probeKafkaController(kafkaConnect, 5000);
        this.controller = c.controller;
        say(`rehearse: Kafka controller before clients: ${c.controller ?? "unknown"} (${c.detail})`);
    }

    phaseFigures(w: Window): NonNullable<PhaseReport["kafka"]> {
        return { acknowledged: this.load.acknowledgedIn(w), failedSends: this.load.failuresIn(w), maxProduceGapMs: this.load.gaps(w).perProducerMs };
    }

    status(w: Window): string {
        return ` · kafka acks ${this.load.acknowledged}, consumed ${this.load.consumed}, longest produce gap ${this.load.gaps(w).perProducerMs} ms`;
    }

    async verify(say: (line: string) => void): Promise<KafkaFigures> {
        const k = await this.load.verify();
        say(`rehearse: Kafka loss check (topic ${TOPIC} read from the beginning): ${k.acknowledged} acknowledged, ${k.inLog} in the log, ${k.lost} lost, ${k.duplicated} duplicated; consumers received ${k.consumed} (${k.redelivered} redelivered, ${k.notConsumedLive} not received live)`);
        return k;
    }
}
