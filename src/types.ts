// Shared types of the migration model (the leaf: nothing here imports the model or Pulumi).
import type { ConnectString } from "./format/connect-string";

export type { ConnectString } from "./format/connect-string";

/** A ZooKeeper server id (the content of its `myid` file), 1..255. */
export type ServerId = number;

/** One `server.N=address:peerPort:electionPort[;clientPort]` line of zoo.cfg. */
export interface MemberLine {
    id: ServerId;
    /** Host name or IP address the other servers use to reach this one. */
    address: string;
    peerPort: number;
    electionPort: number;
    /**
     * `server.N=...:observer`: the server follows the leader but never votes, never counts in a
     * quorum and never leads (issue 13's observer join). Absent: a participant (voter).
     */
    observer?: true;
}

/** The service-manager commands run on a host (systemd by default). */
export interface ServiceCommands {
    start: string;
    stop: string;
    restart: string;
    /** Exit 0 when the service runs. Printed on a failed health gate. */
    status: string;
    /** Keeps the service from starting at boot (decommissioned hosts). */
    disable: string;
}

/** Where ZooKeeper keeps its files on a host. */
export interface ZkPaths {
    /** zoo.cfg. */
    configFile: string;
    /** The myid file (in dataDir). */
    myidFile: string;
    /** dataDir (snapshots, currentEpoch, acceptedEpoch). */
    dataDir: string;
    /** dataLogDir when transaction logs live elsewhere; defaults to dataDir. */
    dataLogDir?: string;
    /**
     * The dynamic config file that holds the membership when ZooKeeper 3.5+ runs with
     * `dynamicConfigFile`; when unset the membership lines live in zoo.cfg.
     */
    dynamicConfigFile?: string;
}

/** Everything a host script needs to know about the ZooKeeper install of one host. */
export interface HostSettings {
    paths: ZkPaths;
    service: ServiceCommands;
    /** Client port on the host (the health gate asks `srvr` on 127.0.0.1 here). */
    clientPort: number;
    /** How long the health gate waits for `srvr` to answer with a Mode. */
    healthTimeoutSeconds: number;
    /** zkCli of the host's release (the reconfig steps); unset: /opt/zookeeper/bin/zkCli.sh. */
    cli?: string;
}

/** The membership a server runs with (or will run with after its next restart). */
export interface Membership {
    members: MemberLine[];
    /** `quorumListenOnAllIPs=true`: needed when members are addressed by virtual IPs. */
    quorumListenOnAllIPs: boolean;
}

export type ServerRole = "source" | "target" | "server";
export type Location = "host" | "pod";

/** Desired state of one server in one phase. */
export interface ServerState {
    id: ServerId;
    role: ServerRole;
    /** Host address (SSH and the host's own `server.N` address). */
    host: string;
    /** Address pulumi uses to SSH to the host, when it differs from `host`. */
    sshHost?: string;
    /** The host's pinned SSH host key (`<type> <base64>`), from the config. */
    hostKey?: string;
    /** Where the server runs in this phase. */
    location: Location;
    /** Whether ZooKeeper runs (on the host, or in the pod when location is pod). */
    running: boolean;
    /** The membership written to the server's config in this phase. */
    written: Membership;
    /**
     * The membership the server runs with at the end of this phase. Differs from `written`
     * in mitosis `prepared` (final configs written, nothing restarted) and, for sources, `split`.
     */
    runningWith: Membership;
    /** A mitosis target kept stopped so that the source stays a majority of the joint ensemble. */
    dormant: boolean;
    /** Data of a mitosis target is wiped before it first joins (it must be empty). */
    wipeDataOnStart: boolean;
    /** Host decommissioned: ZooKeeper stopped and disabled on the host (after cutover). */
    decommissioned: boolean;
}

/** A firewall split on one host: REJECT (tcp-reset) all TCP to and from `peers`. */
export interface FirewallSplit {
    /** The server whose host carries the rules. */
    id: ServerId;
    host: string;
    /** The addresses that are cut off (the source hosts). */
    peers: string[];
}

/** One group of servers restarted together; groups run one after the other. */
export interface RestartGroup {
    ids: ServerId[];
    /** Why this group is where it is, for the preview and the docs ("source leader last"). */
    reason: string;
}

