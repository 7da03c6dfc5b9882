// One ensemble's update: every step of its plan (src/plan.ts) becomes one resource, in the plan's
// order, each waiting for the resources of the steps it names in `after`. The component decides
// nothing: what runs, where, in which order and with which text all come from the plan.
//
// Commands run when they are created, and their `update` when its text changes (a restart step's
// update text carries the membership its server must run with, so it changes exactly when that
// does); deleting a command runs its `delete` (the firewall's lifts the split, a block's starts
// the clients), nothing else. Steps the engine takes itself (`declare: false`) declare nothing.
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { formatConnectString } from "../src/format/connect-string";
import { membershipLines } from "../src/format/zoo-cfg";
import { makeConfigMap, makeEndpointSlice, makeEndpoints, makeHeadlessService, makePodDisruptionBudget, makeService, makeStatefulSet } from "../src/kubernetes";
import type { EnsemblePlan } from "../src/model";
import { asRemoteCommand, commandsOf, isCommandStep, runsEveryAttempt } from "../src/scripts";
import { withAuth } from "../src/scripts/reconfig";
import type { Attempt, Step } from "../src/steps";
import type { RestartGroup } from "../src/types";
import { connectionOf, type SshArgs } from "./ssh";

export const KAFKA_BROKERS_TYPE = "zkmigrate:kafka:Brokers";

/**
 * What a frozen step's command ignores (a step without an effect in this update, or of an earlier
 * phase): a change there would replace it or update it, and an update without an `update` script
 * runs `create` again (so `delete` too: a precopy that gained its journal-stopping delete must not
 * copy again after the switch). An edited setting (spacing, timeouts, service commands) changes the
 * text of every host's commands: frozen, they keep their state and nothing runs.
 */
export const FROZEN = ["create", "update", "delete", "interpreter", "connection", "triggers"] as const;

/** This program run: one `pulumi up` (or preview). Steps that run on every attempt carry it. */
const THIS_RUN: Attempt = { startedAt: Math.floor(Date.now() / 1000) };

export interface MigrationEnsembleArgs {
    /** The checked plan of this update (src/model.ts `planFleet`). */
    plan: EnsemblePlan;
    /** SSH to the hosts; the key stays secret. */
    ssh: SshArgs;
    /** The Kubernetes provider for Kubernetes steps; default: the ambient kubeconfig. */
    provider?: k8s.Provider;
    /** The reconfig credentials (a secret): a reconfig step's script gets them in place of its placeholder. */
    reconfigAuth?: pulumi.Input<string>;
    /** This update's attempt (its start); default: when this program started. */
    attempt?: Attempt;
}

/** The Kafka brokers' commands, grouped under a component of their own. */
export class KafkaBrokers extends pulumi.ComponentResource {
    /** One command per broker, by broker.id. */
    readonly brokers = new Map<number, command.remote.Command>();
    constructor(name: string, readonly order: NonNullable<EnsemblePlan["plan"]["brokerOrder"]>, opts?: pulumi.ComponentResourceOptions) {
        super(KAFKA_BROKERS_TYPE, name, {}, opts);
        this.registerOutputs({ restartOrder: order.ids });
    }
}

export class MigrationEnsemble extends pulumi.ComponentResource {
    /** The connect string clients should use now (with chroot). */
    readonly connect: string;
    /** The connect string before the migration (old) and after it (new). */
    readonly oldConnect: string;
    readonly newConnect: string;
    /** The restart groups of this update, in the order their dependsOn chain runs them. */
    readonly restartOrder: RestartGroup[];
    /** The plan's warnings (unknown leader, declared availability windows). */
    readonly warnings: string[];
    /** The resource of each declared step, by step id. */
    readonly resources = new Map<string, pulumi.CustomResource>();
    /** The step ids whose resources ignore changes in this update (nothing of theirs runs). */
    readonly frozen = new Set<string>();
    /** Every command on a host (or run locally), in plan order. */
    readonly commands: (command.remote.Command | command.local.Command)[] = [];
    /** The Kafka brokers, when the ensemble has brokers among its clients. */
    readonly kafka?: KafkaBrokers;
    /** The phase this update applies; unknown until every resource of the ensemble succeeded. */
    readonly appliedPhase: pulumi.Output<string>;

    constructor(name: string, args: MigrationEnsembleArgs, opts?: pulumi.ComponentResourceOptions) {
        const { plan, ssh } = args;
        super(plan.componentType, name, {}, opts);
        this.connect = formatConnectString(plan.desired.clients.current);
        this.oldConnect = formatConnectString(plan.desired.clients.old);
        this.newConnect = formatConnectString(plan.desired.clients.next);
        this.restartOrder = plan.plan.restartOrder;
        this.warnings = plan.plan.warnings;
        if (plan.plan.brokerOrder) {
            this.kafka = new KafkaBrokers(`${name}-kafka`, plan.plan.brokerOrder, { parent: this });
        }

        for (const step of plan.plan.steps) {
            if ("declare" in step) continue;
            const dependsOn = step.after.map((id) => {
                const r = this.resources.get(id);
                if (!r) throw new Error(`${name}: step ${step.id} waits for ${id}, which the plan declares later or not at all`);
                return r;
            });
            const parent = step.kind === "broker" ? this.kafka! : this;
            const o: pulumi.CustomResourceOptions = { parent, dependsOn, ...(step.frozen ? { ignoreChanges: [...FROZEN] } : {}) };
            if (step.frozen) this.frozen.add(step.id);
            const resource = this.declare(name, step, o, args);
            this.resources.set(step.id, resource);
            if (step.kind === "broker") this.kafka!.brokers.set(step.broker.id, resource as command.remote.Command);
        }

        const all = [...this.resources.values()];
        this.appliedPhase = pulumi.all(all.map((r) => r.id)).apply(() => plan.desired.phase);
        this.registerOutputs({
            appliedPhase: this.appliedPhase,
            connect: this.connect,
            oldConnect: this.oldConnect,
            newConnect: this.newConnect,
            servers: serverSummary(plan),
        });
    }

