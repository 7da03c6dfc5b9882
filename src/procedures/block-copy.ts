// Block & copy (seed 003), for a target ensemble that is not empty, where mitosis cannot work: copy
// the subtree while the clients run, stop ("block") the clients, copy again only what changed since
// (the copy's state file), point the clients at the target and start them. Why each phase comes
// where it does:
//   precopy     the full copy runs while the clients write: it is the long part, outside the window.
//               Before it reads, a change journal starts where the copy runs (copy.journal).
//   blocked     the clients stop, one host after the other: from here nothing writes to the subtree.
//   final-copy  the incremental copy of what changed since the precopy, verified: the clients'
//               downtime is this copy, not the full one. With the journal it visits only the
//               paths the journal recorded (and stops it), so it grows with the change, not the tree.
//   switched    the clients start against the target (ZK_CONNECT): the window ends.
//   done        nothing new.
// No ZooKeeper server changes in any phase: no restart, no membership line, no firewall.
import { z } from "zod";
import { ensemblePath, type ConfigIssue } from "../config/errors";
import { canonicalHost } from "../config/hosts";
import { phaseOf, resolveBase, sourceAndTarget, sshTarget, zookeeperSchema, type EnsembleBase, type HostDefaults, type ServerSpec } from "../config/schema";
import { formatConnectString } from "../format/connect-string";
import { hostTarget, type Effect, type Step } from "../steps";
import type { AppliedEnsemble, BlockCopySpec, BlockCopyState, DesiredState } from "../types";
import { ensembleSizeIssue, serversConnect } from "./common";
import { phaseIndexIn, type BackStep, type PlanContext, type Procedure, type RoomPlan } from "./procedure";

export const BLOCK_COPY_PHASES = ["precopy", "blocked", "final-copy", "switched", "done"] as const;
export type BlockCopyPhase = (typeof BLOCK_COPY_PHASES)[number];

/** The CLI the copy runs where it runs: this repository's locally, an installed `zkmigrate` on a host. */
export const LOCAL_COPY_COMMAND = "node --import tsx cli/zkmigrate.ts";
export const REMOTE_COPY_COMMAND = "zkmigrate";

// ---------------------------------------------------------------------------------------------
// Config part: `copy` says where and how the copy runs, `clients` how the clients are stopped and
// pointed at the target. Secrets never enter the config: the copy reads auth from named variables.

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name");

const copySchema = z.strictObject({
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
    /** A change journal started by the precopy (where the copy runs): the final copy visits only the paths it recorded, and falls back to the scan, saying why, when it may miss one. */
    journal: z.boolean().default(true),
    /** More `zkmigrate copy` options (e.g. --batch-ops 500, --timeout 20000). */
    extraArgs: z.array(z.string().min(1)).default([]),
});

const clientsSchema = z.strictObject({
    /** The hosts of the clients; each runs `block` and `switch` over SSH, one after the other. */
    hosts: z.array(sshTarget).min(1, "at least one client host"),
    /** Stops the client (e.g. systemctl stop kafka); must exit 0 only once it no longer writes. */
    block: z.string().min(1),
    /** Points the client at ZK_CONNECT (the target connect string with path, in its environment) and starts it. */
    switch: z.string().min(1),
    /** Starts the client as it is configured; runs when the block is undone (step back to precopy, or destroy). */
    unblock: z.string().min(1).optional(),
});

export const blockCopySchema = z.strictObject({
    name: z.string(),
    procedure: z.literal("block-copy"),
    phase: phaseOf(BLOCK_COPY_PHASES, "block-copy"),
    ...sourceAndTarget,
    /** The subtree that moves (e.g. /kafka). */
    path: z.string(),
    /** Where it lands on the target; default: `path`. */
    targetPath: z.string().optional(),
    allowSingleServer: z.boolean().default(false),
    copy: copySchema.prefault({}),
    clients: clientsSchema,
    /** Only clientPort is used (the connect strings): block & copy changes no ZooKeeper server. */
    zookeeper: zookeeperSchema.partial().optional(),
});
type BlockCopyInput = z.output<typeof blockCopySchema>;

export type BlockCopyConfig = EnsembleBase &
    Pick<BlockCopyInput, "source" | "target" | "path" | "clients"> & {
        procedure: "block-copy";
        targetPath: string;
        copy: BlockCopySpec["copy"];
    };

function resolve(e: BlockCopyInput, index: number, d: HostDefaults): BlockCopyConfig {
    const remote = e.copy.runOn === "local" ? undefined : e.copy.runOn;
    return {
        ...resolveBase(e, index, d),
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
            journal: e.copy.journal,
            extraArgs: e.copy.extraArgs,
        },
        clients: e.clients,
    };
}

