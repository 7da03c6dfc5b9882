// Resource policies: each judges one resource as the program declares it. Each is a factory (the
// pack's defaults, or other settings for another fleet) with a kebab-case name, a description and
// an enforcement level, tunable through its configSchema.
import type { EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import {
    isCompleteZooCfg,
    isLoopback,
    isWorldCidr,
    known,
    knownArray,
    knownString,
    openedPorts,
    read,
    stringsIn,
    UNKNOWN,
    zooSettings,
} from "./lib";

export interface PolicyOptions {
    /** Default: mandatory (a violation fails `pulumi preview` and `pulumi up`). */
    enforcementLevel?: EnforcementLevel;
}

/** The policy's settings: the schema's defaults, overridden by what `--policy-pack-config` sets. */
export function settings<T extends object>(args: { getConfig<C extends object>(): C }, defaults: T): T {
    const given: Partial<T> = known(() => args.getConfig<Partial<T>>()) ?? {};
    const out = { ...defaults };
    for (const k of Object.keys(defaults) as (keyof T)[]) {
        if (given[k] !== undefined) out[k] = given[k] as T[keyof T];
    }
    return out;
}

// ---- ZooKeeper objects in Kubernetes. ----

export const ZOOKEEPER_LABEL = { key: "app.kubernetes.io/name", value: "zookeeper" };
/** zkmigrate's per-server Services and Endpoints carry the server's myid in this label. */
export const MYID_LABEL = "zkmigrate/myid";

/** Whether labels mark a ZooKeeper object (the zkmigrate labels, or `app.kubernetes.io/name`). */
export function isZooKeeperLabels(labels: unknown, label = ZOOKEEPER_LABEL): boolean {
    if (!labels || typeof labels !== "object") return false;
    const l = labels as Record<string, unknown>;
    return known(() => l[label.key]) === label.value || known(() => l[MYID_LABEL]) !== undefined;
}

export interface ServicePortsConfig {
    clientPort: number;
    peerPort: number;
    electionPort: number;
}

/**
 * A ZooKeeper Service exposes the client, peer and leader-election ports, each named: the names
 * tie a selector-less Service to its manual Endpoints, and peers need all three.
 */
export function zookeeperServicePorts(opts: PolicyOptions = {}): ResourceValidationPolicy {
    const defaults: ServicePortsConfig = { clientPort: 2181, peerPort: 2888, electionPort: 3888 };
    return {
        name: "zookeeper-service-ports",
        description: "A ZooKeeper Service exposes the client (2181), peer (2888) and leader-election (3888) ports, named client, peer and leader-election.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        configSchema: {
            properties: {
                clientPort: { type: "integer", default: defaults.clientPort, minimum: 1, maximum: 65535 },
                peerPort: { type: "integer", default: defaults.peerPort, minimum: 1, maximum: 65535 },
                electionPort: { type: "integer", default: defaults.electionPort, minimum: 1, maximum: 65535 },
            },
        },
        validateResource: (args, report) => {
            if (args.type !== "kubernetes:core/v1:Service") return;
            const props = args.props;
            if (!isZooKeeperLabels(known(() => props.metadata?.labels))) return;
            const c = settings(args, defaults);
            const name = knownString(() => props.metadata?.name) ?? args.name;
            const ports = read(() => props.spec?.ports);
            if (ports === UNKNOWN) return;
            const list: unknown[] = Array.isArray(ports) ? [...ports.keys()].map((i) => read(() => ports[i])) : [];
            for (const [want, port] of [
                ["client", c.clientPort],
                ["peer", c.peerPort],
                ["leader-election", c.electionPort],
            ] as const) {
                const entry = list.find((e) => e !== UNKNOWN && read(() => (e as Record<string, unknown>).port) === port) as Record<string, unknown> | undefined;
                if (!entry) {
                    // An entry whose port is unknown at preview may be this one.
                    if (list.some((e) => e === UNKNOWN || read(() => (e as Record<string, unknown>).port) === UNKNOWN)) continue;
                    report(`ZooKeeper Service "${name}" does not expose port ${port} (${want})`);
                    continue;
                }
                const got = read(() => entry.name);
                if (got === UNKNOWN || got === want) continue;
                report(`ZooKeeper Service "${name}" exposes port ${port} as ${got === undefined ? "an unnamed port" : `"${String(got)}"`}: name it "${want}"`);
            }
        },
    };
}

export interface StatefulSetConfig {
    /** The topology key the pods must be spread over. */
    topologyKey: string;
}

