// Stack config: schema, defaults and validation. Every refusal names the config path and the
// reason, and all of them are reported at once, before any resource is declared.
import { isIP } from "node:net";
import { z } from "zod";
import { makeZooCfg } from "./kubernetes";
import { BLOCK_COPY_PHASES, KUBERNETES_PHASES, MITOSIS_PHASES, phaseIndex, phasesOf, firstPhase } from "./phases";
import type { HostSettings, KafkaBroker, KafkaSettings, ProcedureName, ServerId } from "./types";

/** The config namespace (the Pulumi project name). */
export const NAMESPACE = "zkmigrate";

export class ConfigError extends Error {
    constructor(readonly issues: ConfigIssue[]) {
        super(
            `invalid zkmigrate configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
                issues.map((i) => `  - ${i.path}: ${i.reason}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

export interface ConfigIssue {
    /** e.g. `zkmigrate:ensembles[0].target[1].id` */
    path: string;
    reason: string;
}

// ---------------------------------------------------------------------------------------------
// Schema

const port = z.int().min(1).max(65535);
const myid = z.int().min(1, "a myid is 1..255").max(255, "a myid is 1..255");
const hostName = z
    .string()
    .min(1)
    .refine((h) => isIP(h) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(h), {
        message: "not an IP address or host name",
    });
const absPath = z.string().regex(/^\/[^\0\n]*$/, "an absolute path");
const chroot = z
    .string()
    .regex(/^\/[^\0\n]*[^/]$/, 'a chroot is an absolute znode path without a trailing "/", e.g. /kafka');

const serverSchema = z.strictObject({
    /** The server's myid. */
    id: myid,
    /** The address the other servers and clients use for this server (its zoo.cfg address). */
    host: hostName,
    /** Where pulumi reaches the host over SSH, when that differs from `host`. */
    sshHost: hostName.optional(),
});

const zookeeperSchema = z.strictObject({
    clientPort: port.default(2181),
    peerPort: port.default(2888),
    electionPort: port.default(3888),
    configFile: absPath.default("/etc/zookeeper/conf/zoo.cfg"),
    dataDir: absPath.default("/var/lib/zookeeper"),
    myidFile: absPath.optional(),
    dataLogDir: absPath.optional(),
    dynamicConfigFile: absPath.optional(),
});

const serviceSchema = z.strictObject({
    start: z.string().min(1).default("systemctl start zookeeper"),
    stop: z.string().min(1).default("systemctl stop zookeeper"),
    restart: z.string().min(1).default("systemctl restart zookeeper"),
    status: z.string().min(1).default("systemctl status zookeeper --no-pager"),
    disable: z.string().min(1).default("systemctl disable zookeeper"),
});

/** Host settings shared by every ensemble unless an ensemble overrides them. */
const hostDefaultsSchema = z.strictObject({
    zookeeper: zookeeperSchema.prefault({}),
    service: serviceSchema.prefault({}),
    healthTimeoutSeconds: z.int().min(5).max(3600).default(120),
    spacingSeconds: z.int().min(0).max(600).default(10),
});

// Per-ensemble overrides: the same keys, all optional, merged over the defaults.
const hostOverrides = {
    zookeeper: zookeeperSchema.partial().optional(),
    service: serviceSchema.partial().optional(),
    healthTimeoutSeconds: z.int().min(5).max(3600).optional(),
    spacingSeconds: z.int().min(0).max(600).optional(),
};

const clientsSchema = z.strictObject({
    /** The chroot the clients use (Kafka's `zookeeper.connect` suffix), kept across the move. */
    chroot: chroot.optional(),
});

// Kafka brokers as clients of a mitosis: `clients.kafka` (kept in one schema object and one check).
const kafkaBrokerSchema = z.strictObject({
    /** broker.id. */
    id: z.int().min(0, "a broker.id is 0 or more"),
    /** The broker's listener host (the gate bootstraps from host:port); also the SSH host unless sshHost. */
    host: hostName,
    sshHost: hostName.optional(),
});

const kafkaSchema = z.strictObject({
    brokers: z.array(kafkaBrokerSchema).min(1, "at least one broker"),
    serverProperties: absPath.default("/etc/kafka/server.properties"),
    /** Kafka's bin directory: the gate runs kafka-topics.sh and kafka-broker-api-versions.sh from it. */
    binDir: absPath.default("/opt/kafka/bin"),
    port: port.default(9092),
    service: z
        .strictObject({
            restart: z.string().min(1).default("systemctl restart kafka"),
            status: z.string().min(1).default("systemctl status kafka --no-pager"),
        })
        .prefault({}),
    healthTimeoutSeconds: z.int().min(10).max(3600).default(300),
    spacingSeconds: z.int().min(0).max(600).default(10),
    /** The controller's broker.id, when ZooKeeper's /controller cannot be read from where pulumi runs. */
    controller: z.int().min(0).optional(),
});

const mitosisClientsSchema = z.strictObject({
    /** The chroot of the old connect string (Kafka's `zookeeper.connect` suffix). */
    chroot: chroot.optional(),
    /** The chroot of the new connect string; default: `chroot` (mitosis moves the tree as it is). */
    newChroot: chroot.optional(),
    /** Allow `newChroot` to differ from `chroot`. */
    allowChrootChange: z.boolean().default(false),
    /** Kafka brokers moved to the new connect string in the `clients` phase. */
    kafka: kafkaSchema.optional(),
});

const phaseOf = (phases: readonly string[], procedure: string) =>
    z.string().refine((p) => phases.includes(p), {
        error: (iss) => `unknown ${procedure} phase ${JSON.stringify(iss.input)} (one of: ${phases.join(", ")})`,
    });

const mitosisSchema = z.strictObject({
    name: z.string(),
    procedure: z.literal("mitosis"),
    phase: phaseOf(MITOSIS_PHASES, "mitosis"),
    source: z.array(serverSchema).min(1),
    target: z.array(serverSchema).min(1),
    /** The operator's statement that the target ensemble holds no data (mitosis needs an empty target). */
    targetEmpty: z.boolean().default(false),
    /** Targets that join the source; the rest stay dormant. Default: the first min(m, n-1) targets. */
    activeTargets: z.array(myid).optional(),
    /** A znode count at or below which a running target counts as empty (preflight). */
    emptyTargetMaxZnodes: z.int().min(0).default(5),
    /** The current leader, when it cannot be read with `srvr` from where pulumi runs. */
    leader: myid.optional(),
    quorumListenOnAllIPs: z.boolean().default(false),
    allowSingleServer: z.boolean().default(false),
    clients: mitosisClientsSchema.prefault({}),
    ...hostOverrides,
});

const kubernetesSettingsSchema = z.strictObject({
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "a Kubernetes namespace name").max(63).default("zookeeper"),
    /** Base name of the StatefulSet and of the per-server Services (`<name>-<myid>`); default: the ensemble name. */
    name: z.string().regex(/^[a-z]([-a-z0-9]*[a-z0-9])?$/, "a DNS label").max(40).optional(),
    image: z.string().min(1).default("zookeeper:3.9.3"),
    storageSize: z.string().regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/, "a Kubernetes quantity such as 10Gi").default("10Gi"),
    storageClassName: z.string().optional(),
    clusterDomain: z.string().default("cluster.local"),
    /** Container resources as Kubernetes takes them ({ requests, limits }). */
    resources: z.record(z.string(), z.unknown()).optional(),
    /** Extra zoo.cfg settings of the pods (tickTime, initLimit, ...). */
    settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
    /** dataDir inside the pods. */
    dataDir: absPath.default("/data"),
    /** sha256:<hex> of the image: the pods run <image repository>@<digest>. */
    imageDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/, "sha256:<64 hex digits>").optional(),
    /** A volume claim of this size for the transaction log (settings.dataLogDir, outside dataDir). */
    dataLogStorageSize: z.string().regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/, "a Kubernetes quantity such as 10Gi").optional(),
    /** Prometheus metrics on this port (ZooKeeper >= 3.6). */
    metricsPort: z.number().int().min(1).max(65535).optional(),
    /** Pod scheduling, passed through to the StatefulSet's pods. */
    scheduling: z
        .strictObject({
            nodeSelector: z.record(z.string(), z.string()).optional(),
            tolerations: z.array(z.record(z.string(), z.unknown())).optional(),
            topologySpreadConstraints: z.array(z.record(z.string(), z.unknown())).optional(),
            priorityClassName: z.string().optional(),
        })
        .optional(),
    terminationGracePeriodSeconds: z.number().int().min(6).optional(),
    /** The cluster's Kubernetes version (e.g. v1.34.4): from 1.33 the manual endpoints are EndpointSlices. */
    clusterVersion: z.string().regex(/^v?\d+\.\d+/, "a version such as v1.34.4").optional(),
});

