// The fleet: one child component per ensemble, each taking one checked step per update.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appliedOf, type AppliedEnsemble, type FleetConfig } from "../src/config";
import type { EnsemblePlan } from "../src/model";
import { declaredBefore, planTable, renderText, type PlanTable } from "../src/plan-table";
import { MigrationEnsemble, serverSummary } from "./ensemble";
import { sendNoPreviousOutput } from "./remote-command";

export const FLEET_TYPE = "zkmigrate:index:Fleet";

export interface FleetArgs {
    /** The validated stack config (src/config `loadConfig`). */
    config: FleetConfig;
    /** One checked plan per ensemble (src/model.ts `planFleet`): nothing is declared for a fleet that fails its checks. */
    plans: Map<string, EnsemblePlan>;
    /** The SSH private key, as a secret. */
    privateKey: pulumi.Input<string>;
    /** zkmigrate:reconfigAuth, as a secret: put into the reconfig steps' scripts (never in plain text). */
    reconfigAuth?: pulumi.Input<string>;
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
    /** The plan table of this update (src/plan-table.ts; `zkmigrate plan --format json` prints the same). */
    plan: PlanTable;
}

export class Fleet extends pulumi.ComponentResource {
    readonly ensembles = new Map<string, MigrationEnsemble>();
    /** What this update applied, per ensemble; read back by the next update (one step at a time). */
    readonly applied: pulumi.Output<Record<string, AppliedEnsemble>>;
    /** The per-ensemble stack outputs. */
    readonly summary: Record<string, EnsembleOutput>;

    constructor(name: string, args: FleetArgs, opts?: pulumi.ComponentResourceOptions) {
        // Every remote command below sends its script and no environment (remote-command.ts).
        super(FLEET_TYPE, name, {}, pulumi.mergeOptions(opts, { transforms: [sendNoPreviousOutput] }));
        const { config, plans } = args;
        const ssh = { user: config.settings.sshUser, port: config.settings.sshPort, privateKey: pulumi.secret(args.privateKey) };

        // The Kubernetes provider is declared only when a plan has Kubernetes objects.
        const needsK8s = [...plans.values()].some((p) => p.plan.steps.some((s) => s.kind.startsWith("k8s-")));
        const provider =
            needsK8s && (config.settings.kubeContext || config.settings.kubeconfig)
                ? new k8s.Provider(`${name}-kubernetes`, { context: config.settings.kubeContext || undefined, kubeconfig: config.settings.kubeconfig || undefined }, { parent: this })
                : undefined;

        const applied: Record<string, pulumi.Output<AppliedEnsemble>> = {};
        this.summary = {};
        for (const e of config.ensembles) {
            const plan = plans.get(e.name);
            if (!plan) throw new Error(`no plan for ensemble "${e.name}"`);
            const child = new MigrationEnsemble(e.name, { plan, ssh, provider, ...(args.reconfigAuth !== undefined ? { reconfigAuth: pulumi.secret(args.reconfigAuth) } : {}) }, { parent: this });
            this.ensembles.set(e.name, child);
            applied[e.name] = child.appliedPhase.apply(() => appliedOf(e));
            // The preview shows the plan table once per ensemble (what runs, where, in which order
            // and why, the windows, the deletes); its warnings as warnings.
            const table = planTable(plan, declaredBefore(e, plan));
            pulumi.log.info(renderText([{ ...table, warnings: [] }]).trimEnd(), this);
            for (const w of plan.plan.warnings) pulumi.log.warn(w, this);
            const brokers = plan.plan.brokerOrder;
            this.summary[e.name] = {
                procedure: e.procedure,
                appliedPhase: child.appliedPhase,
                connect: child.connect,
                oldConnect: child.oldConnect,
                newConnect: child.newConnect,
                restartOrder: child.restartOrder.map((g) => `${g.ids.join("+")}: ${g.reason}`),
                ...(brokers ? { kafkaRestartOrder: brokers.ids.map((id) => `broker ${id}`).concat(`(${brokers.reason})`) } : {}),
                warnings: plan.plan.warnings,
                servers: serverSummary(plan),
                plan: table,
            };
        }
        this.applied = pulumi.output(applied) as pulumi.Output<Record<string, AppliedEnsemble>>;
        this.registerOutputs({ applied: this.applied, ensembles: this.summary });
    }
}