const groups = (e: BlockCopyConfig): [string, ServerSpec[]][] => [
    ["source", e.source],
    ["target", e.target],
];

const ZNODE_PATH = /^\/[^\0\n]*[^/]$/;
const COPY_OWNED_ARGS = ["--mtime-since", "--state-file", "--journal", "--delete", "--verify", "--dry-run", "--json"];
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
            const prevHost = hosts.get(canonicalHost(s.host));
            if (prevHost !== undefined) issues.push({ path: ensemblePath(e, `.${group}[${i}].host`), reason: `host ${s.host} is listed twice (also ${group}[${prevHost}])` });
            else hosts.set(canonicalHost(s.host), i);
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
    const src = new Set(e.source.map((s) => canonicalHost(s.host)));
    const dst = new Set(e.target.map((s) => canonicalHost(s.host)));
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
            if (src.has(canonicalHost(t.host))) {
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
        const prev = clientHosts.get(canonicalHost(h.host));
        if (prev !== undefined) issues.push({ path: ensemblePath(e, `.clients.hosts[${i}].host`), reason: `host ${h.host} is listed twice (also clients.hosts[${prev}])` });
        else clientHosts.set(canonicalHost(h.host), i);
    });
    return issues;
}

// ---------------------------------------------------------------------------------------------
// The phase table: per phase, the copy taken last, whether the clients are stopped, where they point.

export const BLOCK_COPY_TABLE: Record<BlockCopyPhase, BlockCopyState> = {
    precopy: { copy: "full", clientsBlocked: false, clientsOn: "source" },
    blocked: { copy: "full", clientsBlocked: true, clientsOn: "source" },
    "final-copy": { copy: "incremental", clientsBlocked: true, clientsOn: "source" },
    switched: { copy: "incremental", clientsBlocked: false, clientsOn: "target" },
    done: { copy: "incremental", clientsBlocked: false, clientsOn: "target" },
};

const SWITCHED_BACK: BackStep = {
    allowed: false,
    reason: "the clients were switched to the target: stepping back would lose what they wrote there since; copy it back with a new block & copy ensemble instead",
};

/** Stepping back one phase (the key is the phase stepped back from). */
const BACK: Record<Exclude<BlockCopyPhase, "precopy">, BackStep> = {
    blocked: { allowed: true, reason: "the clients start again on the source (clients.unblock); nothing was copied since the precopy" },
    "final-copy": { allowed: true, reason: "the clients stay blocked; the final copy runs again on the next step" },
    switched: SWITCHED_BACK,
    done: SWITCHED_BACK,
};

const idx = (p: string) => phaseIndexIn("block-copy", BLOCK_COPY_PHASES, p);

/** The source subtree (`<source servers>/<path>`) and where it lands (`<target servers>/<targetPath>`). */
export function blockCopyEndpoints(e: BlockCopyConfig) {
    return {
        source: serversConnect(e.source, e.ports.client, e.path),
        target: serversConnect(e.target, e.ports.client, e.targetPath),
    };
}

/** What the commands of block & copy need (rendered by src/scripts/block-copy.ts). */
export function blockCopySpec(e: BlockCopyConfig): BlockCopySpec {
    const { source, target } = blockCopyEndpoints(e);
    return { name: e.name, source: formatConnectString(source), target: formatConnectString(target), copy: e.copy, clients: e.clients };
}

export function blockCopyDesired(e: BlockCopyConfig, phase: string = e.phase): DesiredState {
    idx(phase);
    const state = BLOCK_COPY_TABLE[phase as BlockCopyPhase];
    const { source, target } = blockCopyEndpoints(e);
    return {
        ensemble: e.name,
        procedure: "block-copy",
        phase,
        servers: [],
        firewall: [],
        clients: { old: source, next: target, current: state.clientsOn === "target" ? target : source },
        preflight: false,
        blockCopy: { ...state },
    };
}

function transitionIssues(e: BlockCopyConfig, applied: AppliedEnsemble | undefined, current: AppliedEnsemble): ConfigIssue[] {
    const from = idx(current.phase);
    const to = idx(e.phase);
    // Once the clients run on the target they write there: stepping back would point them at a
    // source that lacks those writes.
    if (applied && to < from && !BACK[current.phase as Exclude<BlockCopyPhase, "precopy">].allowed) {
        return [
            {
                path: ensemblePath(e, ".phase"),
                reason: `the clients were switched to the target ("${current.phase}"): stepping back to "${e.phase}" would lose what they wrote there since; copy it back with a new block & copy ensemble instead`,
            },
        ];
    }
    return [];
}