const kubernetesSchema = z.strictObject({
    name: z.string(),
    procedure: z.literal("kubernetes"),
    phase: phaseOf(KUBERNETES_PHASES, "kubernetes"),
    servers: z.array(serverSchema).min(1),
    /** Servers moved into pods, in cutover order; grows by at most one per update. */
    cutover: z.array(myid).default([]),
    leader: myid.optional(),
    allowSingleServer: z.boolean().default(false),
    clients: clientsSchema.prefault({}),
    kubernetes: kubernetesSettingsSchema.prefault({}),
    ...hostOverrides,
});

// Block & copy: `copy` says where and how the copy runs, `clients` how the clients are stopped and
// pointed at the target. Secrets never enter the config: the copy reads auth from named variables.
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name");
const sshTarget = z.strictObject({
    /** The host's address (also the SSH host unless sshHost). */
    host: hostName,
    sshHost: hostName.optional(),
});

const blockCopyCopySchema = z.strictObject({
    /** Where the copy runs: "local" (where `pulumi up` runs) or a host reached over SSH. */
    runOn: z.union([z.literal("local"), sshTarget]).default("local"),
    /** The zkmigrate CLI there; default: `node --import tsx cli/zkmigrate.ts` locally (from the project dir), `zkmigrate` on a host. */
    command: z.string().min(1).optional(),
    /** The incremental copy's state file; default: `.zkmigrate/<name>-copy-state.json` locally, `/var/lib/zkmigrate/<name>-copy-state.json` on a host. */
    stateFile: z.string().regex(/^[^\0\n]+$/, "a file path").optional(),
    /** A variable (in the copy's environment) holding `scheme:credentials` for the source. */
    sourceAuthEnv: envName.optional(),
    /** The same for the target. */
    targetAuthEnv: envName.optional(),
    /** The final copy removes target nodes the source lacks (deleted since the precopy). */
    delete: z.boolean().default(true),
    /** More `zkmigrate copy` options (e.g. --batch-ops 500, --timeout 20000). */
    extraArgs: z.array(z.string().min(1)).default([]),
});