    private declare(name: string, step: Step, opts: pulumi.CustomResourceOptions, args: MigrationEnsembleArgs): pulumi.CustomResource {
        let o = opts;
        const rname = `${name}-${step.id}`;
        if (isCommandStep(step)) {
            const attempt = args.attempt ?? THIS_RUN;
            const c = commandsOf(step, attempt);
            // Gates and the split's arms run on every attempt: a new attempt replaces them (their
            // delete runs nothing), so a second `pulumi up` checks every host again before it changes any.
            if (runsEveryAttempt(step)) o = { ...o, replaceOnChanges: ["triggers"] };
            let cmd: command.remote.Command | command.local.Command;
            if (step.target) {
                // A reconfig step's credentials: the whole script becomes a secret (the plan table describes it).
                const create: pulumi.Input<string> =
                    step.kind === "reconfig" && step.auth
                        ? pulumi.secret(pulumi.output(args.reconfigAuth ?? "").apply((a) => asRemoteCommand(withAuth(c.create, a))))
                        : asRemoteCommand(c.create);
                cmd = new command.remote.Command(
                    rname,
                    {
                        connection: connectionOf(step.target, args.ssh),
                        create,
                        ...(c.update !== undefined ? { update: asRemoteCommand(c.update) } : {}),
                        ...(c.delete !== undefined ? { delete: asRemoteCommand(c.delete) } : {}),
                        ...(runsEveryAttempt(step) ? { triggers: [attempt.startedAt] } : {}),
                    },
                    o,
                );
            } else {
                // A step without a host runs where `pulumi up` runs (the project directory).
                cmd = new command.local.Command(rname, { create: c.create, ...(c.delete !== undefined ? { delete: c.delete } : {}), interpreter: ["/bin/bash", "-c"] }, o);
            }
            this.commands.push(cmd);
            return cmd;
        }
        const ko = { ...o, provider: args.provider };
        switch (step.kind) {
            case "k8s-service":
                return new k8s.core.v1.Service(rname, makeService(step.k8s, step.server) as any, ko);
            case "k8s-endpoints":
                if (step.k8s.endpointsKind === "EndpointSlice") {
                    // Deleted once the server is cut over (at the end of that update): the cluster's
                    // endpointslice controller writes the pod's slice beside it, never over it.
                    return new k8s.discovery.v1.EndpointSlice(rname, makeEndpointSlice(step.k8s, step.server) as any, ko);
                }
                // retainOnDelete: at cutover the Service gains a selector and Kubernetes' endpoints
                // controller takes this object over; deleting it then would cut the server off.
                return new k8s.core.v1.Endpoints(rname, makeEndpoints(step.k8s, step.server) as any, { ...ko, retainOnDelete: true });
            case "k8s-configmap":
                return new k8s.core.v1.ConfigMap(rname, makeConfigMap(step.k8s) as any, ko);
            case "k8s-headless":
                return new k8s.core.v1.Service(rname, makeHeadlessService(step.k8s) as any, ko);
            case "k8s-pdb":
                return new k8s.policy.v1.PodDisruptionBudget(rname, makePodDisruptionBudget(step.k8s) as any, ko);
            case "k8s-statefulset":
                // Pulumi waits until the StatefulSet's pods are ready: ready means `srvr` answers with
                // a Mode, which ZooKeeper does only once the new server has synced with the leader.
                // readyTimeoutSeconds bounds that wait: a pod that cannot become ready stops the update there.
                return new k8s.apps.v1.StatefulSet(rname, makeStatefulSet(step.k8s) as any, readyTimeout(ko, step.k8s.statefulSet?.readyTimeoutSeconds));
        }
        throw new Error(`${name}: no resource for step ${step.id} (${step.kind})`);
    }
}

/** Resource options with create/update timeouts of `seconds` (the provider's await of readiness), when given. */
function readyTimeout(o: pulumi.CustomResourceOptions, seconds: number | undefined): pulumi.CustomResourceOptions {
    return seconds === undefined ? o : { ...o, customTimeouts: { create: `${seconds}s`, update: `${seconds}s` } };
}

/** The per-server summary published as a stack output. */
export function serverSummary(plan: EnsemblePlan) {
    return plan.desired.servers.map((s) => ({
        myid: s.id,
        role: s.role,
        address: s.host,
        location: s.location,
        running: s.running,
        dormant: s.dormant,
        membership: membershipLines(s.runningWith),
        written: membershipLines(s.written),
    }));
}