/** The pod template of a ZooKeeper StatefulSet: a readiness probe, anti-affinity, volume claims. */
export function zookeeperStatefulSetPods(opts: PolicyOptions = {}): ResourceValidationPolicy {
    const defaults: StatefulSetConfig = { topologyKey: "kubernetes.io/hostname" };
    return {
        name: "zookeeper-statefulset-pods",
        description:
            "A ZooKeeper StatefulSet gives its ZooKeeper container a readiness probe (ready = synced), requires pod anti-affinity across nodes, and keeps its data in volume claims.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        configSchema: { properties: { topologyKey: { type: "string", default: defaults.topologyKey } } },
        validateResource: (args, report) => {
            if (args.type !== "kubernetes:apps/v1:StatefulSet") return;
            const props = args.props;
            if (!isZooKeeperStatefulSet(props)) return;
            const c = settings(args, defaults);
            const name = knownString(() => props.metadata?.name) ?? args.name;
            const containers = knownArray<Record<string, any>>(() => props.spec?.template?.spec?.containers);
            const zk = containers.find((x) => /zookeeper/i.test(knownString(() => x.image) ?? "") || /zookeeper/i.test(knownString(() => x.name) ?? "")) ?? containers[0];
            if (zk && read(() => zk.readinessProbe) === undefined) {
                report(`ZooKeeper StatefulSet "${name}": container "${knownString(() => zk.name) ?? "?"}" has no readiness probe: a pod must count as ready only once it serves (srvr reports a Mode)`);
            }
            const anti = read(() => props.spec?.template?.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution);
            if (anti !== UNKNOWN) {
                const keys = (Array.isArray(anti) ? [...anti.keys()] : []).map((i) => read(() => anti[i].topologyKey));
                if (!keys.some((k) => k === c.topologyKey || k === UNKNOWN)) {
                    report(`ZooKeeper StatefulSet "${name}" has no required pod anti-affinity on ${c.topologyKey}: two servers on one node would be lost together`);
                }
            }
            const claims = read(() => props.spec?.volumeClaimTemplates);
            if (claims !== UNKNOWN && (!Array.isArray(claims) || claims.length === 0)) {
                report(`ZooKeeper StatefulSet "${name}" has no volume claim templates: a pod's data and myid would not outlive the pod`);
            }
        },
    };
}

/** Labels or images that make a StatefulSet a ZooKeeper one. */
export function isZooKeeperStatefulSet(props: Record<string, any>): boolean {
    if (isZooKeeperLabels(known(() => props.metadata?.labels)) || isZooKeeperLabels(known(() => props.spec?.template?.metadata?.labels))) return true;
    const containers = knownArray<Record<string, any>>(() => props.spec?.template?.spec?.containers);
    return containers.some((c) => /(^|\/)zookeeper(:|@|$)/i.test(knownString(() => c.image) ?? ""));
}

// ---- AWS. ----

export interface SecurityGroupConfig {
    /** Ports that must never be open to the world. */
    ports: number[];
}

const PORT_ROLES: Record<number, string> = { 2181: "ZooKeeper client", 2888: "ZooKeeper peer", 3888: "ZooKeeper election", 8080: "ZooKeeper AdminServer", 22: "SSH" };

function describePorts(ports: number[]): string {
    return ports.map((p) => (PORT_ROLES[p] ? `${p} (${PORT_ROLES[p]})` : String(p))).join(", ");
}

/** No security group rule opens ZooKeeper's ports, its AdminServer or SSH to 0.0.0.0/0 or ::/0. */
export function zookeeperPortsNotPublic(opts: PolicyOptions = {}): ResourceValidationPolicy {
    const defaults: SecurityGroupConfig = { ports: [2181, 2888, 3888, 8080, 22] };
    return {
        name: "zookeeper-ports-not-public",
        description: "No security group opens ZooKeeper's ports (2181, 2888, 3888), its AdminServer (8080) or SSH (22) to 0.0.0.0/0 or ::/0.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        configSchema: {
            properties: { ports: { type: "array", items: { type: "integer", minimum: 0, maximum: 65535 }, default: defaults.ports } },
        },
        validateResource: (args, report) => {
            const c = settings(args, defaults);
            const p = args.props;
            const check = (where: string, protocol: unknown, from: unknown, to: unknown, cidrs: unknown[]) => {
                const world = cidrs.filter((x): x is string => typeof x === "string" && isWorldCidr(x));
                if (world.length === 0) return;
                const open = openedPorts(protocol, from, to, c.ports);
                if (open.length === 0) return;
                report(`${where}opens ${describePorts(open)} to ${world.join(" and ")}: allow known networks or security groups only`);
            };
            switch (args.type) {
                case "aws:ec2/securityGroup:SecurityGroup": {
                    const rules = knownArray<Record<string, any>>(() => p.ingress);
                    rules.forEach((r, i) =>
                        check(`ingress[${i}] `, known(() => r.protocol), known(() => r.fromPort), known(() => r.toPort), [
                            ...knownArray(() => r.cidrBlocks),
                            ...knownArray(() => r.ipv6CidrBlocks),
                        ]),
                    );
                    return;
                }
                case "aws:ec2/securityGroupRule:SecurityGroupRule":
                    if (known(() => p.type) !== "ingress") return;
                    check("the ingress rule ", known(() => p.protocol), known(() => p.fromPort), known(() => p.toPort), [
                        ...knownArray(() => p.cidrBlocks),
                        ...knownArray(() => p.ipv6CidrBlocks),
                    ]);
                    return;
                case "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
                    check("the ingress rule ", known(() => p.ipProtocol), known(() => p.fromPort), known(() => p.toPort), [known(() => p.cidrIpv4), known(() => p.cidrIpv6)]);
                    return;
            }
        },
    };
}