const blockCopyClientsSchema = z.strictObject({
    /** The hosts of the clients; each runs `block` and `switch` over SSH, one after the other. */
    hosts: z.array(sshTarget).min(1, "at least one client host"),
    /** Stops the client (e.g. systemctl stop kafka); must exit 0 only once it no longer writes. */
    block: z.string().min(1),
    /** Points the client at ZK_CONNECT (the target connect string with path, in its environment) and starts it. */
    switch: z.string().min(1),
    /** Starts the client as it is configured; runs when the block is undone (step back to precopy, or destroy). */
    unblock: z.string().min(1).optional(),
});

const blockCopySchema = z.strictObject({
    name: z.string(),
    procedure: z.literal("block-copy"),
    phase: phaseOf(BLOCK_COPY_PHASES, "block-copy"),
    source: z.array(serverSchema).min(1),
    target: z.array(serverSchema).min(1),
    /** The subtree that moves (e.g. /kafka). */
    path: z.string(),
    /** Where it lands on the target; default: `path`. */
    targetPath: z.string().optional(),
    allowSingleServer: z.boolean().default(false),
    copy: blockCopyCopySchema.prefault({}),
    clients: blockCopyClientsSchema,
    /** Only clientPort is used (the connect strings): block & copy changes no ZooKeeper server. */
    zookeeper: zookeeperSchema.partial().optional(),
});

const ensembleSchema = z.discriminatedUnion("procedure", [mitosisSchema, kubernetesSchema, blockCopySchema], {
    error: (iss) =>
        iss.code === "invalid_union" ? 'unknown procedure (one of: "mitosis", "kubernetes", "block-copy")' : undefined,
});

/** The scalar keys, each declared with type, description and default in Pulumi.yaml. */
const settingsSchema = z.strictObject({
    sshUser: z.string().min(1).default("root"),
    sshPort: port.default(22),
    /** The private key (PEM/OpenSSH); must be a secret config value. */
    sshPrivateKey: z.string().min(1).optional(),
    /** Read each ensemble's leader with `srvr` from where pulumi runs, to restart it last. */
    leaderProbe: z.boolean().default(true),
    leaderProbeTimeoutMs: z.int().min(100).max(30000).default(1500),
    /** Kubernetes context for the ensembles that need Kubernetes; default: the ambient one. */
    kubeContext: z.string().optional(),
    /** A kubeconfig (contents or path) for the Kubernetes provider; default: the ambient one. */
    kubeconfig: z.string().optional(),
});

export type Settings = z.output<typeof settingsSchema>;

// ---------------------------------------------------------------------------------------------
// Resolved config

export interface ServerSpec {
    id: ServerId;
    host: string;
    sshHost?: string;
}

interface EnsembleBase {
    name: string;
    /** Index in `zkmigrate:ensembles`, for error paths. */
    index: number;
    phase: string;
    host: HostSettings;
    ports: { client: number; peer: number; election: number };
    spacingSeconds: number;
    chroot?: string;
    leader?: ServerId;
    allowSingleServer: boolean;
}

export interface MitosisConfig extends EnsembleBase {
    procedure: "mitosis";
    source: ServerSpec[];
    target: ServerSpec[];
    /** T': the targets that join the joint ensemble. */
    active: ServerId[];
    /** Targets kept stopped until the split. */
    dormant: ServerId[];
    targetEmpty: boolean;
    emptyTargetMaxZnodes: number;
    quorumListenOnAllIPs: boolean;
    /** The chroot of the new connect string (default: `chroot`). */
    newChroot?: string;
    allowChrootChange: boolean;
    /** Kafka brokers moved in the `clients` phase. */
    kafka?: KafkaConfig;
}

export interface KafkaConfig {
    brokers: KafkaBroker[];
    settings: KafkaSettings;
    /** The controller as configured (otherwise read from /controller at preview). */
    controller?: number;
}

export interface KubernetesConfig extends EnsembleBase {
    procedure: "kubernetes";
    servers: ServerSpec[];
    cutover: ServerId[];
    kubernetes: z.output<typeof kubernetesSettingsSchema> & { name: string };
}

export interface BlockCopyConfig extends EnsembleBase {
    procedure: "block-copy";
    source: ServerSpec[];
    target: ServerSpec[];
    path: string;
    targetPath: string;
    copy: {
        /** Where the copy runs: undefined = locally, where `pulumi up` runs. */
        host?: { host: string; sshHost?: string };
        command: string;
        stateFile: string;
        sourceAuthEnv?: string;
        targetAuthEnv?: string;
        delete: boolean;
        extraArgs: string[];
    };
    clients: {
        hosts: { host: string; sshHost?: string }[];
        block: string;
        switch: string;
        unblock?: string;
    };
}

export type EnsembleConfig = MitosisConfig | KubernetesConfig | BlockCopyConfig;

export interface FleetConfig {
    settings: Settings;
    ensembles: EnsembleConfig[];
}

/** Raw config values by key (without the `zkmigrate:` prefix), as Pulumi config returns them. */
export type RawConfig = Record<string, unknown>;

/** Every key the program reads, without the namespace. */
export const CONFIG_KEYS = [...Object.keys(settingsSchema.shape), "defaults", "ensembles"] as const;

