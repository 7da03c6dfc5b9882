// The plan's vocabulary (leaf types): the steps one update takes. `MigrationPlan.steps` is the
// only input of the components (each step becomes one resource, its `after` the resource's
// dependsOn), and the safety check simulates the same steps' effects in the same order.
import type { ConnectString } from "./format/connect-string";
import type { BlockCopySpec, HostSettings, KafkaBroker, KafkaSettings, KubernetesServer, KubernetesState, MemberLine, Membership, RestartGroup, ServerId } from "./types";

/**
 * A known stretch of a plan that the procedure declares by name instead of avoiding it: a client
 * group without a quorum (`no-quorum`, the default), or two disjoint groups of servers that could
 * each elect a leader (`split-brain`: ZooKeeper's own rules allow it; it needs an election inside
 * the window, e.g. a leader crash). The safety check refuses every such state that no declared
 * window covers, and records the plan steps in which each window is open.
 */
export interface Window {
    /** The client group that may go unserved, or the window's name (split-brain windows). */
    group: string;
    reason: string;
    /**
     * no-quorum: the group may go unserved (excuses the check's "reach no server in a quorum");
     * split-brain: two disjoint quorums may exist (excuses that finding); election: an expected
     * leader election inside a quorum that stays, declared for the preview only (excuses nothing).
     */
    kind?: "no-quorum" | "split-brain" | "election";
    /** What could go wrong inside the window, for the preview. */
    risk?: string;
    /** Filled by the safety check: the plan's event numbers in which the window was open. */
    steps?: number[];
}

/** A client group that must keep being served, and where it connects. */
export interface ClientGroup {
    name: string;
    connect: ConnectString;
}

/** What pulumi could read of the servers' roles, with `srvr`, from where it runs. */
export interface LeaderInfo {
    /** Servers that answered `Mode: leader`. */
    leaders: ServerId[];
    /** False when no server could be asked (fixed order then). */
    known: boolean;
    /** Why the leader is unknown, for the warning. */
    detail?: string;
    /**
     * The release each server that answered `srvr` runs (`3.9.5`), by myid; a server missing here
     * did not answer. Read for the version guard (src/version-guard.ts).
     */
    versions?: Record<ServerId, string>;
}

export const UNKNOWN_LEADER: LeaderInfo = { leaders: [], known: false, detail: "not probed" };

/** Kafka's controller as read at preview (or configured), so that it restarts last. */
export interface KafkaControllerInfo {
    /** broker.id of the controller, when known. */
    controller?: number;
    /** Where it came from, or why it is unknown (printed in the preview). */
    detail: string;
}

/** Where a step runs: a host reached over SSH, or (no target) where `pulumi up` runs. */
export interface HostTarget {
    host: string;
    sshHost?: string;
    /**
     * The host key the connection accepts (`<type> <base64>`, connection.hostKey); the config
     * loader refuses a host without one unless `sshHostKeyCheck` is false.
     */
    hostKey?: string;
}

/** The target of a host as the config lists it (host, sshHost, hostKey). */
export function hostTarget(s: { host: string; sshHost?: string; hostKey?: string }): HostTarget {
    return { host: s.host, ...(s.sshHost ? { sshHost: s.sshHost } : {}), ...(s.hostKey ? { hostKey: s.hostKey } : {}) };
}

/** Read-only checks of one host before anything is written. */
export interface PreflightCheck {
    /** Addresses that must accept TCP (with listening: false a refused connection passes too). */
    reach: { address: string; port: number; listening?: boolean }[];
    resolveNames?: string[];
    /** Waits up to this many seconds for the names to resolve and the addresses to answer before checking (Services just created). */
    settleSeconds?: number;
    requireCommands: string[];
    /** The firewall chain of this ensemble must not exist yet (a leftover split). */
    noLeftoverSplit?: boolean;
    /** The local server must be empty (at most maxZnodes znodes). */
    emptyTarget?: { maxZnodes: number };
    /**
     * The local server (when it answers `srvr`) must not run a release with a known bug that the
     * procedure's rolling membership changes trigger (src/versions.ts: ZOOKEEPER-3829/3830).
     */
    versionGuard?: boolean;
    /**
     * The observers the plan declares where this check runs (the observer join): the config may
     * hold their `:observer` lines, and `peerType=observer` when `observer` (this server is one).
     */
    observers?: { ids: ServerId[]; observer: boolean };
}

/**
 * The read-only gate of one host of a multi-host step (src/procedures/gates.ts): every host the
 * step changes must pass it before the step's first change anywhere. It runs on every attempt.
 */
