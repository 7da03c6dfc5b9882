// Kafka brokers as clients of a mitosis: the order of their rolling restart, and the broker steps.
//
// The controller goes last. Restarting any other broker leaves the controller where it is; the
// controller's own restart moves the controller role (a new election through ZooKeeper's
// /controller) and, if it came earlier, every later restart would run against a controller that
// had just taken over. Last, there is one controller failover per rolling restart, not two.
import { formatConnectString } from "../format/connect-string";
import { hostTarget, type KafkaControllerInfo, type Step } from "../steps";
import type { DesiredState, KafkaBroker } from "../types";

export type { KafkaControllerInfo } from "../steps";

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

/**
 * The broker steps of an update: one per broker, chained in restart order after `after` (every
 * ZooKeeper step of the update: brokers move only onto an ensemble that serves). A broker's step
 * restarts it exactly when the connect string it runs with changes (the `clients` phase, or a
 * step back from it); otherwise it only adopts the broker (a gate).
 */
export function brokerSteps(from: DesiredState, to: DesiredState, info: KafkaControllerInfo, after: string[]): { steps: Step[]; order: KafkaRestartOrder; moves: boolean } {
    const kafka = to.clients.kafka!;
    const order = kafkaRestartOrder(kafka.brokers, info);
    const before = from.clients.kafka?.connect;
    const moves = before !== undefined && formatConnectString(before) !== formatConnectString(kafka.connect);
    const steps: Step[] = [];
    let previous: string | undefined;
    order.brokers.forEach((b, position) => {
        const id = `kafka-broker-${b.id}`;
        steps.push({
            id,
            kind: "broker",
            after: [...after, ...(previous ? [previous] : [])],
            target: hostTarget(b),
            broker: b,
            settings: kafka.settings,
            connect: kafka.connect,
            position,
            // Without a move the step only adopts the broker: an edited setting must not restart it.
            ...(moves ? { effect: { kind: "broker-restart" as const, broker: b.id, connect: kafka.connect, reason: position === order.brokers.length - 1 ? order.reason : "broker" } } : { frozen: true }),
        });
        previous = id;
    });
    return { steps, order, moves };
}