export function serversOf(e: EnsembleConfig): ServerSpec[] {
    return e.procedure === "kubernetes" ? e.servers : [...e.source, ...e.target];
}

// ---------------------------------------------------------------------------------------------
// Loading

function formatPath(key: string, path: readonly PropertyKey[]): string {
    let s = `${NAMESPACE}:${key}`;
    for (const p of path) {
        s += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
    }
    return s;
}

function parseKey<T extends z.ZodType>(
    key: string,
    schema: T,
    value: unknown,
    issues: ConfigIssue[],
): z.output<T> | undefined {
    const r = schema.safeParse(value);
    if (r.success) {
        return r.data;
    }
    for (const i of r.error.issues) {
        issues.push({ path: formatPath(key, i.path), reason: i.message });
    }
    return undefined;
}

/**
 * Parses and checks the whole stack config. Throws a ConfigError listing every problem.
 * `isSecret(key)` tells whether a config key was given as a secret (the SSH key must be one).
 */
export function loadConfig(raw: RawConfig, isSecret: (key: string) => boolean = () => true): FleetConfig {
    const issues: ConfigIssue[] = [];
    const { defaults: rawDefaults, ensembles: rawEnsembles, ...scalars } = raw;
    const settings = parseSettings(scalars, issues);
    const defaults = parseKey("defaults", hostDefaultsSchema, rawDefaults ?? {}, issues);
    const ensemblesRaw = parseKey("ensembles", z.array(ensembleSchema).min(1, "at least one ensemble"), rawEnsembles, issues);

    if (settings?.sshPrivateKey !== undefined && !isSecret(`${NAMESPACE}:sshPrivateKey`)) {
        issues.push({
            path: `${NAMESPACE}:sshPrivateKey`,
            reason: "the SSH private key must be a secret: pulumi config set --secret zkmigrate:sshPrivateKey < key",
        });
    }
    if (!settings || !defaults || !ensemblesRaw) {
        throw new ConfigError(issues);
    }
    const ensembles = ensemblesRaw.map((e, index) => resolveEnsemble(e, index, defaults));
    issues.push(...validateFleet(ensembles));
    if (settings.sshPrivateKey === undefined) {
        issues.push({
            path: `${NAMESPACE}:sshPrivateKey`,
            reason: "required to run the host steps over SSH: pulumi config set --secret zkmigrate:sshPrivateKey < key",
        });
    }
    if (issues.length > 0) {
        throw new ConfigError(issues);
    }
    return { settings, ensembles };
}

/** The scalar keys are separate config keys: report each under its own name. */
function parseSettings(scalars: Record<string, unknown>, issues: ConfigIssue[]): Settings | undefined {
    const r = settingsSchema.safeParse(scalars);
    if (r.success) {
        return r.data;
    }
    for (const i of r.error.issues) {
        if (i.code === "unrecognized_keys") {
            for (const k of i.keys) {
                issues.push({ path: `${NAMESPACE}:${k}`, reason: `unknown key (known: ${CONFIG_KEYS.join(", ")})` });
            }
        } else {
            issues.push({ path: formatPath(String(i.path[0]), i.path.slice(1)), reason: i.message });
        }
    }
    return undefined;
}

type HostDefaults = z.output<typeof hostDefaultsSchema>;
type RawEnsemble = z.output<typeof ensembleSchema>;

function resolveHost(e: RawEnsemble, d: HostDefaults): { host: HostSettings; ports: EnsembleBase["ports"] } {
    const zk = { ...d.zookeeper, ...stripUndefined(e.zookeeper ?? {}) };
    const service = { ...d.service, ...stripUndefined(("service" in e ? e.service : undefined) ?? {}) };
    return {
        host: {
            paths: {
                configFile: zk.configFile,
                dataDir: zk.dataDir,
                myidFile: zk.myidFile ?? `${zk.dataDir}/myid`,
                dataLogDir: zk.dataLogDir,
                dynamicConfigFile: zk.dynamicConfigFile,
            },
            service,
            clientPort: zk.clientPort,
            healthTimeoutSeconds: ("healthTimeoutSeconds" in e ? e.healthTimeoutSeconds : undefined) ?? d.healthTimeoutSeconds,
        },
        ports: { client: zk.clientPort, peer: zk.peerPort, election: zk.electionPort },
    };
}

