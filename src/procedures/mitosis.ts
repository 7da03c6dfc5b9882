// Yelp's "mitosis" (seed 003): a dedicated ensemble split off a shared one.
//
// Source S (n servers) keeps serving its other users throughout; target T (m servers, empty) ends
// up with the migrating clients' data. Active targets T' join S as a joint ensemble, the rest stay
// dormant so that S alone is a majority of S+T' (|T'| <= n-1): that is what keeps the source
// serving when the firewall splits the targets off. Why each phase comes where it does:
//   separate          nothing runs differently: the preflight proves the paths, the empty target
//                     and no leftover split before anything is written. Back here (an abort of the
//                     join) the targets leave first and start empty again: their data is moved aside.
//   joined            T' joins S (targets first, wiped: an empty target's own epochs must never
//                     compete with the source's; the source leader last: one election, not two);
//                     the dormant targets stop so S stays a majority of S+T'.
//   clients           the clients (Kafka's zookeeper.connect) move to T's addresses while T' still
//                     follows the source leader: every write still lands in one history.
//   prepared          the split's read-only preflight on every host (iptables, no leftover chain,
//                     the paths between the servers), nothing written: a zoo.cfg is written only by
//                     the restart that reads it, so that a server that crashes and comes back on its
//                     own runs what it ran, never its future membership.
//   split             the firewall cuts T from S (tcp-reset, both directions), then the targets
//                     restart together and elect their own leader with the migrated data (dormant
//                     targets with them while they are no majority of T; else after the leader is
//                     elected, one at a time: an empty majority must never elect an empty leader).
//   source-restarted  the sources restart onto S: leader first when they have no slack (a
//                     leader counts acks in its own membership).
//   done              the firewall goes: S no longer lists any target.
import { z } from "zod";
import { ensemblePath, type ConfigIssue } from "../config/errors";
import { canonicalHost } from "../config/hosts";
import { absPath, chroot, hostKey, hostName, hostOverrides, myid, phaseOf, port, resolveBase, sourceAndTarget, type EnsembleBase, type HostDefaults, type ServerSpec } from "../config/schema";
import type { ClientGroup, PreflightCheck, Step, Window } from "../steps";
import type { AppliedEnsemble, DesiredState, FirewallSplit, KafkaBroker, KafkaSettings, Membership, RestartGroup, ServerId, ServerState } from "../types";
import { duplicateIds, ensembleSizeIssue, groupHosts, hostMembership, leaderIssue, serversConnect, unknownLeaderWarning } from "./common";
import { deadmanIssue } from "./gates";
import { changedServers, closingSteps, declaredIds, hostSteps } from "./host-steps";
import { brokerSteps } from "./kafka";
import { phaseIndexIn, type BackStep, type PlanContext, type Procedure, type RoomPlan } from "./procedure";

export const MITOSIS_PHASES = ["separate", "joined", "clients", "prepared", "split", "source-restarted", "done"] as const;
export type MitosisPhase = (typeof MITOSIS_PHASES)[number];

// ---------------------------------------------------------------------------------------------
// Config part

