// The fleet: one child component per ensemble, each taking one checked step per update.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appliedOf, type AppliedEnsemble, type FleetConfig } from "../src/config";
import type { EnsemblePlan } from "../src/model";
import { describePlan } from "../src/plan";
import type { KafkaControllerInfo } from "../src/procedures/kafka";
import { BlockCopyEnsemble } from "./block-copy-ensemble";
import { KubernetesEnsemble } from "./kubernetes-ensemble";
import { MitosisEnsemble } from "./mitosis-ensemble";
import { serverSummary } from "./host-servers";
import { sendNoPreviousOutput } from "./remote-command";

export const FLEET_TYPE = "zkmigrate:index:Fleet";

export interface FleetArgs {
    /** The validated stack config (src/config.ts `loadConfig`). */
    config: FleetConfig;
    /** One checked plan per ensemble (src/model.ts `planFleet`): nothing is declared for a fleet that fails its checks. */
    plans: Map<string, EnsemblePlan>;
    /** The SSH private key, as a secret. */
    privateKey: pulumi.Input<string>;
    /** Per ensemble, the Kafka controller (index.ts reads /controller at preview). */
    kafkaControllers?: Record<string, KafkaControllerInfo>;
}

export interface EnsembleOutput {
    procedure: string;
    /** The phase applied by this update (unknown until every step succeeded). */
    appliedPhase: pulumi.Output<string>;
    connect: string;
    oldConnect: string;
    newConnect: string;
    restartOrder: string[];
    /** Kafka brokers (broker.id) in the order this update restarts or adopts them. */
    kafkaRestartOrder?: string[];
    warnings: string[];
    servers: ReturnType<typeof serverSummary>;
}

export class Fleet extends pulumi.ComponentResource {
    readonly ensembles = new Map<string, MitosisEnsemble | KubernetesEnsemble | BlockCopyEnsemble>();
    /** What this update applied, per ensemble; read back by the next update (one step at a time). */
    readonly applied: pulumi.Output<Record<string, AppliedEnsemble>>;
    /** The per-ensemble stack outputs. */
    readonly summary: Record<string, EnsembleOutput>;

    constructor(name: string, args: FleetArgs, opts?: pulumi.ComponentResourceOptions) {
        // Every remote command below sends its script and no environment (remote-command.ts).
        super(FLEET_TYPE, name, {}, pulumi.mergeOptions(opts, { transforms: [sendNoPreviousOutput] }));
        const { config, plans } = args;
        const ssh = { user: config.settings.sshUser, port: config.settings.sshPort, privateKey: pulumi.secret(args.privateKey) };

        // The Kubernetes provider is declared only when an ensemble needs Kubernetes objects.
        const needsK8s = config.ensembles.some((e) => plans.get(e.name)?.desired.kubernetes?.services);
        const provider =
            needsK8s && (config.settings.kubeContext || config.settings.kubeconfig)
                ? new k8s.Provider(
                      `${name}-kubernetes`,
                      { context: config.settings.kubeContext || undefined, kubeconfig: config.settings.kubeconfig || undefined },
                      { parent: this },
                  )
                : undefined;

        const applied: Record<string, pulumi.Output<AppliedEnsemble>> = {};
        this.summary = {};
        for (const e of config.ensembles) {
            const plan = plans.get(e.name);
            if (!plan) throw new Error(`no plan for ensemble "${e.name}"`);
            const child =
                e.procedure === "mitosis"
                    ? new MitosisEnsemble(e.name, { ensemble: e, plan, ssh, kafkaController: args.kafkaControllers?.[e.name] }, { parent: this })
                    : e.procedure === "kubernetes"
                      ? new KubernetesEnsemble(e.name, { ensemble: e, plan, ssh, provider }, { parent: this })
                      : new BlockCopyEnsemble(e.name, { ensemble: e, plan, ssh }, { parent: this });
            this.ensembles.set(e.name, child);
            applied[e.name] = child.appliedPhase.apply(() => appliedOf(e));
            // The preview shows the plan in words: what runs, in which order.
            const steps = describePlan(plan.plan);
            pulumi.log.info(`${e.name}: ${plan.plan.from} -> ${plan.plan.to}: ${steps.length > 0 ? steps.join("; ") : "no host or Kubernetes change"}`, this);
            for (const w of plan.plan.warnings) pulumi.log.warn(w, this);
            this.summary[e.name] = {
                procedure: e.procedure,
                appliedPhase: child.appliedPhase,
                connect: child.connect,
                oldConnect: child.oldConnect,
                newConnect: child.newConnect,
                restartOrder: child.restartOrder.map((g) => `${g.ids.join("+")}: ${g.reason}`),
                ...(child instanceof MitosisEnsemble && child.kafka
                    ? { kafkaRestartOrder: child.kafka.order.brokers.map((b) => `broker ${b.id}`).concat(`(${child.kafka.order.reason})`) }
                    : {}),
                warnings: plan.plan.warnings,
                servers: serverSummary(plan),
            };
        }
        this.applied = pulumi.output(applied) as pulumi.Output<Record<string, AppliedEnsemble>>;
        this.registerOutputs({ applied: this.applied, ensembles: this.summary });
    }
}