export interface GateCheck {
    /** What the gate guards (printed by the script): e.g. "split: firewall and targets' restart". */
    guards: string;
    /** The local server must serve now (srvr answers with a Mode); false: it may be stopped (a dormant target). */
    serving: boolean;
    /** iptables (ip6tables for IPv6 peers) must be usable: the host gets the split's firewall. */
    firewallPeers?: string[];
    /** The dead man's switch must be armable here (setsid, flock; the host's clock agrees with the attempt's start). */
    deadman?: Deadman;
}

/**
 * The dead man's switch of the split on one target host (src/procedures/gates.ts): armed before
 * the firewall goes up, it lifts the firewall at the attempt's start + `seconds` unless the
 * host's restart committed the split first, or another target serves by then.
 */
/** The split's client fence of one running target (src/scripts/fence.ts). */
export interface Fence {
    /** Seconds after the attempt's start at which the fence lifts itself when no restart lifted it (the split's deadline). */
    seconds: number;
    /** The membership the server joins at the split (targetFingerprint): a server restarted into it already is left alone. */
    target: string;
}

/** The catch-up of one fenced target (src/scripts/fence.ts): after every fence, before any arm. */
export interface Catchup {
    /** The source servers' client addresses: the highest zxid among those that answer is what this server catches up to. */
    sources: { address: string; port: number }[];
    /** As Fence.target. */
    target: string;
    /** How long it may wait (default FENCE_WAIT_SECONDS). */
    waitSeconds?: number;
}

export interface Deadman {
    /** The bound: the switch fires this many seconds after the attempt started (splitDeadmanSeconds). */
    seconds: number;
    /** The last moment (seconds after the attempt started) at which a restart may still commit. */
    commitBySeconds: number;
    /** The other targets' client addresses: any of them serving when the switch fires keeps the rules. */
    partners: { address: string; port: number }[];
    /** How long the switch probes the partners before it lifts the rules. */
    probeSeconds: number;
}

/** One `pulumi up`: steps that must run on every attempt (gates, the switch's arming) carry it. */
export interface Attempt {
    /** Seconds since the epoch when the program ran for this update, on the machine that runs pulumi. */
    startedAt: number;
}

/**
 * What a step does to the running ensemble in this update, for the safety simulation and the
 * preview. A step without an effect changes nothing now (it adopts, or it is unchanged).
 * Consecutive steps with the same effect (a restart group, the Services) are one event.
 */
export type Effect =
    | { kind: "services-create" }
    | { kind: "firewall-apply"; ids: ServerId[]; windows: Window[] }
    /** `wiped`: the servers of the group whose data is moved aside before they start (they hold none then). */
    | { kind: "restart"; group: RestartGroup; windows: Window[]; wiped?: ServerId[] }
    | { kind: "cutover"; ids: ServerId[] }
    | { kind: "firewall-remove"; ids: ServerId[] }
    | { kind: "clients-switch"; group: string; to: ConnectString }
    | { kind: "broker-restart"; broker: number; connect: ConnectString; reason: string }
    | { kind: "copy"; mode: "full" | "incremental"; journal: boolean }
    | { kind: "clients-block"; hosts: string[] }
    | { kind: "clients-unblock"; hosts: string[] }
    | { kind: "clients-repoint"; to: ConnectString }
    /** Servers stopped together (the split of a reconfig mitosis: no target may start while another still runs the old membership). */
    | { kind: "stop"; ids: ServerId[]; reason: string; windows: Window[] }
    /**
     * A dynamic reconfig through server `through`: it commits through the current leader with a
     * quorum of the old and of the new configuration; every server following that leader then runs
     * the new membership without a restart (src/procedures/mitosis-reconfig.ts).
     */
    | { kind: "reconfig"; through: ServerId; add: MemberLine[]; remove: ServerId[]; windows: Window[] };

interface StepBase {
    /** Unique in the ensemble; the resource is named `<ensemble>-<id>`. */
    id: string;
    /** Ids of the steps this one waits for (the resource's dependsOn). */
    after: string[];
    /** What it changes in this update (absent: nothing). */
    effect?: Effect;
    /**
     * The step's command must not run in this update: it ignores changes of its command (a change
     * would re-run it). Every command step without an effect is frozen: nothing reaches a host
     * except a planned step.
     */
    frozen?: boolean;
}

/**
 * The steps. Kinds that carry `declare: false` are done by the engine (it deletes the firewall or
 * block resource, whose delete command lifts the split or starts the clients) or published as
 * outputs (the clients' new connect string), not declared as resources.
 */