// ---------------------------------------------------------------------------------------------
// Planning one step. Each command stays declared in the later phases, so nothing re-runs: a
// command runs when it is created. Past its own phase a command ignores changes of its text (an
// edited config must not replace it: a precopy re-run after the switch would write stale source
// data over the clients' new writes). Stepping back deletes the later commands; the block's delete
// starts the clients (clients.unblock), the precopy's stops the change journal (destroy), which
// the final copy otherwise stops: the journal never outlives the migration.

function plan(ctx: PlanContext<BlockCopyConfig>): RoomPlan {
    const { e, from, to } = ctx;
    const a = from.blockCopy!;
    const b = to.blockCopy!;
    const spec = blockCopySpec(e);
    const hosts = e.clients.hosts.map((h) => h.host);
    const at = (p: BlockCopyPhase) => idx(to.phase) >= idx(p);
    const past = (p: BlockCopyPhase) => idx(to.phase) > idx(p);
    const fresh = from.phase === to.phase && to.phase === "precopy";
    const forward = idx(to.phase) > idx(from.phase);
    const copyNow = fresh || (forward && b.copy !== a.copy && b.copy !== "none");
    const where = e.copy.host ? { target: hostTarget(e.copy.host) } : {};
    const frozen = (p: BlockCopyPhase) => (past(p) ? { frozen: true as const } : {});

    const steps: Step[] = [];
    steps.push({ id: "precopy", kind: "copy", after: [], mode: "full", spec, ...where, ...frozen("precopy"), ...(copyNow && b.copy === "full" ? { effect: { kind: "copy", mode: "full", journal: e.copy.journal } } : {}) });
    let prev = "precopy";
    if (at("blocked")) {
        const block: Effect | undefined = b.clientsBlocked && !a.clientsBlocked ? { kind: "clients-block", hosts } : undefined;
        for (const h of e.clients.hosts) {
            const id = `block-${h.host}`;
            steps.push({ id, kind: "clients-block", after: [prev], target: hostTarget(h), spec, ...frozen("blocked"), ...(block ? { effect: block } : {}) });
            prev = id;
        }
    }
    if (at("final-copy")) {
        steps.push({ id: "final-copy", kind: "copy", after: [prev], mode: "incremental", spec, ...where, ...frozen("final-copy"), ...(copyNow && b.copy === "incremental" ? { effect: { kind: "copy", mode: "incremental", journal: e.copy.journal } } : {}) });
        prev = "final-copy";
    }
    if (at("switched")) {
        // No delete: once a client writes to the target, pointing it back would lose those writes.
        const repoint: Effect | undefined = b.clientsOn !== a.clientsOn ? { kind: "clients-repoint", to: to.clients.current } : undefined;
        for (const h of e.clients.hosts) {
            const id = `switch-${h.host}`;
            steps.push({ id, kind: "clients-switch-host", after: [prev], target: hostTarget(h), spec, ...frozen("switched"), ...(repoint ? { effect: repoint } : {}) });
            prev = id;
        }
    }
    const unblocks = !b.clientsBlocked && a.clientsBlocked && b.clientsOn === "source";
    if (unblocks) {
        steps.push({ id: "unblock", kind: "clients-unblock", declare: false, after: [], effect: { kind: "clients-unblock", hosts } });
    }
    const warnings = unblocks && !e.clients.unblock ? [`${e.name}: stepping back to "${to.phase}" leaves the clients stopped: no clients.unblock command is configured`] : [];
    return { steps, restartOrder: [], windows: [], warnings };
}

export const blockCopy: Procedure<BlockCopyConfig> = {
    name: "block-copy",
    phases: BLOCK_COPY_PHASES,
    componentType: "zkmigrate:block-copy:Ensemble",
    schema: blockCopySchema,
    managesServers: false,
    back: BACK,
    removal: { phases: ["precopy"], otherwise: "its resources' deletes would run on the hosts (a block's delete starts the clients with `clients.unblock`, the precopy's stops the change journal): step it back to `precopy`, one phase per update, or keep it in the config after `done`" },
    resolve: resolve as Procedure<BlockCopyConfig>["resolve"],
    validate: validateBlockCopy,
    groups,
    // Not its servers: the copy reaches them on their client port. Where the copy runs, and the clients.
    sshHosts: (e) => [...(e.copy.host ? [{ path: ".copy.runOn", spec: e.copy.host }] : []), ...e.clients.hosts.map((spec, i) => ({ path: `.clients.hosts[${i}]`, spec }))],
    desired: (e, at) => blockCopyDesired(e, at.phase),
    // The clients are stopped on purpose while blocked, and move between two ensembles that never
    // shared a leader: what keeps their writes is the verified final copy taken while they were
    // stopped (the phase order), not a quorum.
    clientGroups: () => [],
    transitionIssues,
    appliedExtra: () => ({ cutover: [] }),
    plan,
};
