// A hosts-to-Kubernetes migration of one ensemble (seed 000): per-server Services with manual
// Endpoints, then the peers on the Service names, then one pod per update with the same myid.
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesConfig } from "../src/config";
import {
    makeConfigMap,
    makeEndpointSlice,
    makeEndpoints,
    makeHeadlessService,
    makePodDisruptionBudget,
    makeService,
    makeStatefulSet,
} from "../src/kubernetes";
import type { EnsemblePlan } from "../src/model";
import { asRemoteCommand, renderStop } from "../src/scripts";
import type { ServerId } from "../src/types";
import { connectionOf, declareHostServers, type HostServers, type SshArgs } from "./host-servers";
import { MigrationEnsemble } from "./migration-ensemble";

export const KUBERNETES_ENSEMBLE_TYPE = "zkmigrate:kubernetes:Ensemble";

export interface KubernetesEnsembleArgs {
    /** The validated ensemble config (src/config.ts). */
    ensemble: KubernetesConfig;
    /** The checked plan from the applied phase to `ensemble.phase` (src/model.ts `planFleet`). */
    plan: EnsemblePlan;
    /** SSH to the hosts; the key stays secret. */
    ssh: SshArgs;
    /** The Kubernetes provider; default: the ambient kubeconfig. */
    provider?: k8s.Provider;
}

export class KubernetesEnsemble extends MigrationEnsemble {
    readonly hosts: HostServers;
    readonly services = new Map<ServerId, k8s.core.v1.Service>();
    /** The manual endpoints of servers on hosts: v1 Endpoints or EndpointSlices (`endpointsKind`). */
    readonly endpoints = new Map<ServerId, k8s.core.v1.Endpoints | k8s.discovery.v1.EndpointSlice>();
    readonly decommissions = new Map<ServerId, command.remote.Command>();
    readonly statefulSet?: k8s.apps.v1.StatefulSet;

    constructor(name: string, args: KubernetesEnsembleArgs, opts?: pulumi.ComponentResourceOptions) {
        super(KUBERNETES_ENSEMBLE_TYPE, name, args.plan, opts);
        const { plan, ensemble: e, ssh } = args;
        const k = plan.desired.kubernetes!;
        const kopts = (dependsOn: pulumi.Resource[] = [], extra: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions => ({
            parent: this,
            provider: args.provider,
            dependsOn,
            ...extra,
        });

        // A host whose server moves into a pod is stopped and disabled first: two servers with
        // one myid must never run at once. Deleting this record does not start the host again.
        for (const s of plan.desired.servers.filter((x) => x.decommissioned)) {
            this.decommissions.set(
                s.id,
                new command.remote.Command(
                    `${name}-decommission-${s.id}`,
                    { connection: connectionOf(s, ssh), create: asRemoteCommand(renderStop({ host: e.host, disable: true })) },
                    { parent: this },
                ),
            );
        }

        if (k.services) {
            for (const s of k.servers) {
                const decommission = this.decommissions.get(s.id);
                // The Service switches to the pod selector only after its host stopped.
                this.services.set(s.id, new k8s.core.v1.Service(`${name}-service-${s.id}`, makeService(k, s) as any, kopts(decommission ? [decommission] : [])));
                if (s.backend === "host" && k.endpointsKind === "EndpointSlice") {
                    // Deleted once the server is cut over (at the end of that update): the cluster's
                    // endpointslice controller writes the pod's slice beside it, never over it.
                    this.endpoints.set(s.id, new k8s.discovery.v1.EndpointSlice(`${name}-endpointslice-${s.id}`, makeEndpointSlice(k, s) as any, kopts([])));
                } else if (s.backend === "host") {
                    // retainOnDelete: at cutover the Service gains a selector and Kubernetes' endpoints
                    // controller takes this object over; deleting it then would cut the server off.
                    this.endpoints.set(s.id, new k8s.core.v1.Endpoints(`${name}-endpoints-${s.id}`, makeEndpoints(k, s) as any, kopts([], { retainOnDelete: true })));
                }
            }
        }

        if (k.statefulSet) {
            const configMap = new k8s.core.v1.ConfigMap(`${name}-configmap`, makeConfigMap(k) as any, kopts());
            const headless = new k8s.core.v1.Service(`${name}-headless`, makeHeadlessService(k) as any, kopts());
            new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, makePodDisruptionBudget(k) as any, kopts());
            // Pulumi waits until the StatefulSet's pods are ready: ready means `srvr` answers with
            // a Mode, which ZooKeeper does only once the new server has synced with the leader.
            this.statefulSet = new k8s.apps.v1.StatefulSet(
                `${name}-statefulset`,
                makeStatefulSet(k) as any,
                kopts([configMap, headless, ...this.decommissions.values(), ...this.services.values()]),
            );
        }

        this.hosts = declareHostServers(this, {
            name,
            ensemble: e,
            plan,
            ssh,
            // Peers restart onto the Service names only once the Services exist.
            restartAfter: [...this.services.values(), ...this.endpoints.values()],
            preflight: (s) => ({
                // `hosts`: the hosts reach each other. `services`: they also resolve the Service
                // names and reach the servers through them (the seed's network prerequisites).
                reach: [
                    ...e.servers.filter((o) => o.id !== s.id).map((o) => ({ address: o.host, port: e.ports.client })),
                    ...(k.services ? k.servers.map((o) => ({ address: o.serviceFqdn, port: e.ports.client })) : []),
                ],
                resolveNames: k.services ? k.servers.map((o) => o.serviceFqdn) : [],
                requireCommands: ["timeout", "getent"],
            }),
        });

        const all: pulumi.CustomResource[] = [...this.hosts.all, ...this.decommissions.values(), ...this.services.values(), ...this.endpoints.values()];
        if (this.statefulSet) all.push(this.statefulSet);
        this.publish(all);
    }
}