function resolveKafka(k: z.output<typeof kafkaSchema> | undefined, allowChrootChange: boolean): KafkaConfig | undefined {
    if (!k) return undefined;
    return {
        brokers: k.brokers,
        controller: k.controller,
        settings: {
            serverProperties: k.serverProperties,
            binDir: k.binDir,
            port: k.port,
            service: k.service,
            healthTimeoutSeconds: k.healthTimeoutSeconds,
            spacingSeconds: k.spacingSeconds,
            allowChrootChange,
        },
    };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function resolveEnsemble(e: RawEnsemble, index: number, d: HostDefaults): EnsembleConfig {
    const { host, ports } = resolveHost(e, d);
    if (e.procedure === "block-copy") {
        return resolveBlockCopy(e, index, host, ports, d);
    }
    const base = {
        name: e.name,
        index,
        phase: e.phase,
        host,
        ports,
        spacingSeconds: e.spacingSeconds ?? d.spacingSeconds,
        chroot: e.clients.chroot,
        leader: e.leader,
        allowSingleServer: e.allowSingleServer,
    };
    if (e.procedure === "mitosis") {
        // S must stay a strict majority of the joint ensemble S+T', so that the source keeps
        // serving on its own when the firewall splits the targets off: |T'| <= n-1.
        const defaultActive = e.target.slice(0, Math.max(0, Math.min(e.target.length, e.source.length - 1))).map((s) => s.id);
        const active = e.activeTargets ?? defaultActive;
        return {
            ...base,
            procedure: "mitosis",
            source: e.source,
            target: e.target,
            active,
            dormant: e.target.map((s) => s.id).filter((id) => !active.includes(id)),
            targetEmpty: e.targetEmpty,
            emptyTargetMaxZnodes: e.emptyTargetMaxZnodes,
            quorumListenOnAllIPs: e.quorumListenOnAllIPs,
            newChroot: e.clients.newChroot,
            allowChrootChange: e.clients.allowChrootChange,
            kafka: resolveKafka(e.clients.kafka, e.clients.allowChrootChange),
        };
    }
    return {
        ...base,
        procedure: "kubernetes",
        servers: e.servers,
        cutover: e.cutover,
        kubernetes: { ...e.kubernetes, name: e.kubernetes.name ?? e.name },
    };
}

/** The CLI the copy runs where it runs: this repository's locally, an installed `zkmigrate` on a host. */
export const LOCAL_COPY_COMMAND = "node --import tsx cli/zkmigrate.ts";
export const REMOTE_COPY_COMMAND = "zkmigrate";

function resolveBlockCopy(e: z.output<typeof blockCopySchema>, index: number, host: HostSettings, ports: EnsembleBase["ports"], d: HostDefaults): BlockCopyConfig {
    const remote = e.copy.runOn === "local" ? undefined : e.copy.runOn;
    return {
        name: e.name,
        index,
        phase: e.phase,
        host,
        ports,
        spacingSeconds: d.spacingSeconds,
        allowSingleServer: e.allowSingleServer,
        procedure: "block-copy",
        source: e.source,
        target: e.target,
        path: e.path,
        targetPath: e.targetPath ?? e.path,
        copy: {
            ...(remote ? { host: remote } : {}),
            command: e.copy.command ?? (remote ? REMOTE_COPY_COMMAND : LOCAL_COPY_COMMAND),
            stateFile: e.copy.stateFile ?? (remote ? `/var/lib/zkmigrate/${e.name}-copy-state.json` : `.zkmigrate/${e.name}-copy-state.json`),
            sourceAuthEnv: e.copy.sourceAuthEnv,
            targetAuthEnv: e.copy.targetAuthEnv,
            delete: e.copy.delete,
            extraArgs: e.copy.extraArgs,
        },
        clients: e.clients,
    };
}

// ---------------------------------------------------------------------------------------------
// Checks across fields (pure, exported for table tests)

const ensemblePath = (e: EnsembleConfig, rest = "") => `${NAMESPACE}:ensembles[${e.index}]${rest}`;

/** Checks one fleet's ensembles on their own (no applied state needed). */
export function validateFleet(ensembles: EnsembleConfig[]): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    const names = new Map<string, number>();
    const endpoints = new Map<string, string>();
    for (const e of ensembles) {
        if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(e.name) || e.name.length > 40) {
            issues.push({ path: ensemblePath(e, ".name"), reason: `"${e.name}" is not a DNS label of at most 40 characters (a-z, 0-9, -)` });
        }
        const other = names.get(e.name);
        if (other !== undefined) {
            issues.push({ path: ensemblePath(e, ".name"), reason: `ensemble name "${e.name}" is used twice (also zkmigrate:ensembles[${other}])` });
        }
        names.set(e.name, e.index);
        issues.push(...(e.procedure === "mitosis" ? validateMitosis(e) : e.procedure === "kubernetes" ? validateKubernetes(e) : validateBlockCopy(e)));
        // A host:port is one ZooKeeper server; two ensembles cannot both manage it. Block & copy
        // manages no server (it only reads and writes znodes), so several subtrees may share them.
        if (e.procedure === "block-copy") continue;
        for (const [group, list] of groupsOf(e)) {
            list.forEach((s, i) => {
                const key = `${s.host}:${e.ports.client}`;
                const where = ensemblePath(e, `.${group}[${i}].host`);
                const seen = endpoints.get(key);
                if (seen !== undefined) {
                    issues.push({ path: where, reason: `host ${s.host} is listed twice (also ${seen})` });
                } else {
                    endpoints.set(key, where);
                }
            });
        }
    }
    return issues;
}

function groupsOf(e: EnsembleConfig): [string, ServerSpec[]][] {
    return e.procedure !== "kubernetes"
        ? [
              ["source", e.source],
              ["target", e.target],
          ]
        : [["servers", e.servers]];
}

function ensembleSizeIssue(e: EnsembleConfig, group: string, n: number): ConfigIssue | undefined {
    if (n === 1 && e.allowSingleServer) {
        return undefined;
    }
    if (n < 3 || n % 2 === 0) {
        return {
            path: ensemblePath(e, `.${group}`),
            reason:
                `${n} server${n === 1 ? "" : "s"}: an ensemble needs an odd number of at least 3 servers ` +
                `(an even one tolerates no more failures than one server fewer)` +
                (n === 1 ? "; a single dev server needs allowSingleServer: true" : ""),
        };
    }
    return undefined;
}