export type Step = StepBase &
    (
        | { kind: "preflight"; target: HostTarget; server: ServerId; settings: HostSettings; ensemble: string; check: PreflightCheck }
        | {
              kind: "firewall";
              target: HostTarget;
              server: ServerId;
              ensemble: string;
              peers: string[];
              /** Where the split's dead man's switch keeps its state: the removal stops it and removes that (gates.ts). */
              settings?: HostSettings;
              /**
               * At the split, on a host whose split-arm armed the switch and put the rules up: the
               * step's create commits the split there (checks the switch and the rules) instead of
               * applying them again (gates.ts). Every restart of the split waits for every firewall.
               */
              commit?: true;
          }
        | { kind: "gate"; target: HostTarget; server: ServerId; settings: HostSettings; ensemble: string; gate: GateCheck }
        | { kind: "split-arm"; target: HostTarget; server: ServerId; settings: HostSettings; ensemble: string; peers: string[]; deadman: Deadman }
        /** The split's client fence on one running target (src/scripts/fence.ts): every catch-up waits for every fence, every arm for every catch-up. */
        | { kind: "split-fence"; target: HostTarget; server: ServerId; settings: HostSettings; ensemble: string; fence: Fence }
        | { kind: "split-catchup"; target: HostTarget; server: ServerId; settings: HostSettings; ensemble: string; catchup: Catchup }
        | {
              kind: "restart";
              target: HostTarget;
              server: ServerId;
              settings: HostSettings;
              /** The state the server runs in after the step: stopped, or running with `membership` (written by this step). */
              running: boolean;
              membership: Membership;
              /** What it runs before the step (the applied record): its config must hold this or `membership`. */
              before?: Membership;
              wipeData: boolean;
              spacingSeconds: number;
              /** The restart group (0-based) in this update's order, when the server restarts now. */
              group?: number;
              /**
               * A server of a reconfig mitosis: it (re)starts from this seed membership in a dynamic
               * config file of zkmigrate's, which ZooKeeper replaces with the committed one
               * (src/scripts/reconfig.ts). Absent: the membership is written to zoo.cfg as it is.
               */
              seed?: MemberLine[];
              /** The split fenced this server's client port (src/scripts/fence.ts): the restart lifts the fence once the old server stopped. */
              unfence?: { ensemble: string; target: string };
          }
        /** `reconfig -add/-remove` through zkCli on the host's own server, with the reconfig credentials. */
        | { kind: "reconfig"; target: HostTarget; server: ServerId; settings: HostSettings; cli: string; add: MemberLine[]; remove: ServerId[]; auth: boolean }
        | { kind: "decommission"; target: HostTarget; server: ServerId; settings: HostSettings }
        | { kind: "broker"; target: HostTarget; broker: KafkaBroker; settings: KafkaSettings; connect: ConnectString; position: number }
        | { kind: "copy"; target?: HostTarget; mode: "full" | "incremental"; spec: BlockCopySpec }
        | { kind: "clients-block"; target: HostTarget; spec: BlockCopySpec }
        | { kind: "clients-switch-host"; target: HostTarget; spec: BlockCopySpec }
        | { kind: "k8s-service"; k8s: KubernetesState; server: KubernetesServer }
        | { kind: "k8s-endpoints"; k8s: KubernetesState; server: KubernetesServer }
        | { kind: "k8s-configmap"; k8s: KubernetesState }
        | { kind: "k8s-headless"; k8s: KubernetesState }
        | { kind: "k8s-pdb"; k8s: KubernetesState }
        | { kind: "k8s-statefulset"; k8s: KubernetesState }
        | { kind: "firewall-remove"; declare: false }
        | { kind: "clients-unblock"; declare: false }
        | { kind: "clients-connect"; declare: false }
    );

export type StepKind = Step["kind"];

/** The checked plan of one update of one ensemble. */
export interface MigrationPlan {
    ensemble: string;
    from: string;
    to: string;
    /** Every step of the update, in an order that respects `after` (and that the simulation follows). */
    steps: Step[];
    /** The restart groups in order, for reports and the policy pack. */
    restartOrder: RestartGroup[];
    /** The Kafka brokers in restart order (controller last) and why, when the ensemble has brokers. */
    brokerOrder?: { ids: number[]; reason: string; warning?: string };
    /** Servers whose config (and with it what they run) changes in this step. */
    configChanges: ServerId[];
    windows: Window[];
    warnings: string[];
}

/** The effects of a plan's steps as events: consecutive equal effects (one restart group) merged. */
export function effectsOf(steps: Step[]): Effect[] {
    const out: Effect[] = [];
    const seen = new Set<Effect>();
    for (const s of steps) {
        const e = s.effect;
        if (!e) continue;
        // The same effect object: one event over several resources, where its first step takes it
        // (the split's rules: the arms put them up, the firewall steps after them find them there).
        if (seen.has(e)) continue;
        out.push(e);
        seen.add(e);
    }
    return out;
}
