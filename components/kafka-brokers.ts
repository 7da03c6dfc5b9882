// Kafka brokers as clients of a mitosis (seed 003: Kafka's ZooKeeper moved without Kafka
// noticing): in the `clients` phase each broker's `zookeeper.connect` is rewritten and the broker
// restarted, one at a time, the controller last, each gated until the broker is back in the
// cluster and no partition is under-replicated (src/scripts/kafka.ts).
//
// Like the ZooKeeper restarts (host-servers.ts), a broker's `remote.Command` adopts the broker on
// create (rewrites nothing when server.properties already holds the connect string of the phase;
// only the gate) and restarts it on update. The script text carries the connect string the broker
// must run with, so it changes exactly once, when the phase reaches `clients` (and back, on a step
// back): later phases show no diff and touch no broker.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { formatConnect } from "../src/procedures/common";
import { kafkaRestartOrder, type KafkaControllerInfo, type KafkaRestartOrder } from "../src/procedures/kafka";
import { asRemoteCommand, renderKafkaBroker } from "../src/scripts";
import type { KafkaClients } from "../src/types";
import type { SshArgs } from "./host-servers";

export const KAFKA_BROKERS_TYPE = "zkmigrate:kafka:Brokers";

export interface KafkaBrokersArgs {
    /** The brokers and the connect string they run with in this phase (DesiredState.clients.kafka). */
    kafka: KafkaClients;
    /** SSH to the broker hosts (the same user and key as the ZooKeeper hosts). */
    ssh: SshArgs;
    /** The controller, to restart it last (index.ts reads /controller at preview); default: unknown, config order. */
    controller?: KafkaControllerInfo;
    /** Resources every broker step waits for: the ZooKeeper steps of the same update. */
    after?: pulumi.Input<pulumi.Resource>[];
}

export class KafkaBrokers extends pulumi.ComponentResource {
    /** The restart order of this update (controller last when known) and why. */
    readonly order: KafkaRestartOrder;
    /** One command per broker, by broker.id. */
    readonly brokers = new Map<number, command.remote.Command>();

    constructor(name: string, args: KafkaBrokersArgs, opts?: pulumi.ComponentResourceOptions) {
        super(KAFKA_BROKERS_TYPE, name, {}, opts);
        const { kafka, ssh } = args;
        this.order = kafkaRestartOrder(kafka.brokers, args.controller ?? { detail: "not probed" });
        if (this.order.warning) pulumi.log.warn(this.order.warning, this);
        pulumi.log.info(
            `${name}: brokers ${this.order.brokers.map((b) => b.id).join(", ")} (${this.order.reason}) run with zookeeper.connect=${formatConnect(kafka.connect)}; ` +
                "restarted, one at a time, only when that connect string changes",
            this,
        );

        let previous: command.remote.Command | undefined;
        for (const b of this.order.brokers) {
            const script = (mode: "adopt" | "restart") =>
                asRemoteCommand(renderKafkaBroker({ brokerId: b.id, host: b.host, kafka: kafka.settings, connect: kafka.connect, mode }));
            const cmd = new command.remote.Command(
                `${name}-broker-${b.id}`,
                {
                    connection: {
                        host: b.sshHost ?? b.host,
                        port: ssh.port,
                        user: ssh.user,
                        privateKey: pulumi.secret(ssh.privateKey),
                        dialErrorLimit: 10,
                    },
                    create: script("adopt"),
                    update: script("restart"),
                    // A broker's restart is not undone by deleting the record of it; server.properties
                    // keeps the connect string of the last step (and its backups).
                },
                { parent: this, dependsOn: [...(args.after ?? []), ...(previous ? [previous] : [])] },
            );
            this.brokers.set(b.id, cmd);
            previous = cmd;
        }
        this.registerOutputs({ restartOrder: this.order.brokers.map((b) => b.id) });
    }
}