function duplicateIds(e: EnsembleConfig): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    const seen = new Map<number, string>();
    for (const [group, list] of groupsOf(e)) {
        list.forEach((s, i) => {
            const where = `${group}[${i}]`;
            const prev = seen.get(s.id);
            if (prev !== undefined) {
                issues.push({ path: ensemblePath(e, `.${where}.id`), reason: `myid ${s.id} is used twice (also ${prev})` });
            } else {
                seen.set(s.id, where);
            }
        });
    }
    return issues;
}

function validateMitosis(e: MitosisConfig): ConfigIssue[] {
    const issues = duplicateIds(e);
    const n = e.source.length;
    for (const [group, count] of [
        ["source", n],
        ["target", e.target.length],
    ] as const) {
        const i = ensembleSizeIssue(e, group, count);
        if (i) issues.push(i);
    }
    const sourceHosts = new Set(e.source.map((s) => s.host));
    e.target.forEach((t, i) => {
        if (sourceHosts.has(t.host)) {
            issues.push({ path: ensemblePath(e, `.target[${i}].host`), reason: `host ${t.host} is in both the source and the target` });
        }
    });
    if (!e.targetEmpty) {
        issues.push({
            path: ensemblePath(e, ".targetEmpty"),
            reason: "mitosis needs an empty target ensemble (its data is replaced by the source's); set targetEmpty: true once it is, or use block & copy",
        });
    }
    const targetIds = new Set(e.target.map((t) => t.id));
    e.active.forEach((id, i) => {
        if (!targetIds.has(id)) {
            issues.push({ path: ensemblePath(e, `.activeTargets[${i}]`), reason: `myid ${id} is not a target` });
        }
    });
    if (new Set(e.active).size !== e.active.length) {
        issues.push({ path: ensemblePath(e, ".activeTargets"), reason: "a target is listed twice" });
    }
    if (e.active.length === 0) {
        issues.push({ path: ensemblePath(e, ".activeTargets"), reason: "at least one target must join the source, or nothing is copied" });
    }
    if (e.active.length > n - 1) {
        issues.push({
            path: ensemblePath(e, ".activeTargets"),
            reason:
                `${e.active.length} active targets against a source of ${n}: the source must stay a strict majority ` +
                `of the joint ensemble to keep serving after the split, so at most ${n - 1} targets may join`,
        });
    }
    if (e.leader !== undefined && !e.source.some((s) => s.id === e.leader) && !e.target.some((s) => s.id === e.leader)) {
        issues.push({ path: ensemblePath(e, ".leader"), reason: `myid ${e.leader} is not a server of this ensemble` });
    }
    issues.push(...validateMitosisClients(e));
    return issues;
}

const ZNODE_PATH = /^\/[^\0\n]*[^/]$/;
const COPY_OWNED_ARGS = ["--mtime-since", "--state-file", "--delete", "--verify", "--dry-run", "--json"];
const AUTH_ARGS = ["--auth", "--src-auth", "--dst-auth"];

/** Block & copy: two separate ensembles (or one, with disjoint paths), paths, the copy's arguments (exported for table tests). */
export function validateBlockCopy(e: BlockCopyConfig): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    // myids are per ensemble: source and target may both have 1, 2, 3.
    for (const group of ["source", "target"] as const) {
        const seen = new Map<number, number>();
        const hosts = new Map<string, number>();
        e[group].forEach((s, i) => {
            const prev = seen.get(s.id);
            if (prev !== undefined) issues.push({ path: ensemblePath(e, `.${group}[${i}].id`), reason: `myid ${s.id} is used twice (also ${group}[${prev}])` });
            else seen.set(s.id, i);
            const prevHost = hosts.get(s.host);
            if (prevHost !== undefined) issues.push({ path: ensemblePath(e, `.${group}[${i}].host`), reason: `host ${s.host} is listed twice (also ${group}[${prevHost}])` });
            else hosts.set(s.host, i);
        });
        const size = ensembleSizeIssue(e, group, e[group].length);
        if (size) issues.push(size);
    }
    for (const [key, p] of [
        ["path", e.path],
        ["targetPath", e.targetPath],
    ] as const) {
        if (!ZNODE_PATH.test(p)) {
            issues.push({
                path: ensemblePath(e, `.${key}`),
                reason: `${JSON.stringify(p)} is not a subtree: an absolute znode path without a trailing "/", not the root (e.g. /kafka)`,
            });
        }
    }
    // Source and target are two ensembles, or the same one: a server shared by only some is a mistake.
    const src = new Set(e.source.map((s) => s.host));
    const dst = new Set(e.target.map((s) => s.host));
    const same = src.size === dst.size && [...src].every((h) => dst.has(h));
    if (same) {
        const a = e.path;
        const b = e.targetPath;
        if (a === b || b.startsWith(`${a}/`) || a.startsWith(`${b}/`)) {
            issues.push({
                path: ensemblePath(e, ".targetPath"),
                reason: `source and target are the same ensemble and ${b} overlaps ${a}: the copy would read what it writes; pick a disjoint targetPath`,
            });
        }
    } else {
        e.target.forEach((t, i) => {
            if (src.has(t.host)) {
                issues.push({
                    path: ensemblePath(e, `.target[${i}].host`),
                    reason: `host ${t.host} is in both the source and the target: they are two ensembles (list the same servers in both only to copy within one ensemble)`,
                });
            }
        });
    }
    e.copy.extraArgs.forEach((a, i) => {
        const flag = a.split("=")[0];
        if (AUTH_ARGS.includes(flag)) {
            issues.push({
                path: ensemblePath(e, `.copy.extraArgs[${i}]`),
                reason: `${flag} would put credentials in the command line (and in every preview): use copy.sourceAuthEnv / copy.targetAuthEnv`,
            });
        } else if (COPY_OWNED_ARGS.includes(flag)) {
            issues.push({ path: ensemblePath(e, `.copy.extraArgs[${i}]`), reason: `${flag} is set by the phase (precopy, final-copy); remove it` });
        }
    });
    const clientHosts = new Map<string, number>();
    e.clients.hosts.forEach((h, i) => {
        const prev = clientHosts.get(h.host);
        if (prev !== undefined) issues.push({ path: ensemblePath(e, `.clients.hosts[${i}].host`), reason: `host ${h.host} is listed twice (also clients.hosts[${prev}])` });
        else clientHosts.set(h.host, i);
    });
    return issues;
}