/** What the desired state says about a migrating set of clients. */
export interface ClientState {
    /** The connect string clients should use in this phase. */
    current: ConnectString;
    /** The connect string before the migration (old). */
    old: ConnectString;
    /** The connect string after the migration (new). */
    next: ConnectString;
    /** The Kafka brokers among the clients, when zkmigrate moves them (mitosis `clients`). */
    kafka?: KafkaClients;
}

/** A Kafka broker (ZooKeeper mode) that zkmigrate moves to the new connect string. */
export interface KafkaBroker {
    /** broker.id. */
    id: number;
    /** Its listener host: the gate reaches the broker at host:port. */
    host: string;
    /** Where pulumi reaches the host over SSH, when that differs from `host`. */
    sshHost?: string;
    /** The host's pinned SSH host key, from the config. */
    hostKey?: string;
}

/** How zkmigrate handles the brokers' install (the same on every broker host). */
export interface KafkaSettings {
    /** server.properties, where `zookeeper.connect` is rewritten. */
    serverProperties: string;
    /** Kafka's bin directory (kafka-topics.sh, kafka-broker-api-versions.sh for the gate). */
    binDir: string;
    /** The listener port the gate bootstraps from. */
    port: number;
    service: { restart: string; status: string };
    /** How long a broker gate waits (broker back in the cluster, no under-replicated partitions). */
    healthTimeoutSeconds: number;
    /** Pause after each broker restart before the next one. */
    spacingSeconds: number;
    /** The chroot may differ between the old and the new connect string. */
    allowChrootChange: boolean;
    /**
     * A Kafka client properties file on the broker host (SASL/SSL settings), passed to the gate's
     * tools as `--command-config`; unset: the tools connect without one (PLAINTEXT).
     */
    commandConfig?: string;
}

/** The brokers in one phase: which connect string they run with. */
export interface KafkaClients {
    brokers: KafkaBroker[];
    settings: KafkaSettings;
    /** The zookeeper.connect the brokers run with at the end of this phase. */
    connect: ConnectString;
}

export interface KubernetesServer {
    id: ServerId;
    host: string;
    /** Name of the per-server ClusterIP Service (also the DNS label). */
    serviceName: string;
    /** Fully qualified DNS name of the Service, used in zoo.cfg from the `peers` phase on. */
    serviceFqdn: string;
    /** host: Service without selector + manual Endpoints to the host; pod: Service selects the pod. */
    backend: Location;
    /** StatefulSet ordinal of the pod that carries this server, once cut over. */
    ordinal?: number;
}

export interface KubernetesState {
    namespace: string;
    /** Base name of the StatefulSet, ConfigMap and PDB. */
    name: string;
    labels: Record<string, string>;
    ports: { client: number; peer: number; election: number };
    servers: KubernetesServer[];
    /** Whether the per-server Services exist in this phase. */
    services: boolean;
    /** The StatefulSet, or undefined while no server is cut over. */
    statefulSet?: {
        replicas: number;
        /** StatefulSet ordinal -> myid, in cutover order (myids need not be contiguous). */
        ordinalToMyid: Record<number, ServerId>;
        image: string;
        storageSize: string;
        storageClassName?: string;
        /** zoo.cfg of the pods (settings and the membership by Service names). */
        zooCfg: string;
        /** Extra container resources (requests/limits) as Kubernetes takes them. */
        resources?: Record<string, unknown>;
        /** sha256:<hex> of the image's manifest: the pods run `<image repository>@<digest>`. */
        imageDigest?: string;
        /** A volume claim of its own for zoo.cfg's dataLogDir (the transaction log), of this size. */
        dataLogStorageSize?: string;
        /** Pod scheduling, passed through: nodeSelector, tolerations, topologySpreadConstraints, priorityClassName. */
        scheduling?: KubernetesScheduling;
        /** Seconds a pod has to stop (default 60). */
        terminationGracePeriodSeconds?: number;
        /** How long `pulumi up` waits for the pods to be Ready (default: the provider's 10 minutes). */
        readyTimeoutSeconds?: number;
    };
    /**
     * Which object carries the manual endpoints of a server on a host: `Endpoints` (v1, mirrored
     * to EndpointSlices by the cluster; deprecated from Kubernetes 1.33) or `EndpointSlice`
     * (discovery.k8s.io/v1). Default `Endpoints`; see `endpointsKindFor` in src/kubernetes.
     */
    endpointsKind?: "Endpoints" | "EndpointSlice";
}

