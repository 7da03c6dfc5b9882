// The schema leaf: the zod pieces every procedure's config part is built from, the fleet-wide
// settings, the host defaults, and the resolved base every ensemble shares. Types come from
// `z.output` of these schemas; the procedures' rooms (src/procedures/) add their own parts.
import { z } from "zod";
import type { HostSettings, ServerId } from "../types";
import { parseHostKey } from "./host-keys";
import { hostSyntaxIssue } from "./hosts";

export const port = z.int().min(1).max(65535);
export const myid = z.int().min(1, "a myid is 1..255").max(255, "a myid is 1..255");
/** A host name or IP address, in a spelling every program reads alike (src/config/hosts.ts). */
export const hostName = z
    .string()
    .min(1)
    .superRefine((h, ctx) => {
        const reason = hostSyntaxIssue(h);
        if (reason) ctx.addIssue({ code: "custom", message: reason });
    });
/**
 * A host's SSH public host key as `ssh-keyscan` prints it without the host name
 * (`ssh-ed25519 AAAA...`), normalised to `<type> <base64>`: what @pulumi/command pins.
 */
export const hostKey = z.string().transform((line, ctx) => {
    const r = parseHostKey(line);
    if ("key" in r) return r.key;
    ctx.issues.push({ code: "custom", input: line, message: r.reason });
    return z.NEVER;
});
export const absPath = z.string().regex(/^\/[^\0\n]*$/, "an absolute path");
export const chroot = z.string().regex(/^\/[^\0\n]*[^/]$/, 'a chroot is an absolute znode path without a trailing "/", e.g. /kafka');

export const serverSchema = z.strictObject({
    /** The server's myid. */
    id: myid,
    /** The address the other servers and clients use for this server (its zoo.cfg address). */
    host: hostName,
    /** Where pulumi reaches the host over SSH, when that differs from `host`. */
    sshHost: hostName.optional(),
    /** The host's SSH host key (`ssh-ed25519 AAAA...`); default: from zkmigrate:sshKnownHosts. */
    hostKey: hostKey.optional(),
});
export type ServerSpec = z.output<typeof serverSchema>;

/** A host reached over SSH that is not a ZooKeeper server (client hosts, the copy's host). */
export const sshTarget = z.strictObject({
    /** The host's address (also the SSH host unless sshHost). */
    host: hostName,
    sshHost: hostName.optional(),
    /** The host's SSH host key; default: from zkmigrate:sshKnownHosts. */
    hostKey: hostKey.optional(),
});
export type SshTarget = z.output<typeof sshTarget>;

export const zookeeperSchema = z.strictObject({
    clientPort: port.default(2181),
    peerPort: port.default(2888),
    electionPort: port.default(3888),
    configFile: absPath.default("/etc/zookeeper/conf/zoo.cfg"),
    dataDir: absPath.default("/var/lib/zookeeper"),
    myidFile: absPath.optional(),
    dataLogDir: absPath.optional(),
    dynamicConfigFile: absPath.optional(),
    /** zkCli of the hosts' release, for the reconfig steps (membershipChange: reconfig); default /opt/zookeeper/bin/zkCli.sh. */
    cli: z.string().min(1).optional(),
});

export const serviceSchema = z.strictObject({
    start: z.string().min(1).default("systemctl start zookeeper"),
    stop: z.string().min(1).default("systemctl stop zookeeper"),
    restart: z.string().min(1).default("systemctl restart zookeeper"),
    status: z.string().min(1).default("systemctl status zookeeper --no-pager"),
    disable: z.string().min(1).default("systemctl disable zookeeper"),
});

/** Host settings shared by every ensemble unless an ensemble overrides them (`zkmigrate:defaults`). */
export const hostDefaultsSchema = z.strictObject({
    zookeeper: zookeeperSchema.prefault({}),
    service: serviceSchema.prefault({}),
    healthTimeoutSeconds: z.int().min(5).max(3600).default(120),
    spacingSeconds: z.int().min(0).max(600).default(10),
});
export type HostDefaults = z.output<typeof hostDefaultsSchema>;