// Kafka brokers as clients of a mitosis: `clients.kafka`.
const kafkaBrokerSchema = z.strictObject({
    /** broker.id. */
    id: z.int().min(0, "a broker.id is 0 or more"),
    /** The broker's listener host (the gate bootstraps from host:port); also the SSH host unless sshHost. */
    host: hostName,
    sshHost: hostName.optional(),
    /** The broker host's SSH host key; default: from zkmigrate:sshKnownHosts. */
    hostKey: hostKey.optional(),
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
    /** A client properties file on each broker host for a SASL/SSL listener: the gate's tools get `--command-config <file>`. */
    commandConfig: absPath.optional(),
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

export const mitosisSchema = z.strictObject({
    name: z.string(),
    procedure: z.literal("mitosis"),
    phase: phaseOf(MITOSIS_PHASES, "mitosis"),
    ...sourceAndTarget,
    /** The operator's statement that the target ensemble holds no data (mitosis needs an empty target). */
    targetEmpty: z.boolean().default(false),
    /** Targets that join the source; the rest stay dormant. Default: the first min(m, n-1) targets. */
    activeTargets: z.array(myid).optional(),
    /** A znode count at or below which a running target counts as empty (preflight). */
    emptyTargetMaxZnodes: z.int().min(0).default(5),
    /** The current leader, when it cannot be read with `srvr` from where pulumi runs. */
    leader: myid.optional(),
    quorumListenOnAllIPs: z.boolean().default(false),
    /**
     * How memberships change: `restart` (the seed's procedure: every membership change is a rolling
     * restart) or `reconfig` (ZooKeeper >= 3.5.3 with reconfigEnabled=true: the targets join and
     * leave by `reconfig -add/-remove`, the sources never restart; src/procedures/mitosis-reconfig.ts).
     */
    membershipChange: z.enum(["restart", "reconfig"]).default("restart"),
    allowSingleServer: z.boolean().default(false),
    /**
     * How the targets join the source (issue 13): `observer` (the default, see JOIN_AS_DEFAULT:
     * they never vote nor lead, the sources never restart; ZooKeeper >= 3.3) or `voter` (the
     * seed's procedure, with dormant targets).
     */
    joinAs: z.enum(["voter", "observer"]).optional(),
    /** The split's dead man's switch: seconds from the split's `pulumi up` until a target whose restart did not come lifts its firewall (gates.ts). */
    splitDeadmanSeconds: z.int().optional(),
    clients: mitosisClientsSchema.prefault({}),
    ...hostOverrides,
});
type MitosisInput = z.output<typeof mitosisSchema>;

export interface KafkaConfig {
    brokers: KafkaBroker[];
    settings: KafkaSettings;
    /** The controller as configured (otherwise read from /controller at preview). */
    controller?: number;
}

/**
 * The join when `joinAs` is unset: the observer join, the safest every source supports (observers
 * exist from ZooKeeper 3.3). Observers count in no
 * quorum and never lead: the sources' quorum never changes, they never restart nor elect, there is
 * no split-brain window and no dormant target. The seed's voter join stays available as
 * `joinAs: voter`. A stack mid-migration whose targets joined as voters (before this default) is
 * never switched silently: joinIssues refuses its preview, naming the line to add.
 */
export const JOIN_AS_DEFAULT: JoinAs = "observer";
export type JoinAs = "voter" | "observer";

export type MitosisConfig = EnsembleBase &
    Pick<MitosisInput, "source" | "target" | "targetEmpty" | "emptyTargetMaxZnodes" | "quorumListenOnAllIPs"> & {
        procedure: "mitosis";
        /** How the targets join (`joinAs`, default JOIN_AS_DEFAULT). */
        joinAs: JoinAs;
        /** Whether `joinAs` was set in the config (an unset key on a voter join mid-migration is refused). */
        joinAsSet?: boolean;
        /** `activeTargets` as configured (the voter join's; refused with observers). */
        activeTargetsSet?: boolean;
        /** T': the targets that join the joint ensemble. */
        active: ServerId[];
        /** Targets kept stopped until the split. */
        dormant: ServerId[];
        /** The chroot of the new connect string (default: `chroot`). */
        newChroot?: string;
        allowChrootChange: boolean;
        /** Kafka brokers moved in the `clients` phase. */
        kafka?: KafkaConfig;
        /** restart (default) or reconfig: which room plans it (src/procedures/registry.ts). */
        membershipChange: "restart" | "reconfig";
        /** Set by the loader when zkmigrate:reconfigAuth is configured: the reconfig steps send it. */
        reconfigAuth?: boolean;
        /** The split's dead man's switch bound, when configured (default: gates.ts defaultDeadmanSeconds). */
        splitDeadmanSeconds?: number;
    };

function resolve(e: MitosisInput, index: number, d: HostDefaults): MitosisConfig {
    // S must stay a strict majority of the joint ensemble S+T', so that the source keeps serving on
    // its own when the firewall splits the targets off: |T'| <= n-1.
    const joinAs = e.joinAs ?? JOIN_AS_DEFAULT;
    const defaultActive = e.target.slice(0, Math.max(0, Math.min(e.target.length, e.source.length - 1))).map((s) => s.id);
    // Observers count in no quorum: every target joins, none stays dormant.
    const active = joinAs === "observer" ? e.target.map((t) => t.id) : (e.activeTargets ?? defaultActive);
    const k = e.clients.kafka;
    return {
        ...resolveBase(e, index, d),
        chroot: e.clients.chroot,
        leader: e.leader,
        procedure: "mitosis",
        joinAs,
        joinAsSet: e.joinAs !== undefined,
        activeTargetsSet: e.activeTargets !== undefined,
        source: e.source,
        target: e.target,
        active,
        dormant: e.target.map((s) => s.id).filter((id) => !active.includes(id)),
        targetEmpty: e.targetEmpty,
        emptyTargetMaxZnodes: e.emptyTargetMaxZnodes,
        quorumListenOnAllIPs: e.quorumListenOnAllIPs,
        membershipChange: e.membershipChange,
        newChroot: e.clients.newChroot,
        allowChrootChange: e.clients.allowChrootChange,
        ...(e.splitDeadmanSeconds !== undefined ? { splitDeadmanSeconds: e.splitDeadmanSeconds } : {}),
        kafka: k
            ? {
                  brokers: k.brokers,
                  controller: k.controller,
                  settings: {
                      serverProperties: k.serverProperties,
                      binDir: k.binDir,
                      port: k.port,
                      service: k.service,
                      healthTimeoutSeconds: k.healthTimeoutSeconds,
                      spacingSeconds: k.spacingSeconds,
                      allowChrootChange: e.clients.allowChrootChange,
                      ...(k.commandConfig ? { commandConfig: k.commandConfig } : {}),
                  },
              }
            : undefined,
    };
}

const groups = (e: MitosisConfig): [string, ServerSpec[]][] => [
    ["source", e.source],
    ["target", e.target],
];

export function validate(e: MitosisConfig): ConfigIssue[] {
    const issues = duplicateIds(e, groups(e));
    const n = e.source.length;
    for (const [group, count] of [
        ["source", n],
        ["target", e.target.length],
    ] as const) {
        const i = ensembleSizeIssue(e, group, count);
        if (i) issues.push(i);
    }
    // A host in both the source and the target: src/config/rules.ts (hosts compared as the resolver reads them).
    if (!e.targetEmpty) {
        issues.push({
            path: ensemblePath(e, ".targetEmpty"),
            reason: "mitosis needs an empty target ensemble (its data is replaced by the source's); set targetEmpty: true once it is, or use block & copy",
        });
    }
    if (e.splitDeadmanSeconds !== undefined) {
        const reason = deadmanIssue(e.splitDeadmanSeconds, e.host);
        if (reason) issues.push({ path: ensemblePath(e, ".splitDeadmanSeconds"), reason });
    }
    if (e.joinAs === "observer") {
        // Observers never vote: the source's quorum never changes, so every target joins.
        if (e.activeTargetsSet) {
            const how = e.joinAsSet ? "joinAs: observer" : "joinAs is unset, so the targets join as observers (the default), which";
            issues.push({
                path: ensemblePath(e, ".activeTargets"),
                reason: `${how} joins every target (observers count in no quorum, none stays dormant); activeTargets belongs to the voter join: set joinAs: voter to keep dormant targets, or drop activeTargets`,
            });
        }
        issues.push(...leaderIssue(e, [...e.source, ...e.target]));
        issues.push(...validateMitosisClients(e));
        return issues;
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
    issues.push(...leaderIssue(e, [...e.source, ...e.target]));
    issues.push(...validateMitosisClients(e));
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
    const sshHosts = new Map<string, number>();
    k.brokers.forEach((b, i) => {
        const seenId = ids.get(b.id);
        if (seenId !== undefined) {
            issues.push({ path: ensemblePath(e, `.clients.kafka.brokers[${i}].id`), reason: `broker.id ${b.id} is used twice (also clients.kafka.brokers[${seenId}])` });
        } else ids.set(b.id, i);
        const seenHost = hosts.get(canonicalHost(b.host));
        const ssh = canonicalHost(b.sshHost ?? b.host);
        if (seenHost !== undefined) {
            issues.push({ path: ensemblePath(e, `.clients.kafka.brokers[${i}].host`), reason: `host ${b.host} is listed twice (also clients.kafka.brokers[${seenHost}])` });
        } else if (sshHosts.has(ssh)) {
            // One machine, two brokers: they would share server.properties and the listener port.
            issues.push({
                path: ensemblePath(e, `.clients.kafka.brokers[${i}].${b.sshHost !== undefined ? "sshHost" : "host"}`),
                reason: `SSH host ${b.sshHost ?? b.host} is also the SSH host of clients.kafka.brokers[${sshHosts.get(ssh)}]: two brokers on one machine would share server.properties and the listener port`,
            });
        }
        if (seenHost === undefined) hosts.set(canonicalHost(b.host), i);
        if (!sshHosts.has(ssh)) sshHosts.set(ssh, i);
    });
    if (k.controller !== undefined && !ids.has(k.controller)) {
        issues.push({ path: ensemblePath(e, ".clients.kafka.controller"), reason: `broker.id ${k.controller} is not one of clients.kafka.brokers` });
    }
    return issues;
}

/** The phases in which the targets run with the source (or its history, unsplit): the join cannot change there. */
const JOINED_PHASES: readonly string[] = ["joined", "clients", "prepared", "split", "source-restarted"];

/**
 * How the applied record's targets joined: recorded, or read from what the servers run (an
 * observer line; a voter line of the other side), or, in records without either, a voter join
 * (the only one before joinAs). Undefined where the two joins run the same (`source-restarted`).
 */
export function appliedJoin(e: MitosisConfig, a: AppliedEnsemble): JoinAs | undefined {
    if (a.joinAs) return a.joinAs;
    if (!JOINED_PHASES.includes(a.phase)) return undefined;
    const rec = a.running;
    if (!rec) return a.phase === "source-restarted" ? undefined : "voter";
    const sources = new Set(e.source.map((s) => s.id));
    const targets = new Set(e.target.map((t) => t.id));
    let voter = false;
    for (const [id, f] of Object.entries(rec)) {
        if (f.membership.members.some((m) => m.observer)) return "observer";
        const other = sources.has(Number(id)) ? targets : targets.has(Number(id)) ? sources : new Set<number>();
        if (f.running && f.membership.members.some((m) => other.has(m.id))) voter = true;
    }
    return voter ? "voter" : undefined;
}

/**
 * The join never changes mid-migration: the targets run one join's memberships, and the other's
 * plan would restart servers from a state it does not model. An unset `joinAs` (now observers)
 * on an ensemble whose targets joined as voters is refused with the line to add.
 */
export function joinIssues(e: MitosisConfig, a: AppliedEnsemble | undefined): ConfigIssue[] {
    if (!a || !JOINED_PHASES.includes(a.phase)) return [];
    const change = a.membershipChange ?? "restart";
    if (change !== e.membershipChange) {
        // Checked first: the other room's plan starts from states its table does not have.
        return [
            {
                path: ensemblePath(e, ".membershipChange"),
                reason:
                    `the migration runs with membershipChange: ${change} (applied phase "${a.phase}"); it cannot change mid-migration ` +
                    `(${change === "reconfig" ? "the sources already changed their membership by reconfig, a restart plan would restart them from a membership it does not model" : "the sources run the joint membership from their restarts, a reconfig plan would take them for reconfigured"}): ` +
                    `set membershipChange: ${change} to finish as it started, or step back to "separate" (the abort) first`,
            },
        ];
    }
    const was = appliedJoin(e, a);
    if (was === undefined || was === e.joinAs) return [];
    const reason = e.joinAsSet
        ? `the targets joined as ${was}s (applied phase "${a.phase}"); the join cannot change mid-migration: set joinAs: ${was}, or step back to "separate" (the abort) first`
        : `the targets joined as ${was}s (applied phase "${a.phase}"); joinAs is unset, so this ensemble would plan the default join (${JOIN_AS_DEFAULT}), ` +
          `which would change what the servers run mid-migration: set joinAs: ${was} to finish this migration as it started, or step back to "separate" (the abort) first`;
    return [{ path: ensemblePath(e, ".joinAs"), reason }];
}

// ---------------------------------------------------------------------------------------------
// The phase table (DESIGN.md "Procedure mitosis"): per phase, the membership each role has
// written in its zoo.cfg and runs with (S, T, or the joint S+T'), whether the dormant targets run,
// whose data is wiped before it starts, whether the firewall splits T from S, where the migrating
// clients point, whether the preflight runs, and how the restarts of a step into the phase group.

type Members = "S" | "T" | "S+T'";
/** How the restarts of a step into the phase are ordered. */
type Grouping =
    /** one at a time: targets first (dormant ones stop first), then followers, the leader last */
    | "rolling"
    /** all targets at once (dormant ones start): behind the firewall they elect their own leader */
    | "targets-together"
    /** sources without slack: the leader first, then it counts acks in S only */
    | "leader-first";

interface MitosisRow {
    /** The membership each role runs with (its zoo.cfg holds it: configs are written only by restarts). */
    running: { source: Members; active: Members; dormant: Members };
    dormantRuns: boolean;
    wipe: { active: boolean; dormant: boolean };
    firewall: boolean;
    clients: "old" | "new";
    preflight: boolean;
    restarts: Grouping;
}

export const MITOSIS_TABLE: Record<MitosisPhase, MitosisRow> = {
    separate: {
        running: { source: "S", active: "T", dormant: "T" },
        dormantRuns: true,
        // Only an abort of the join restarts targets here: they held the source's data, and leave it.
        wipe: { active: true, dormant: true },
        firewall: false,
        clients: "old",
        preflight: true,
        restarts: "rolling",
    },
    joined: {
        running: { source: "S+T'", active: "S+T'", dormant: "T" },
        dormantRuns: false,
        // Active targets are wiped while they run the joint membership (the same restart text from
        // `joined` to `prepared`, so only the join itself restarts them); never at the split.
        wipe: { active: true, dormant: false },
        firewall: false,
        clients: "old",
        preflight: false,
        restarts: "rolling",
    },
    clients: {
        running: { source: "S+T'", active: "S+T'", dormant: "T" },
        dormantRuns: false,
        wipe: { active: true, dormant: false },
        firewall: false,
        clients: "new",
        preflight: false,
        restarts: "rolling",
    },
    prepared: {
        running: { source: "S+T'", active: "S+T'", dormant: "T" },
        dormantRuns: false,
        wipe: { active: true, dormant: false },
        firewall: false,
        clients: "new",
        preflight: true,
        restarts: "rolling",
    },
    split: {
        running: { source: "S+T'", active: "T", dormant: "T" },
        dormantRuns: true,
        // Dormant targets are wiped when they first start into the target ensemble.
        wipe: { active: false, dormant: true },
        firewall: true,
        clients: "new",
        preflight: false,
        restarts: "targets-together",
    },
    "source-restarted": {
        running: { source: "S", active: "T", dormant: "T" },
        dormantRuns: true,
        wipe: { active: false, dormant: true },
        firewall: true,
        clients: "new",
        preflight: false,
        restarts: "leader-first",
    },
    done: {
        running: { source: "S", active: "T", dormant: "T" },
        dormantRuns: true,
        wipe: { active: false, dormant: true },
        firewall: false,
        clients: "new",
        preflight: false,
        restarts: "rolling",
    },
};

/** Stepping back one phase (the key is the phase stepped back from). */
export const BACK: Record<Exclude<MitosisPhase, "separate">, BackStep> = {
    joined: { allowed: true, reason: "an aborted join: the sources drop the targets first, then the targets leave" },
    clients: { allowed: true, reason: "the clients return to the source's addresses while T' still follows the source leader" },
    prepared: { allowed: true, reason: "only read-only checks ran; nothing changes on a host" },
    split: { allowed: true, reason: "the safety check decides: the targets would rejoin behind the firewall" },
    "source-restarted": { allowed: true, reason: "the safety check decides: the sources would rejoin a split-off target ensemble" },
    done: { allowed: true, reason: "the firewall goes back up while the sources run S" },
};

export function mitosisDesired(e: MitosisConfig, phase: string = e.phase): DesiredState {
    phaseIndexIn("mitosis", MITOSIS_PHASES, phase);
    const row = MITOSIS_TABLE[phase as MitosisPhase];
    const active = e.target.filter((t) => e.active.includes(t.id));
    const m = (servers: ServerSpec[]) => hostMembership(servers, e.ports, e.quorumListenOnAllIPs);
    const memberships: Record<Members, Membership> = { S: m(e.source), T: m(e.target), "S+T'": m([...e.source, ...active]) };

    const server = (s: ServerSpec, role: "source" | "target", running: Members, runs: boolean, dormant: boolean, wipe: boolean): ServerState => ({
        id: s.id,
        role,
        host: s.host,
        sshHost: s.sshHost,
        hostKey: s.hostKey,
        location: "host",
        running: runs,
        written: memberships[running],
        runningWith: memberships[running],
        dormant,
        wipeDataOnStart: wipe,
        decommissioned: false,
    });
    const servers: ServerState[] = [
        ...e.source.map((s) => server(s, "source", row.running.source, true, false, false)),
        ...e.target.map((t) =>
            e.active.includes(t.id)
                ? server(t, "target", row.running.active, true, false, row.wipe.active)
                : server(t, "target", row.running.dormant, row.dormantRuns, !row.dormantRuns, row.wipe.dormant),
        ),
    ];

    // The split: each target host rejects TCP to and from every source host until the sources run
    // their S-only membership (they still list the active targets until then).
    const firewall: FirewallSplit[] = row.firewall ? e.target.map((t) => ({ id: t.id, host: t.host, peers: e.source.map((s) => s.host) })) : [];

    const old = serversConnect(e.source, e.ports.client, e.chroot);
    const next = serversConnect(e.target, e.ports.client, e.newChroot ?? e.chroot);
    const current = row.clients === "new" ? next : old;
    // Kafka brokers move with the clients: from `clients` on they run with the new connect string
    // (restarted once, in that phase; later phases leave them alone).
    const kafka = e.kafka ? { brokers: e.kafka.brokers, settings: e.kafka.settings, connect: current } : undefined;
    return {
        ensemble: e.name,
        procedure: "mitosis",
        phase,
        servers,
        firewall,
        clients: { old, next, current, ...(kafka ? { kafka } : {}) },
        preflight: row.preflight,
    };
}

export function clientGroups(d: DesiredState): ClientGroup[] {
    // The shared ensemble's other users stay on the source; the migrating clients follow `current`.
    return [
        { name: "source-users", connect: d.clients.old },
        { name: "migrating", connect: d.clients.current },
    ];
}

// ---------------------------------------------------------------------------------------------
// Planning one step

const idx = (p: string) => phaseIndexIn("mitosis", MITOSIS_PHASES, p);

/**
 * Orders the servers that restart, by the grouping of the phase stepped into (forward), or, back
 * from `joined`, the sources first: they drop the targets from their membership before the
 * targets leave, so that no source can follow a target ensemble that re-forms with their data.
 */
export function mitosisRestartGroups(e: MitosisConfig, from: DesiredState, to: DesiredState, leader: PlanContext<MitosisConfig>["leader"], warnings: string[]): RestartGroup[] {
    const changed = changedServers(from, to);
    if (changed.length === 0) return [];
    const forward = MITOSIS_PHASES.indexOf(to.phase as MitosisPhase) > MITOSIS_PHASES.indexOf(from.phase as MitosisPhase);
    const grouping = forward ? (MITOSIS_TABLE[to.phase as MitosisPhase]?.restarts ?? "rolling") : "rolling";
    if (grouping === "targets-together") {
        return [...targetsTogether(e, changed.filter((s) => s.role === "target")), ...changed.filter((s) => s.role !== "target").map((s) => ({ ids: [s.id], reason: "source" }))];
    }
    if (grouping === "leader-first" && noSlack(e, from, to) && changed.every((s) => s.role === "source")) {
        return sourcesWithoutSlack(e, changed, leader, warnings);
    }
    if (aborting(from, to)) {
        // The abort of a join: the targets leave first, together (one at a time none could serve:
        // an empty target alone is no majority of T), and start empty on T. The sources then run
        // S+T' with the targets gone, like after a split: without slack the leader goes first.
        const targets = changed.filter((s) => s.role === "target").map((s) => s.id);
        const sources = changed.filter((s) => s.role === "source");
        const first: RestartGroup[] = targets.length > 0 ? [{ ids: targets, reason: "targets leave together and start empty on T" }] : [];
        if (sources.length === 0) return first;
        if (2 * (e.source.length - 1) <= e.source.length + e.active.length) return [...first, ...sourcesWithoutSlack(e, sources, leader, warnings)];
        return [...first, ...rolling(e, sources, leader, warnings)];
    }
    return rolling(e, changed, leader, warnings);
}

/** One at a time: dormant targets stop first, then targets, followers, the leader last. */
function rolling(e: MitosisConfig, changed: ServerState[], leader: PlanContext<MitosisConfig>["leader"], warnings: string[]): RestartGroup[] {
    const leaders = new Set(leader.leaders);
    if (!leader.known && changed.some((s) => s.role === "source")) warnings.push(unknownLeaderWarning(e, leader));
    const rank = (s: ServerState): number => {
        if (s.role === "target") return s.running ? 1 : 0; // dormant stops before joins
        if (leaders.has(s.id)) return 3;
        return 2;
    };
    const ordered = [...changed].sort((a, b) => rank(a) - rank(b) || a.id - b.id);
    return ordered.map((s) => ({
        ids: [s.id],
        reason: s.role === "target" ? (s.running ? "target" : "dormant target stops") : leaders.has(s.id) ? "leader last" : leader.known ? "follower" : "fixed order",
    }));
}

const aborting = (from: DesiredState, to: DesiredState) => from.phase === "joined" && to.phase === "separate";

/**
 * The split's target restarts. The active targets hold the data; dormant ones start empty. Any
 * majority of T must contain a target with the data (the election prefers the highest zxid, so
 * such a group elects a leader with the data): the dormant targets start with the active ones
 * while they are no majority of T, else only as many as make a majority with them, and the rest
 * once that leader exists.
 */
export function targetsTogether(e: MitosisConfig, targets: ServerState[]): RestartGroup[] {
    if (targets.length === 0) return [];
    const active = targets.filter((s) => e.active.includes(s.id)).map((s) => s.id);
    const dormant = targets.filter((s) => !e.active.includes(s.id)).map((s) => s.id);
    const quorum = Math.floor(e.target.length / 2) + 1;
    if (dormant.length < quorum) {
        return [{ ids: [...active, ...dormant], reason: "all targets at once, dormant ones included: behind the firewall they elect their own leader" }];
    }
    const k = Math.max(0, quorum - active.length);
    return [
        { ids: [...active, ...dormant.slice(0, k)], reason: `the active targets with ${k} dormant one(s): a majority of T, and every majority of it holds the data` },
        { ids: dormant.slice(k), reason: "the other dormant targets, once the target leader with the data serves" },
    ];
}

/**
 * `split` -> `source-restarted` without slack: the sources run S+T' with T' cut off, so any source
 * that stops takes the quorum with it, as long as the leader counts acks in S+T'. A leader counts
 * them in its own membership only: once the leader runs S-only, each further restart leaves n-1 of
 * n and the source keeps serving. So the leader goes first, not last. The highest myid must be that
 * leader (with equal zxids the sources elect the highest myid): when the current leader is another
 * source, it restarts first, the election makes the highest myid leader, and that one restarts
 * next. Every quorum loss is then a leader restart, one in the usual case.
 */
function sourcesWithoutSlack(e: MitosisConfig, changed: ServerState[], leader: PlanContext<MitosisConfig>["leader"], warnings: string[]): RestartGroup[] {
    const ids = changed.map((s) => s.id);
    const highest = Math.max(...ids);
    const current = leader.known ? leader.leaders.find((id) => ids.includes(id)) : undefined;
    if (!leader.known) {
        warnings.push(
            `${e.name}: the current leader could not be read with srvr from here (${leader.detail ?? "unknown"}); ` +
                `restarting the highest myid (${highest}) first, as the leader usually is after the split ` +
                "(or set the ensemble's `leader` in the config)",
        );
    }
    const first: RestartGroup[] =
        current !== undefined && current !== highest
            ? [
                  { ids: [current], reason: "leader first: the election after it makes the highest myid leader" },
                  { ids: [highest], reason: "the new leader: back on S only, it counts acks in S" },
              ]
            : [{ ids: [highest], reason: current === highest ? "leader first: back on S only, it counts acks in S" : "highest myid first (leader unknown)" }];
    const done = new Set(first.flatMap((g) => g.ids));
    const rest = ids.filter((id) => !done.has(id)).sort((a, b) => b - a);
    return [...first, ...rest.map((id) => ({ ids: [id], reason: "follower: the leader counts S only, n-1 of n keep the quorum" }))];
}

/**
 * After the split (or with the targets gone in an abort) the sources still run the joint
 * membership: n sources of n+|T'| voters. When n-1 sources are no majority of that, a source
 * restart costs the source its quorum for the length of the restart, until the leader runs S.
 */
function noSlack(e: MitosisConfig, from: DesiredState, to: DesiredState): boolean {
    const sourcesLeave = (from.phase === "split" && to.phase === "source-restarted") || aborting(from, to);
    return sourcesLeave && 2 * (e.source.length - 1) <= e.source.length + e.active.length;
}

function sourceRestartWindows(e: MitosisConfig, from: DesiredState, to: DesiredState, leaderKnown: boolean): Window[] {
    if (!noSlack(e, from, to)) return [];
    const n = e.source.length;
    const voters = n + e.active.length;
    // Every client group on the sources then: the source's other users, and in an abort the
    // migrating clients too (they have not moved yet).
    const groups = aborting(from, to) ? ["source-users", "migrating"] : ["source-users"];
    return groups.map((group) => ({
        group,
        reason:
            `the sources run the joint membership (${n} of ${voters} voters, the targets ${aborting(from, to) ? "gone" : "cut off"}), ` +
            `so a source restart leaves ${n - 1} of ${voters}: the source has no quorum until the restarted server is back ` +
            "(seconds; sessions survive if their timeout is longer). The leader restarts first: back on its S-only " +
            "membership it counts acks in S, so the later restarts keep the quorum" +
            (leaderKnown ? "" : "; the leader is unknown, so the window covers every source restart"),
        risk: "the clients' writes wait (or fail after their session timeout) while the leader restarts",
    }));
}

/**
 * The voter join: after k sources run the joint membership S+T', {those k + T'} can be a majority
 * of S+T' while the n-k others are a majority of S, whenever (n-|T'|)/2 < k < n/2. ZooKeeper only
 * elects such a second leader inside an election (the source leader crashes or is cut off while
 * the roll is half done); the seed's procedure accepts it, and so do we, declared by name. The
 * observer join (no vote for the targets) has no such window.
 */
function joinSplitBrainWindow(e: MitosisConfig, from: DesiredState, to: DesiredState): Window | undefined {
    const n = e.source.length;
    const t = e.active.length;
    const joining = from.phase === "separate" && to.phase === "joined";
    if (!joining) return undefined;
    let exists = false;
    for (let k = 1; k < n; k++) if (n - t < 2 * k && 2 * k < n) exists = true;
    if (!exists) return undefined;
    return {
        group: "join-split-brain",
        kind: "split-brain",
        reason:
            `while the sources roll onto S+T' (${n} sources, ${t} active targets), the sources already on S+T' with the targets are a majority of S+T' ` +
            "and the others a majority of S: each side could elect its own leader if an election happens before the roll ends",
        risk: "only an election inside the window (the source leader crashing or cut off mid-roll) makes two leaders; writes acknowledged by the smaller history would be lost when they merge. Fewer active targets (|T'| = 1) or the observer join avoid it",
    };
}

/** The split: the migrating clients lose their quorum from the firewall until the targets elected their own leader. */
export const SPLIT_WINDOW: Window = {
    group: "migrating",
    reason: "the split: from the firewall until all targets have restarted and elected their own leader",
};

/**
 * The split seen from the source: in the joint ensemble the targets win elections (equal zxids,
 * higher myids), so the source's leader is often a target when the firewall goes up; the sources
 * then elect one of their own (n of n+|T'| voters, a majority). Declared so that the preview says
 * it and the rehearsal measures it (splitSourceMaxGapMs).
 */
export const SPLIT_SOURCE_WINDOW: Window = {
    group: "source-users",
    kind: "election",
    reason: "the split cuts the targets off: when the source's leader is a target (they win the joint ensemble's elections with their higher myids), the sources elect a leader of their own",
    risk: "one election's write gap on the source (the rehearsal's splitSourceMaxGapMs); no quorum is lost: the sources are a majority of S+T'",
};

/**
 * Before anything changes: every server reaches every other one on the client and election ports
 * (the peer port listens only on a leader, so it cannot be checked from every host). The targets
 * do not run yet (they are empty and join later): for them a refused connection proves the path.
 * Targets also get the firewall's prerequisites and prove they are empty.
 */
export function preflightOf(e: MitosisConfig, s: ServerState, phase: MitosisPhase): PreflightCheck {
    const target = s.role === "target";
    if (phase === "prepared") {
        // The split's preflight: the firewall's prerequisites and no leftover chain on every
        // target, and the paths the split cuts (and the targets' restart needs) still open.
        const running = (id: number) => !e.dormant.includes(id);
        const all = [...e.source, ...e.target].filter((x) => x.id !== s.id);
        return {
            reach: all.flatMap((x) => [
                { address: x.host, port: e.ports.client, listening: running(x.id) },
                { address: x.host, port: e.ports.election, listening: running(x.id) },
            ]),
            requireCommands: ["timeout", ...(target ? ["iptables"] : [])],
            ...(target ? { noLeftoverSplit: true } : {}),
        };
    }
    const all = [...e.source.map((x) => ({ ...x, listening: true })), ...e.target.map((x) => ({ ...x, listening: false }))].filter((x) => x.id !== s.id);
    return {
        reach: all.flatMap((x) => [
            { address: x.host, port: e.ports.client, listening: x.listening },
            { address: x.host, port: e.ports.election, listening: x.listening },
        ]),
        requireCommands: ["timeout", ...(target ? ["iptables"] : [])],
        // Every later phase changes the membership by rolling restart (ZOOKEEPER-3829/3830).
        versionGuard: true,
        ...(target ? { noLeftoverSplit: true, emptyTarget: { maxZnodes: e.emptyTargetMaxZnodes } } : {}),
    };
}

function plan(ctx: PlanContext<MitosisConfig>): RoomPlan {
    const { e, from, to } = ctx;
    const warnings: string[] = [];
    const restartOrder = mitosisRestartGroups(e, from, to, ctx.leader, warnings);
    const windows: Window[] = [];
    const applied = to.firewall.some((f) => !from.firewall.some((x) => x.id === f.id));
    const isSplit = applied && restartOrder.some((g) => g.ids.length > 1);
    if (isSplit) windows.push(SPLIT_WINDOW, SPLIT_SOURCE_WINDOW);
    const sourceWindows = sourceRestartWindows(e, from, to, ctx.leader.known);
    if (sourceWindows.length > 0) {
        windows.push(...sourceWindows);
        warnings.push(`${e.name}: ${sourceWindows[0].reason}`);
    }
    const joinWindow = joinSplitBrainWindow(e, from, to);
    if (joinWindow) {
        windows.push(joinWindow);
        warnings.push(`${e.name}: declared split-brain window: ${joinWindow.reason}`);
    }
    // The source window covers the leader's restart(s) only: later restarts must keep the quorum.
    const leaderGroups = new Set(restartOrder.filter((g) => /leader|highest/.test(g.reason) && g.ids.every((id) => e.source.some((s) => s.id === id))).map((g) => g));
    const roleOf = new Map(to.servers.map((s) => [s.id, s.role]));
    const backward = MITOSIS_PHASES.indexOf(to.phase as MitosisPhase) < MITOSIS_PHASES.indexOf(from.phase as MitosisPhase);
    const steps = hostSteps({
        ensemble: e.name,
        settings: e.host,
        spacingSeconds: e.spacingSeconds,
        from,
        to,
        groups: restartOrder,
        firewallWindows: isSplit ? [SPLIT_WINDOW, SPLIT_SOURCE_WINDOW] : [],
        groupWindows: (g) => [
            ...(g.ids.length > 1 && applied ? [SPLIT_WINDOW] : []),
            ...((!ctx.leader.known || leaderGroups.has(g)) && g.ids.some((id) => roleOf.get(id) === "source") ? sourceWindows : []),
            ...(joinWindow && g.ids.some((id) => roleOf.get(id) === "source") ? [joinWindow] : []),
        ],
        // Stepping back into a phase runs no preflight: its checks hold only on the way forward
        // (an aborted join's targets are not empty until their restart empties them).
        ...(backward ? {} : { preflight: (s: ServerState) => preflightOf(e, s, to.phase as MitosisPhase) }),
        deadmanSeconds: e.splitDeadmanSeconds,
    });
    const brokerOrder = kafkaSteps(ctx, steps, warnings);
    steps.push(...closingSteps(from, to, clientGroups));
    return { steps, restartOrder, windows, warnings, brokerOrder };
}

/** The Kafka brokers' steps of a mitosis plan (appended to `steps`), and their order. */
export function kafkaSteps(ctx: PlanContext<MitosisConfig>, steps: Step[], warnings: string[]): RoomPlan["brokerOrder"] {
    const { e, from, to } = ctx;
    let brokerOrder: RoomPlan["brokerOrder"];
    if (to.clients.kafka) {
        const info = e.kafka?.controller !== undefined ? { controller: e.kafka.controller, detail: "clients.kafka.controller" } : (ctx.kafka ?? { detail: "not probed" });
        const brokers = brokerSteps(from, to, info, declaredIds(steps));
        steps.push(...brokers.steps);
        brokerOrder = { ids: brokers.order.brokers.map((b) => b.id), reason: brokers.order.reason, ...(brokers.order.warning ? { warning: brokers.order.warning } : {}) };
        // The order's warning matters only where the brokers restart.
        if (brokers.order.warning && brokers.moves) warnings.push(`${e.name}: ${brokers.order.warning}`);
    }
    return brokerOrder;
}

export const mitosis: Procedure<MitosisConfig> = {
    name: "mitosis",
    phases: MITOSIS_PHASES,
    componentType: "zkmigrate:mitosis:Ensemble",
    schema: mitosisSchema,
    managesServers: true,
    back: BACK,
    removal: { phases: ["separate", "done"], otherwise: "its resources' deletes would run mid-migration (the firewall's delete lifts the split while the sources may still list the targets): step it back to `separate`, one phase per update (the abort), or forward to `done`, then remove it" },
    resolve: resolve as Procedure<MitosisConfig>["resolve"],
    validate,
    groups,
    // Every server (the preflight reads each), and the Kafka brokers it restarts.
    sshHosts: (e) => [...groupHosts(groups(e)), ...(e.kafka?.brokers ?? []).map((spec, i) => ({ path: `.clients.kafka.brokers[${i}]`, spec }))],
    desired: (e, at) => mitosisDesired(e, at.phase),
    clientGroups,
    transitionIssues: (e, a) => joinIssues(e, a),
    appliedExtra: (e) => ({ cutover: [], joinAs: e.joinAs, membershipChange: e.membershipChange }),
    plan,
};