export interface KubernetesScheduling {
    nodeSelector?: Record<string, string>;
    tolerations?: Record<string, unknown>[];
    topologySpreadConstraints?: Record<string, unknown>[];
    priorityClassName?: string;
    /** `hard` (default): required anti-affinity by node, a pod stays Pending rather than share a node; `soft`: preferred (Bitnami's default preset). */
    podAntiAffinity?: "hard" | "soft";
}

/** The complete desired state of one ensemble in one phase. */
export interface DesiredState {
    ensemble: string;
    procedure: ProcedureName;
    phase: string;
    servers: ServerState[];
    /** Host firewall splits that exist in this phase (mitosis `split`, `source-restarted`). */
    firewall: FirewallSplit[];
    clients: ClientState;
    /** Present for the kubernetes procedure. */
    kubernetes?: KubernetesState;
    /** Preflight checks that run in this phase. */
    preflight: boolean;
    /** Present for the block-copy procedure (which changes no ZooKeeper server: `servers` is empty). */
    blockCopy?: BlockCopyState;
}

/** Block & copy in one phase: what has been copied, and where the clients are. */
export interface BlockCopyState {
    /** The last copy taken by this phase: none yet, the full copy while live, the incremental one while blocked. */
    copy: "none" | "full" | "incremental";
    /** The clients are stopped (between `blocked` and `switched`). */
    clientsBlocked: boolean;
    /** The ensemble the clients are configured for. */
    clientsOn: "source" | "target";
}

export type ProcedureName = "mitosis" | "kubernetes" | "block-copy";

/** What the block & copy commands need (rendered by src/scripts/block-copy.ts). */
export interface BlockCopySpec {
    /** The ensemble's name (state file and messages). */
    name: string;
    /** `host:port,.../path` of the source subtree and of where it lands. */
    source: string;
    target: string;
    copy: {
        /** Where the copy runs: undefined = locally, where `pulumi up` runs. */
        host?: { host: string; sshHost?: string; hostKey?: string };
        command: string;
        stateFile: string;
        sourceAuthEnv?: string;
        targetAuthEnv?: string;
        delete: boolean;
        /** A change journal (`zkmigrate journal`) from the precopy to the final copy, which then visits only the changed paths. */
        journal: boolean;
        extraArgs: string[];
    };
    clients: { hosts: { host: string; sshHost?: string; hostKey?: string }[]; block: string; switch: string; unblock?: string };
}

/** What the last successful update applied to one ensemble (the stack output `applied`). */
export interface AppliedEnsemble {
    procedure: ProcedureName;
    phase: string;
    cutover: ServerId[];
    /** Every server id of the ensemble when it was applied (source and target for mitosis). */
    servers: ServerId[];
    /**
     * StatefulSet fields Kubernetes cannot change in place (namespace/name/storage size/class):
     * a change would replace the StatefulSet, every pod at once.
     */
    statefulSet?: string;
    /**
     * What each server runs after the update, by myid: the planner diffs the desired state against
     * this, so that any change of what a server runs (whatever caused it: a phase, a port, a host's
     * spelling) is a planned restart, and nothing else is. Absent in records of older versions
     * (then the applied phase's desired state stands in).
     */
    running?: Record<string, ServerFingerprint>;
    /**
     * How a mitosis' targets joined (`joinAs`), so that an update never switches the join of an
     * ensemble mid-migration. Absent in older records (then inferred from `running`; before that,
     * every join was a voter join).
     */
    joinAs?: "voter" | "observer";
    /**
     * How a mitosis' memberships change (`membershipChange`), recorded for the same reason: the
     * restart and reconfig rooms leave the servers in different states between the join and the
     * end (the sources on S+T' until source-restarted, or on S from the split). Absent in older
     * records (then `restart`, the only one there was).
     */
    membershipChange?: "restart" | "reconfig";
}

/** What one server runs: whether, where, and with which membership (its zoo.cfg's server lines). */
export interface ServerFingerprint {
    running: boolean;
    location: Location;
    membership: Membership;
}

export type AppliedState = Record<string, AppliedEnsemble>;
