// Kafka brokers as clients of a mitosis: the order of their rolling restart.
//
// The controller goes last. Restarting any other broker leaves the controller where it is; the
// controller's own restart moves the controller role (a new election through ZooKeeper's
// /controller) and, if it came earlier, every later restart would run against a controller that
// had just taken over. Last, there is one controller failover per rolling restart, not two.
import type { KafkaBroker } from "../types";

export interface KafkaControllerInfo {
    /** broker.id of the controller, when known. */
    controller?: number;
    /** Where it came from, or why it is unknown (printed in the preview). */
    detail: string;
}

export interface KafkaRestartOrder {
    brokers: KafkaBroker[];
    /** Why this order, for the preview ("controller 2 last", "controller unknown: config order"). */
    reason: string;
    /** Set when the order could not put the controller last. */
    warning?: string;
}

export function kafkaRestartOrder(brokers: KafkaBroker[], info: KafkaControllerInfo): KafkaRestartOrder {
    const c = info.controller;
    if (c === undefined || !brokers.some((b) => b.id === c)) {
        const why = c === undefined ? info.detail : `the controller ${c} (${info.detail}) is not one of clients.kafka.brokers`;
        return {
            brokers: [...brokers],
            reason: "config order (controller unknown)",
            warning: `Kafka controller unknown (${why}): brokers restart in config order; set clients.kafka.controller to restart the controller last`,
        };
    }
    return {
        brokers: [...brokers.filter((b) => b.id !== c), ...brokers.filter((b) => b.id === c)],
        reason: `controller ${c} last (${info.detail})`,
    };
}

/** The broker id in the data of Kafka's /controller znode (`{"version":1|2,"brokerid":N,...}`). */
export function parseControllerZnode(data: string): number | undefined {
    try {
        const v = (JSON.parse(data) as { brokerid?: unknown }).brokerid;
        return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined;
    } catch {
        return undefined;
    }
}
