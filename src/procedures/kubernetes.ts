// Hosts to Kubernetes with no downtime (seed 000): wrap each server in a ClusterIP Service with
// manual Endpoints, move clients and then peers to the Service addresses, then replace each host
// by a pod with the same myid, one server per update.
import type { KubernetesConfig } from "../config";
import { endpointsKindFor, makeZooCfg } from "../kubernetes";
import { phaseIndex, type KubernetesPhase } from "../phases";
import type { DesiredState, KubernetesServer, KubernetesState, Membership, ServerState } from "../types";
import { connectString, hostMembership, memberLines } from "./common";

export function serviceNames(e: KubernetesConfig): Map<number, { name: string; fqdn: string }> {
    const k = e.kubernetes;
    return new Map(
        e.servers.map((s) => {
            const name = `${k.name}-${s.id}`;
            return [s.id, { name, fqdn: `${name}.${k.namespace}.svc.${k.clusterDomain}` }];
        }),
    );
}

export function kubernetesDesired(e: KubernetesConfig, phase: KubernetesPhase = e.phase as KubernetesPhase): DesiredState {
    const at = (p: KubernetesPhase) => phaseIndex("kubernetes", phase) >= phaseIndex("kubernetes", p);
    const names = serviceNames(e);
    const cutover = at("pods") ? e.cutover : [];
    const hosts = hostMembership(e.servers, e.ports, false);
    // Service addresses are virtual (not bound on any host or pod): without
    // quorumListenOnAllIPs the election port fails to bind (BindException, no ensemble).
    const services: Membership = {
        members: memberLines(e.servers.map((s) => ({ id: s.id, address: names.get(s.id)!.fqdn })), e.ports),
        quorumListenOnAllIPs: true,
    };
    const membership = at("peers") ? services : hosts;

    const servers: ServerState[] = e.servers.map((s) => {
        const inPod = cutover.includes(s.id);
        return {
            id: s.id,
            role: "server",
            host: s.host,
            sshHost: s.sshHost,
            location: inPod ? "pod" : "host",
            running: true,
            written: membership,
            runningWith: membership,
            dormant: false,
            wipeDataOnStart: false,
            decommissioned: inPod,
        };
    });

    const k = e.kubernetes;
    const kservers: KubernetesServer[] = e.servers.map((s) => {
        const ordinal = cutover.indexOf(s.id);
        return {
            id: s.id,
            host: s.host,
            serviceName: names.get(s.id)!.name,
            serviceFqdn: names.get(s.id)!.fqdn,
            backend: ordinal >= 0 ? "pod" : "host",
            ordinal: ordinal >= 0 ? ordinal : undefined,
        };
    });
    const kubernetes: KubernetesState = {
        namespace: k.namespace,
        name: k.name,
        labels: { "app.kubernetes.io/name": "zookeeper", "app.kubernetes.io/instance": k.name, "app.kubernetes.io/managed-by": "zkmigrate" },
        ports: e.ports,
        servers: kservers,
        services: at("services"),
        statefulSet:
            cutover.length > 0
                ? {
                      replicas: cutover.length,
                      ordinalToMyid: Object.fromEntries(cutover.map((id, i) => [i, id])),
                      image: k.image,
                      storageSize: k.storageSize,
                      storageClassName: k.storageClassName,
                      zooCfg: makeZooCfg({
                          dataDir: k.dataDir,
                          clientPort: e.ports.client,
                          members: services.members,
                          quorumListenOnAllIPs: true,
                          settings: k.settings,
                          separateDataLog: k.dataLogStorageSize !== undefined,
                          metricsPort: k.metricsPort,
                      }),
                      resources: k.resources,
                      imageDigest: k.imageDigest,
                      dataLogStorageSize: k.dataLogStorageSize,
                      scheduling: k.scheduling,
                      terminationGracePeriodSeconds: k.terminationGracePeriodSeconds,
                  }
                : undefined,
        endpointsKind: k.clusterVersion ? endpointsKindFor(k.clusterVersion) : "Endpoints",
    };

    const old = connectString(e.servers.map((s) => ({ id: s.id, address: s.host })), e.ports.client, e.chroot);
    const next = connectString(e.servers.map((s) => ({ id: s.id, address: names.get(s.id)!.fqdn })), e.ports.client, e.chroot);
    return {
        ensemble: e.name,
        procedure: "kubernetes",
        phase,
        servers,
        firewall: [],
        clients: { old, next, current: at("clients") ? next : old },
        kubernetes,
        // `hosts`: the hosts reach each other; `services`: the hosts resolve the Service names
        // and reach the ClusterIPs (network prerequisites of the seed).
        preflight: phase === "hosts" || phase === "services",
    };
}
