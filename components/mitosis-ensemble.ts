// A mitosis migration of one ensemble: the host steps of every phase (seed 003).
import * as pulumi from "@pulumi/pulumi";
import type { MitosisConfig } from "../src/config";
import type { EnsemblePlan } from "../src/model";
import type { KafkaControllerInfo } from "../src/procedures/kafka";
import { declareHostServers, type HostServers, type SshArgs } from "./host-servers";
import { KafkaBrokers } from "./kafka-brokers";
import { MigrationEnsemble } from "./migration-ensemble";

export const MITOSIS_ENSEMBLE_TYPE = "zkmigrate:mitosis:Ensemble";

export interface MitosisEnsembleArgs {
    /** The validated ensemble config (src/config.ts). */
    ensemble: MitosisConfig;
    /** The checked plan from the applied phase to `ensemble.phase` (src/model.ts `planFleet`). */
    plan: EnsemblePlan;
    /** SSH to the hosts; the key stays secret. */
    ssh: SshArgs;
    /** The Kafka controller (read from /controller at preview), so that it restarts last. */
    kafkaController?: KafkaControllerInfo;
}

export class MitosisEnsemble extends MigrationEnsemble {
    readonly hosts: HostServers;
    /** The Kafka brokers (clients.kafka), when configured. */
    readonly kafka?: KafkaBrokers;

    constructor(name: string, args: MitosisEnsembleArgs, opts?: pulumi.ComponentResourceOptions) {
        super(MITOSIS_ENSEMBLE_TYPE, name, args.plan, opts);
        this.hosts = declareHostServers(this, { name, ensemble: args.ensemble, plan: args.plan, ssh: args.ssh, preflight: (s) => preflightOf(args.ensemble, s.id) });
        const kafka = args.plan.desired.clients.kafka;
        if (kafka) {
            // After every ZooKeeper step of the update: brokers move only onto an ensemble that serves.
            this.kafka = new KafkaBrokers(`${name}-kafka`, { kafka, ssh: args.ssh, controller: args.kafkaController, after: this.hosts.all }, { parent: this });
        }
        this.publish([...this.hosts.all, ...(this.kafka ? this.kafka.brokers.values() : [])]);
    }
}

/**
 * Before anything changes: every server reaches every other one on the client and election ports
 * (the peer port listens only on a leader, so it cannot be checked from every host). The targets
 * do not run yet (they are empty and join later): for them a refused connection proves the path.
 */
function preflightOf(e: MitosisConfig, self: number) {
    const all = [...e.source.map((s) => ({ ...s, listening: true })), ...e.target.map((s) => ({ ...s, listening: false }))].filter((s) => s.id !== self);
    return {
        reach: all.flatMap((s) => [
            { address: s.host, port: e.ports.client, listening: s.listening },
            { address: s.host, port: e.ports.election, listening: s.listening },
        ]),
        requireCommands: ["timeout"],
    };
}