export interface EphemeralInstanceConfig {
    ownerTag: string;
    expiryTag: string;
    /** A tag that marks an instance as part of an ephemeral ensemble (besides a zkmigrate parent). */
    ensembleTag: string;
}

/** Whether an instance belongs to an ephemeral test ensemble: a zkmigrate component parent, or the marker tag. */
export function isEnsembleInstance(args: Pick<ResourceValidationArgs, "urn" | "props">, ensembleTag: string): boolean {
    // urn:pulumi:<stack>::<project>::<parent types joined by $>$<type>::<name>
    const qualifiedType = args.urn.split("::")[2] ?? "";
    const parents = qualifiedType.split("$").slice(0, -1);
    if (parents.some((t) => t.startsWith("zkmigrate:"))) return true;
    const tags = known(() => args.props.tags);
    return !!tags && typeof tags === "object" && known(() => (tags as Record<string, unknown>)[ensembleTag]) !== undefined;
}

/** A date the expiry tag may hold: YYYY-MM-DD or an RFC 3339 time. */
export function isExpiryDate(v: string): boolean {
    if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) return false;
    return !Number.isNaN(Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v));
}

/**
 * Instances of ephemeral test ensembles say who owns them and when they may be deleted, allow only
 * IMDSv2 (a session token: an SSRF in anything on the host cannot read the role's credentials)
 * and encrypt their root volume.
 */
export function ephemeralEnsembleInstances(opts: PolicyOptions = {}): ResourceValidationPolicy {
    const defaults: EphemeralInstanceConfig = { ownerTag: "owner", expiryTag: "expires", ensembleTag: "zkmigrate:ensemble" };
    return {
        name: "ephemeral-ensemble-instances",
        description:
            "EC2 instances of ephemeral test ensembles carry owner and expiry tags, require IMDSv2 (httpTokens required) and encrypt their root volume.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        configSchema: {
            properties: {
                ownerTag: { type: "string", default: defaults.ownerTag, minLength: 1 },
                expiryTag: { type: "string", default: defaults.expiryTag, minLength: 1 },
                ensembleTag: { type: "string", default: defaults.ensembleTag, minLength: 1 },
            },
        },
        validateResource: (args, report) => {
            if (args.type !== "aws:ec2/instance:Instance") return;
            const c = settings(args, defaults);
            if (!isEnsembleInstance(args, c.ensembleTag)) return;
            const p = args.props;
            const tags = read(() => p.tags);
            if (tags !== UNKNOWN) {
                const owner = read(() => tags?.[c.ownerTag]);
                const expiry = read(() => tags?.[c.expiryTag]);
                if (owner !== UNKNOWN && (typeof owner !== "string" || owner.trim() === "")) {
                    report(`instance has no "${c.ownerTag}" tag: an ephemeral ensemble names who to ask before it is deleted`);
                }
                if (expiry === undefined) {
                    report(`instance has no "${c.expiryTag}" tag: an ephemeral ensemble says when it may be deleted (YYYY-MM-DD or an RFC 3339 time)`);
                } else if (expiry !== UNKNOWN && (typeof expiry !== "string" || !isExpiryDate(expiry))) {
                    report(`instance's "${c.expiryTag}" tag ${JSON.stringify(expiry)} is not a date (YYYY-MM-DD or an RFC 3339 time)`);
                }
            }
            const endpoint = read(() => p.metadataOptions?.httpEndpoint);
            const tokens = read(() => p.metadataOptions?.httpTokens);
            if (endpoint !== "disabled" && endpoint !== UNKNOWN && tokens !== "required" && tokens !== UNKNOWN) {
                report(`instance allows IMDSv1: set metadataOptions.httpTokens to "required"`);
            }
            const encrypted = read(() => p.rootBlockDevice?.encrypted);
            if (encrypted !== true && encrypted !== UNKNOWN) {
                report(`instance's root volume is not encrypted: set rootBlockDevice.encrypted to true`);
            }
        },
    };
}