/** Per-ensemble overrides: the same keys, all optional, merged over the defaults. */
export const hostOverrides = {
    zookeeper: zookeeperSchema.partial().optional(),
    service: serviceSchema.partial().optional(),
    healthTimeoutSeconds: z.int().min(5).max(3600).optional(),
    spacingSeconds: z.int().min(0).max(600).optional(),
};
type HostOverrides = { [K in keyof typeof hostOverrides]?: z.output<(typeof hostOverrides)[K]> };

/** The phase key of a procedure: one of its phases, or a message that lists them. */
export const phaseOf = (phases: readonly string[], procedure: string) =>
    z.string().refine((p) => phases.includes(p), {
        error: (iss) => `unknown ${procedure} phase ${JSON.stringify(iss.input)} (one of: ${phases.join(", ")})`,
    });

/** The scalar keys, each declared with type, description and default in Pulumi.yaml. */
export const settingsSchema = z.strictObject({
    sshUser: z.string().min(1).default("root"),
    sshPort: port.default(22),
    /** The private key (PEM/OpenSSH); must be a secret config value. */
    sshPrivateKey: z.string().min(1).optional(),
    /** A known_hosts file (a path, or its text): the host keys of hosts without `hostKey`. */
    sshKnownHosts: z.string().optional(),
    /** false: hosts without a key are reached WITHOUT verifying them (a warning in every preview). */
    sshHostKeyCheck: z.boolean().default(true),
    /** Read each ensemble's leader with `srvr` from where pulumi runs, to restart it last. */
    leaderProbe: z.boolean().default(true),
    leaderProbeTimeoutMs: z.int().min(100).max(30000).default(1500),
    /**
     * The digest credentials (`user:password`) of `reconfig` for ensembles with membershipChange:
     * reconfig, when /zookeeper/config needs them (a super digest, or an ACL); must be a secret.
     * Unset: reconfig runs unauthenticated (servers with skipACL=yes).
     */
    reconfigAuth: z
        .string()
        .regex(/^(|[^:\n]+:[^\n]*)$/, "user:password (digest credentials)")
        // "" is the default Pulumi.yaml declares: none.
        .transform((v) => (v === "" ? undefined : v))
        .optional(),
    /** Kubernetes context for the ensembles that need Kubernetes; default: the ambient one. */
    kubeContext: z.string().optional(),
    /** A kubeconfig (contents or path) for the Kubernetes provider; default: the ambient one. */
    kubeconfig: z.string().optional(),
});
export type Settings = z.output<typeof settingsSchema>;

/** Every scalar key the program reads, without the namespace (plus `defaults`, `ensembles` and `adopted`). */
export const CONFIG_KEYS = [...Object.keys(settingsSchema.shape), "defaults", "ensembles", "adopted"] as const;

/** What every resolved ensemble carries, whatever its procedure. */
export interface EnsembleBase {
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

function stripUndefined<T extends object>(o: T): Partial<T> {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The servers of two ensembles: the one a subtree or ensemble leaves, and the one it moves to. */
export const sourceAndTarget = {
    source: z.array(serverSchema).min(1),
    target: z.array(serverSchema).min(1),
};

/** The base of a resolved ensemble (without chroot and leader, which not every procedure has). */
export function resolveBase(
    e: HostOverrides & { name: string; phase: string; allowSingleServer: boolean },
    index: number,
    d: HostDefaults,
): Omit<EnsembleBase, "chroot" | "leader"> {
    const { host, ports, spacingSeconds } = resolveHost(e, d);
    return { name: e.name, index, phase: e.phase, host, ports, spacingSeconds, allowSingleServer: e.allowSingleServer };
}

/** The ensemble's host settings and ports: its overrides merged over the defaults. */
export function resolveHost(e: HostOverrides, d: HostDefaults): { host: HostSettings; ports: EnsembleBase["ports"]; spacingSeconds: number } {
    const zk = { ...d.zookeeper, ...stripUndefined(e.zookeeper ?? {}) };
    const service = { ...d.service, ...stripUndefined(e.service ?? {}) };
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
            healthTimeoutSeconds: e.healthTimeoutSeconds ?? d.healthTimeoutSeconds,
            ...(zk.cli !== undefined ? { cli: zk.cli } : {}),
        },
        ports: { client: zk.clientPort, peer: zk.peerPort, election: zk.electionPort },
        spacingSeconds: e.spacingSeconds ?? d.spacingSeconds,
    };
}