/** The chroot across the move, and the Kafka brokers (exported for table tests). */
export function validateMitosisClients(e: MitosisConfig): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    const oldChroot = e.chroot ?? "(none)";
    const newChroot = e.newChroot ?? e.chroot ?? "(none)";
    if (newChroot !== oldChroot && !e.allowChrootChange) {
        issues.push({
            path: ensemblePath(e, ".clients.newChroot"),
            reason:
                `the new connect string's chroot ${newChroot} differs from the old one's ${oldChroot}: Kafka keeps all its state ` +
                "(brokers, topics, controller, ISR) under its chroot and mitosis moves the tree as it is, so brokers on another " +
                "chroot would find an empty cluster; set clients.allowChrootChange: true only when that tree exists at the new chroot",
        });
    }
    const k = e.kafka;
    if (!k) return issues;
    const ids = new Map<number, number>();
    const hosts = new Map<string, number>();
    k.brokers.forEach((b, i) => {
        const seenId = ids.get(b.id);
        if (seenId !== undefined) {
            issues.push({ path: ensemblePath(e, `.clients.kafka.brokers[${i}].id`), reason: `broker.id ${b.id} is used twice (also clients.kafka.brokers[${seenId}])` });
        } else ids.set(b.id, i);
        const seenHost = hosts.get(b.host);
        if (seenHost !== undefined) {
            issues.push({ path: ensemblePath(e, `.clients.kafka.brokers[${i}].host`), reason: `host ${b.host} is listed twice (also clients.kafka.brokers[${seenHost}])` });
        } else hosts.set(b.host, i);
    });
    if (k.controller !== undefined && !ids.has(k.controller)) {
        issues.push({ path: ensemblePath(e, ".clients.kafka.controller"), reason: `broker.id ${k.controller} is not one of clients.kafka.brokers` });
    }
    return issues;
}

function validateKubernetes(e: KubernetesConfig): ConfigIssue[] {
    const issues = duplicateIds(e);
    const size = ensembleSizeIssue(e, "servers", e.servers.length);
    if (size) issues.push(size);
    e.servers.forEach((s, i) => {
        if (isIP(s.host) === 0) {
            issues.push({
                path: ensemblePath(e, `.servers[${i}].host`),
                reason: `"${s.host}" is not an IP address; the Service's manual Endpoints need the host's IP`,
            });
        }
    });
    const ids = new Set(e.servers.map((s) => s.id));
    e.cutover.forEach((id, i) => {
        if (!ids.has(id)) {
            issues.push({ path: ensemblePath(e, `.cutover[${i}]`), reason: `myid ${id} is not a server of this ensemble` });
        }
    });
    if (new Set(e.cutover).size !== e.cutover.length) {
        issues.push({ path: ensemblePath(e, ".cutover"), reason: "a server is listed twice" });
    }
    const pi = phaseIndex("kubernetes", e.phase);
    if (e.cutover.length > 0 && pi < phaseIndex("kubernetes", "pods")) {
        issues.push({
            path: ensemblePath(e, ".cutover"),
            reason: `servers move into pods only in phase "pods" (the peers must talk through the Services first); phase is "${e.phase}"`,
        });
    }
    if (e.phase === "done" && e.cutover.length !== e.servers.length) {
        const missing = e.servers.filter((s) => !e.cutover.includes(s.id)).map((s) => s.id);
        issues.push({ path: ensemblePath(e, ".phase"), reason: `"done" needs every server cut over; still on hosts: ${missing.join(", ")}` });
    }
    if (e.leader !== undefined && !ids.has(e.leader)) {
        issues.push({ path: ensemblePath(e, ".leader"), reason: `myid ${e.leader} is not a server of this ensemble` });
    }
    // The pods' zoo.cfg refuses settings that zkmigrate owns (membership, dataDir, ...): say so here.
    try {
        const members = e.servers.map((s) => ({ id: s.id, address: `${e.kubernetes.name}-${s.id}`, peerPort: e.ports.peer, electionPort: e.ports.election }));
        makeZooCfg({
            dataDir: e.kubernetes.dataDir,
            clientPort: e.ports.client,
            members,
            quorumListenOnAllIPs: true,
            settings: e.kubernetes.settings,
            separateDataLog: e.kubernetes.dataLogStorageSize !== undefined,
            metricsPort: e.kubernetes.metricsPort,
        });
    } catch (err) {
        issues.push({ path: ensemblePath(e, ".kubernetes.settings"), reason: (err as Error).message.replace(/^zkmigrate kubernetes: /, "") });
    }
    return issues;
}