// ---- Remote commands. ----

const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/**
 * Remote commands take their SSH key only in `connection.privateKey`, which the command SDK keeps
 * secret: never in a script, an environment variable or a trigger (shown in previews and logs), and
 * never on a resource whose connection is not marked secret.
 */
export function remoteCommandKeySecret(opts: PolicyOptions = {}): ResourceValidationPolicy {
    return {
        name: "remote-command-key-secret",
        description:
            "Remote commands take their SSH private key only as the secret connection.privateKey: never in a script, environment, stdin or triggers, never with a connection that is not secret.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        validateResource: (args, report) => {
            if (args.type !== "command:remote:Command") return;
            const p = args.props;
            const key = knownString(() => p.connection?.privateKey);
            if (key !== undefined && !args.opts.additionalSecretOutputs.includes("connection")) {
                report(`connection is not marked secret (additionalSecretOutputs lacks "connection"): the private key would be stored in plain text in the state`);
            }
            const keyPaths = new Set(["connection.privateKey", "connection.proxy.privateKey"]);
            const needle = key?.trim();
            for (const s of stringsIn(p)) {
                if (keyPaths.has(s.path)) continue;
                if (needle && needle.length >= 16 && s.text.includes(needle)) {
                    report(`the SSH private key appears in ${s.path}: pass it only as connection.privateKey (scripts, environment and triggers are shown in previews and logs)`);
                } else if (PEM_PRIVATE_KEY.test(s.text)) {
                    report(`${s.path} holds a private key: pass SSH keys only as connection.privateKey (scripts, environment and triggers are shown in previews and logs)`);
                }
            }
        },
    };
}

// ---- Rendered ZooKeeper settings. ----

/** Where a resource renders ZooKeeper settings: ConfigMap data, instance user data, host commands. */
function renderedTexts(args: ResourceValidationArgs): { path: string; text: string }[] {
    const p = args.props;
    switch (args.type) {
        case "kubernetes:core/v1:ConfigMap":
            return stringsIn(known(() => p.data), "data");
        case "aws:ec2/instance:Instance":
        case "aws:ec2/launchTemplate:LaunchTemplate":
            return stringsIn(known(() => p.userData), "userData");
        case "command:remote:Command":
        case "command:local:Command":
            return [
                ...stringsIn(known(() => p.create), "create"),
                ...stringsIn(known(() => p.update), "update"),
                ...stringsIn(known(() => p.stdin), "stdin"),
            ];
        default:
            return [];
    }
}

/**
 * Rendered ZooKeeper settings keep the AdminServer off, or on loopback only (it serves every
 * four-letter word's data over HTTP, without authentication, on 0.0.0.0:8080 by default), and
 * never allow every four-letter word.
 */
export function zookeeperSettingsSafe(opts: PolicyOptions = {}): ResourceValidationPolicy {
    return {
        name: "zookeeper-settings-safe",
        description:
            "Rendered ZooKeeper settings keep the AdminServer off (admin.enableServer=false) or on localhost, and never set 4lw.commands.whitelist to *.",
        enforcementLevel: opts.enforcementLevel ?? "mandatory",
        validateResource: (args, report) => {
            for (const { path, text } of renderedTexts(args)) {
                const s = zooSettings(text);
                const last = (key: string) => s.filter((x) => x.key === key).pop()?.value;
                const whitelist = last("4lw.commands.whitelist");
                if (whitelist !== undefined && whitelist.split(",").some((w) => w.trim() === "*")) {
                    report(`${path} sets 4lw.commands.whitelist to *: list the four-letter words the checks need (e.g. srvr,mntr,conf,ruok)`);
                }
                const enable = last("admin.enableServer");
                const address = last("admin.serverAddress");
                // The AdminServer runs unless disabled; a complete zoo.cfg that says nothing runs it.
                const runs = enable === undefined ? isCompleteZooCfg(text) || address !== undefined : enable.toLowerCase() !== "false";
                if (runs && !(address !== undefined && isLoopback(address))) {
                    report(
                        `${path} keeps the AdminServer on ${address ?? "0.0.0.0"}:${last("admin.serverPort") ?? "8080"}: set admin.enableServer=false, or admin.serverAddress=127.0.0.1`,
                    );
                }
            }
        },
    };
}