// ---------------------------------------------------------------------------------------------
// Applied state: what the last successful update did, read back from this stack's own outputs.

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
}

export type AppliedState = Record<string, AppliedEnsemble>;

/** Reads the `applied` stack output back; anything unreadable counts as nothing applied. */
export function parseApplied(value: unknown): AppliedState {
    const schema = z.record(
        z.string(),
        z.object({
            procedure: z.enum(["mitosis", "kubernetes", "block-copy"]),
            phase: z.string(),
            cutover: z.array(z.int()).default([]),
            servers: z.array(z.int()).default([]),
            statefulSet: z.string().optional(),
        }),
    );
    const r = schema.safeParse(value ?? {});
    return r.success ? r.data : {};
}

export function appliedOf(e: EnsembleConfig): AppliedEnsemble {
    return {
        procedure: e.procedure,
        phase: e.phase,
        cutover: e.procedure === "kubernetes" ? [...e.cutover] : [],
        servers: serversOf(e).map((s) => s.id),
        ...(e.procedure === "kubernetes" ? { statefulSet: statefulSetIdentity(e) } : {}),
    };
}

function statefulSetIdentity(e: KubernetesConfig): string {
    const k = e.kubernetes;
    return `${k.namespace}/${k.name} ${k.storageSize} ${k.storageClassName ?? "(default class)"}`;
}

/**
 * The phase the ensemble is in now: the applied one, or, for a new ensemble, the first phase
 * (its baseline: the servers run as the config describes).
 */
export function currentOf(e: EnsembleConfig, applied: AppliedState): AppliedEnsemble {
    const a = applied[e.name];
    if (a && a.procedure === e.procedure) {
        return a;
    }
    return { procedure: e.procedure, phase: firstPhase(e.procedure), cutover: [], servers: serversOf(e).map((s) => s.id) };
}

/** Checks each ensemble's requested step against what was applied last. */
export function validateTransitions(ensembles: EnsembleConfig[], applied: AppliedState): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    for (const e of ensembles) {
        const a = applied[e.name];
        if (a && a.procedure !== e.procedure) {
            issues.push({
                path: ensemblePath(e, ".procedure"),
                reason: `ensemble "${e.name}" was applied as a ${a.procedure} migration; its procedure cannot change mid-way`,
            });
            continue;
        }
        const cur = currentOf(e, applied);
        const from = phaseIndex(e.procedure, cur.phase);
        const to = phaseIndex(e.procedure, e.phase);
        if (!a && to !== 0) {
            issues.push({
                path: ensemblePath(e, ".phase"),
                reason: `a new ensemble starts at the first phase "${firstPhase(e.procedure)}" (its preflight checks run there); got "${e.phase}"`,
            });
        } else if (Math.abs(to - from) > 1) {
            const phases = phasesOf(e.procedure);
            const next = phases[Math.min(from + 1, phases.length - 1)];
            issues.push({
                path: ensemblePath(e, ".phase"),
                reason:
                    `"${e.phase}" is ${Math.abs(to - from)} steps from the applied phase "${cur.phase}": ` +
                    `move one step per update (next: "${next}")`,
            });
        }
        const ids = serversOf(e).map((s) => s.id).sort((x, y) => x - y);
        const before = [...cur.servers].sort((x, y) => x - y);
        if (a && from > 0 && ids.join(",") !== before.join(",")) {
            issues.push({
                path: ensemblePath(e),
                reason: `the servers of an ensemble cannot change during a migration (applied: ${before.join(", ")}; now: ${ids.join(", ")}); finish it or step back to the first phase first`,
            });
        }
        // Once the clients run on the target they write there: stepping back would point them at a
        // source that lacks those writes.
        if (e.procedure === "block-copy" && a && to < from && from >= phaseIndex("block-copy", "switched")) {
            issues.push({
                path: ensemblePath(e, ".phase"),
                reason: `the clients were switched to the target ("${cur.phase}"): stepping back to "${e.phase}" would lose what they wrote there since; copy it back with a new block & copy ensemble instead`,
            });
        }
        if (e.procedure === "kubernetes" && a?.statefulSet !== undefined && cur.cutover.length > 0 && a.statefulSet !== statefulSetIdentity(e)) {
            issues.push({
                path: ensemblePath(e, ".kubernetes"),
                reason:
                    `namespace, name, storageSize and storageClassName cannot change while servers run in pods ` +
                    `(applied: ${a.statefulSet}; now: ${statefulSetIdentity(e)}): Kubernetes would replace the StatefulSet, every pod at once`,
            });
        }
        if (e.procedure === "kubernetes") {
            const prev = cur.cutover;
            const prefix = e.cutover.slice(0, prev.length);
            if (prefix.length < prev.length || prefix.some((id, i) => id !== prev[i])) {
                issues.push({
                    path: ensemblePath(e, ".cutover"),
                    reason: `servers already in pods cannot leave or change order (applied cutover: [${prev.join(", ")}]); only append`,
                });
            } else if (e.cutover.length - prev.length > 1) {
                issues.push({
                    path: ensemblePath(e, ".cutover"),
                    reason:
                        `${e.cutover.length - prev.length} servers added to the cutover in one update (applied: [${prev.join(", ")}]); ` +
                        "move one server per update so the others keep a majority",
                });
            }
        }
    }
    return issues;
}
