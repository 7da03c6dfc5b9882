// Mitosis by dynamic reconfig (issue 13): `membershipChange: reconfig` on a mitosis ensemble.
// ZooKeeper >= 3.5.3 with reconfigEnabled=true changes a membership by a transaction that commits
// through the leader with a quorum of the old and of the new configuration; every server then runs
// the new membership without a restart. The sources never restart, so they never hold an election.
// The phases are mitosis's (one phase list for both rooms); what each does here:
//   separate          as mitosis: the read-only preflight (paths, empty target, no leftover split);
//                     the preview also reads that reconfig is available (src/reconfig-guard.ts).
//   joined            dormant targets stop; then one active target at a time starts empty from a seed
//                     membership (the committed configuration plus itself as an observer: the
//                     ZooKeeper manual's safe joiner, which cannot form a quorum with other joiners),
//                     follows the source leader without a vote, and `reconfig -add` (through a source)
//                     makes it a voter. |T'| <= n-1 as in mitosis, so that S stays a majority.
//   clients           as mitosis: the clients move to T while T' follows the source leader.
//   prepared          as mitosis: the split's read-only preflight.
//   split             the firewall cuts T from S; every running target stops; then all targets start
//                     together from a seed of T alone (behind the firewall they elect a leader with the
//                     data: the election prefers the highest zxid); then `reconfig -remove T'` through
//                     a source, which needs only the sources' quorum of both configurations (n of
//                     n+|T'|, and n of n). Why stop them all first: a LOOKING server adopts any
//                     configuration with a higher version that a peer answers with, so a target
//                     started on T next to one still on S+T' would take S+T' back.
//   source-restarted  nothing: the sources already run S (the phase is kept so that both rooms share
//                     one phase list and one applied record).
//   done              the firewall goes.
// Stepping back from `joined` (the abort): `reconfig -remove T'` first (the sources drop them), then
// the targets stop, and start empty on T together.
import { ensemblePath, type ConfigIssue } from "../config/errors";
import type { Effect, PreflightCheck, Step, Window } from "../steps";
import type { DesiredState, MemberLine, RestartGroup, ServerId, ServerState } from "../types";
import { memberLines } from "./common";
import { changedServers, closingSteps, hostSteps } from "./host-steps";
import { clientGroups, kafkaSteps, mitosis, mitosisDesired, MITOSIS_PHASES, preflightOf, SPLIT_SOURCE_WINDOW, SPLIT_WINDOW, targetsTogether, validate as validateMitosis, type MitosisConfig, type MitosisPhase } from "./mitosis";
import type { BackStep, PlanContext, Procedure, RoomPlan } from "./procedure";
import { DEFAULT_ZK_CLI } from "../scripts/reconfig";

/**
 * How a target is added: as a participant (a voter), or as an observer. The observer spelling
 * (`joinAs: observer`, issue 13's other variant) is read here once the config has it: observers
 * never vote, so every target can join and none stays dormant.
 */
export function joinsAsObserver(e: MitosisConfig): boolean {
    return (e as MitosisConfig & { joinAs?: string }).joinAs === "observer";
}

/** The membership lines of servers, with the targets marked observer when they join as observers. */
function lines(e: MitosisConfig, ids: ServerId[]): MemberLine[] {
    const all = [...e.source, ...e.target].filter((s) => ids.includes(s.id));
    const observer = joinsAsObserver(e);
    return memberLines(all.map((s) => ({ id: s.id, address: s.host })), e.ports).map((m) =>
        observer && e.target.some((t) => t.id === m.id) ? { ...m, observer: true as const } : m,
    );
}

/** The desired state: mitosis's table, except that the sources run S from the split on (reconfig -remove, no restart). */
export function reconfigDesired(e: MitosisConfig, phase: string = e.phase): DesiredState {
    const d = mitosisDesired(e, phase);
    const sourceIds = e.source.map((s) => s.id);
    const activeIds = e.active;
    const joint = { members: lines(e, [...sourceIds, ...activeIds]), quorumListenOnAllIPs: e.quorumListenOnAllIPs };
    const joined = ["joined", "clients", "prepared"].includes(phase);
    // The split's rules sit on the source hosts (cutting every target), not on the targets: the
    // source leader is the one server that sends the targets their data, so its rules cut every
    // target at one moment, with one history. With rules on each target, applied host by host, a
    // target still connected kept acknowledging its clients' writes after another was cut, and the
    // cut one with the empty dormant target elected T without them (the first rehearsal of this
    // room: 59 acknowledged writes lost). Every target then holds every write any target acknowledged.
    const firewall = d.firewall.length > 0 ? e.source.map((x) => ({ id: x.id, host: x.host, peers: e.target.map((t) => t.host) })) : [];
    return {
        ...d,
        firewall,
        servers: d.servers.map((s) => {
            if (joined && (s.role === "source" || activeIds.includes(s.id))) return { ...s, written: joint, runningWith: joint };
            if (phase === "split" && s.role === "source") {
                const only = d.servers.find((x) => x.id === s.id)!;
                const S = { members: lines(e, sourceIds), quorumListenOnAllIPs: e.quorumListenOnAllIPs };
                return { ...only, written: S, runningWith: S };
            }
            return s;
        }),
    };
}

/** mitosis's preflight, with the split's prerequisites on the sources (their hosts carry its rules). */
function reconfigPreflight(e: MitosisConfig, s: ServerState, phase: MitosisPhase): PreflightCheck {
    const check = preflightOf(e, s, phase);
    if (s.role !== "source") return check;
    return { ...check, requireCommands: [...new Set([...check.requireCommands, "iptables"])], noLeftoverSplit: true };
}

const BACK: Record<Exclude<MitosisPhase, "separate">, BackStep> = {
    joined: { allowed: true, reason: "an aborted join: reconfig -remove drops the targets, then they stop and start empty on T together" },
    clients: { allowed: true, reason: "the clients return to the source's addresses while T' still follows the source leader" },
    prepared: { allowed: true, reason: "only read-only checks ran; nothing changes on a host" },
    split: { allowed: false, reason: "after the split the targets run their own ensemble with its own history, and the sources dropped them: they cannot rejoin by reconfig; move the clients back and start a new migration instead" },
    "source-restarted": { allowed: true, reason: "nothing changes on a host (the sources run S since the split)" },
    done: { allowed: true, reason: "the firewall goes back up while the sources run S" },
};

/** The zkCli command of the ensemble's hosts. */
function cliOf(e: MitosisConfig): string {
    return e.host.cli ?? DEFAULT_ZK_CLI;
}

/** Whether reconfig steps send credentials: the stack has zkmigrate:reconfigAuth (set on the config by the loader). */
function hasAuth(e: MitosisConfig): boolean {
    return (e as MitosisConfig & { reconfigAuth?: boolean }).reconfigAuth === true;
}

const isForward = (from: DesiredState, to: DesiredState) => MITOSIS_PHASES.indexOf(to.phase as MitosisPhase) > MITOSIS_PHASES.indexOf(from.phase as MitosisPhase);

function plan(ctx: PlanContext<MitosisConfig>): RoomPlan {
    const { e, from, to, leader } = ctx;
    const warnings: string[] = [];
    const windows: Window[] = [];
    const changed = changedServers(from, to);
    const targets = changed.filter((s) => s.role === "target");
    const fromById = new Map(from.servers.map((s) => [s.id, s]));
    const sourceIds = e.source.map((s) => s.id);
    // Reconfigs run through the first source's own server: the sources are the ensemble that stays.
    const through = e.source[0];
    const forward = isForward(from, to);
    const joining = from.phase === "separate" && to.phase === "joined";
    const aborting = from.phase === "joined" && to.phase === "separate";
    const splitting = to.firewall.some((f) => !from.firewall.some((x) => x.id === f.id)) && targets.length > 0;

    // The restart groups: targets only (sources change by reconfig).
    let groups: RestartGroup[] = [];
    if (joining) {
        groups = [
            ...targets.filter((s) => !s.running).map((s) => ({ ids: [s.id], reason: "dormant target stops" })),
            ...e.active.filter((id) => targets.some((s) => s.id === id)).map((id) => ({ ids: [id], reason: "target joins: starts empty from a seed, follows the source leader, then reconfig -add" })),
        ];
    } else if (targets.length > 0) {
        groups = targetsTogether(e, targets);
    }
    const isSplit = splitting && groups.length > 0;
    const leaderIsSource = leader.known && leader.leaders.some((id) => sourceIds.includes(id));
    if (isSplit) {
        windows.push(SPLIT_WINDOW);
        // With reconfig the leader never changes (no source restarts): it is a source unless one crashed.
        if (!leaderIsSource) windows.push(SPLIT_SOURCE_WINDOW);
    }

    const steps = hostSteps({
        ensemble: e.name,
        settings: e.host,
        spacingSeconds: e.spacingSeconds,
        from,
        to,
        groups,
        firewallWindows: isSplit ? windows.slice() : [],
        groupWindows: (g) => (g.ids.length > 1 && isSplit ? [SPLIT_WINDOW] : []),
        deadmanSeconds: e.splitDeadmanSeconds,
        ...(forward ? { preflight: (s: ServerState) => reconfigPreflight(e, s, to.phase as MitosisPhase) } : {}),
    });

    // The sources' restart steps never run: their membership changes by reconfig.
    for (const s of steps) {
        if (s.kind === "restart" && sourceIds.includes(s.server)) {
            delete s.effect;
            delete s.group;
            s.frozen = true;
        }
    }

    // Seeds: each restarting target starts from a dynamic file of zkmigrate's.
    const committed = new Set(from.servers.find((s) => s.role === "source")!.runningWith.members.map((m) => m.id));
    for (const s of steps) {
        if (s.kind !== "restart" || s.effect === undefined || !s.running) continue;
        if (joining) {
            const id = s.server;
            // The committed configuration when it joins: S and the targets added before it, itself an observer.
            const before = e.active.slice(0, e.active.indexOf(id));
            s.seed = [...lines(e, [...committed, ...before]), { ...lines(e, [id])[0], observer: true }];
        } else {
            s.seed = lines(e, e.target.map((t) => t.id)).map((m) => ({ id: m.id, address: m.address, peerPort: m.peerPort, electionPort: m.electionPort }));
        }
    }

    const reconfigStep = (id: string, add: MemberLine[], remove: ServerId[], after: string[], wins: Window[]): Step => ({
        id,
        kind: "reconfig",
        after,
        target: { host: through.host, ...(through.sshHost ? { sshHost: through.sshHost } : {}), ...(through.hostKey ? { hostKey: through.hostKey } : {}) },
        server: through.id,
        settings: e.host,
        cli: cliOf(e),
        add,
        remove,
        auth: hasAuth(e),
        effect: { kind: "reconfig", through: through.id, add, remove, windows: wins },
    });

    // hostSteps' order: preflights, the multi-host gates and the split's arms, firewalls (on the
    // armed hosts: the split's commits), restarts in group order. The room inserts its own steps into it.
    const out: Step[] = [...steps];
    const insertAfter = (anchor: string | undefined, step: Step) => {
        const i = anchor === undefined ? -1 : out.findIndex((s) => s.id === anchor);
        out.splice(i + 1, 0, step);
    };
    const lastOf = (pred: (s: Step) => boolean): string | undefined => [...out].reverse().find(pred)?.id;
    const restartIds = (g: RestartGroup) => out.filter((s) => s.kind === "restart" && s.effect?.kind === "restart" && g.ids.includes(s.server)).map((s) => s.id);
    const firewallIds = out.filter((s) => s.kind === "firewall").map((s) => s.id);
    // The steps every change of the split waits for: the gates, the client fences and catch-ups, the arms.
    const gating = (s: Step) => s.kind === "gate" || s.kind === "split-fence" || s.kind === "split-catchup" || s.kind === "split-arm";
    const gateIds = out.filter(gating).map((s) => s.id);

    const stopStep = (id: ServerId, after: string[], effect: Effect): Step => {
        const s = to.servers.find((x) => x.id === id)!;
        return {
            id: `stop-${id}`,
            kind: "restart",
            after: [...new Set(after)],
            target: { host: s.host, ...(s.sshHost ? { sshHost: s.sshHost } : {}), ...(s.hostKey ? { hostKey: s.hostKey } : {}) },
            server: id,
            settings: e.host,
            running: false,
            membership: s.runningWith,
            wipeData: false,
            spacingSeconds: 0,
            effect,
        };
    };

    if (joining) {
        // Every target of the old (empty) target ensemble stops before the first one joins: a
        // joiner's seed has version 0, and a LOOKING joiner adopts the configuration of any peer
        // that answers with a newer one, the old target ensemble's included (measured on 3.9.5:
        // target 4 took the empty T back from target 5 and formed it again with 5, epoch 2).
        const running = e.active.filter((id) => fromById.get(id)?.running && targets.some((t) => t.id === id));
        const firstJoin = groups.find((g) => g.reason.startsWith("target joins"));
        if (running.length > 0 && firstJoin) {
            const stop: Effect = { kind: "stop", ids: running, reason: "the old target ensemble stops before any target joins: a joiner adopts a peer's newer configuration", windows: [] };
            const dormantStops = out.filter((s) => s.kind === "restart" && s.effect?.kind === "restart" && !s.running).map((s) => s.id);
            let anchor = dormantStops[dormantStops.length - 1] ?? lastOf((s) => s.kind === "preflight" || s.kind === "gate");
            const stops: string[] = [];
            for (const id of running) {
                const step = stopStep(id, [...gateIds, ...dormantStops], stop);
                insertAfter(anchor, step);
                anchor = step.id;
                stops.push(step.id);
            }
            for (const s of out) if (restartIds(firstJoin).includes(s.id)) s.after = [...new Set([...s.after, ...stops])];
        }
        // Per active target: its start, then its reconfig -add; the next target starts after that.
        let previousAdd: string | undefined;
        for (const g of groups) {
            const rs = restartIds(g);
            if (previousAdd) for (const s of out) if (rs.includes(s.id)) s.after = [...new Set([...s.after, previousAdd])];
            if (!g.reason.startsWith("target joins")) continue;
            const step = reconfigStep(`reconfig-add-${g.ids.join("-")}`, lines(e, g.ids), [], rs, []);
            insertAfter(rs[rs.length - 1], step);
            previousAdd = step.id;
        }
    } else if (groups.length > 0) {
        // The split and the abort: (abort: reconfig -remove first), every running target stops,
        // then all start on T (behind the firewall at the split), then (split) reconfig -remove.
        // The armed hosts' firewall steps commit the split: the stops come before them (a commit
        // promises the targets' restart), right after the arms that cut the targets off.
        const commits = out.filter((s) => s.kind === "firewall" && s.commit).map((s) => s.id);
        let last: string[] = [...gateIds, ...firewallIds.filter((id) => !commits.includes(id))];
        let anchor = lastOf((s) => (s.kind === "firewall" && !s.commit) || gating(s) || s.kind === "preflight");
        if (aborting) {
            const removed = e.active.filter((id) => fromById.get(id)?.running);
            const step = reconfigStep(`reconfig-remove-${removed.join("-")}`, [], removed, last, []);
            insertAfter(anchor, step);
            anchor = step.id;
            last = [step.id];
        }
        const running = targets.filter((s) => fromById.get(s.id)!.running).map((s) => s.id);
        if (running.length > 0) {
            const stop: Effect = { kind: "stop", ids: running, reason: "every running target stops before any starts on T: a LOOKING server adopts a peer's newer configuration", windows: isSplit ? [SPLIT_WINDOW] : [] };
            const stops: string[] = [];
            for (const id of running) {
                const step = stopStep(id, last, stop);
                insertAfter(anchor, step);
                anchor = step.id;
                stops.push(step.id);
            }
            // The split's commits (a commit promises the target's restart) and the first restarts wait for every stop.
            const first = restartIds(groups[0]);
            for (const s of out) if (commits.includes(s.id) || first.includes(s.id)) s.after = [...new Set([...s.after, ...stops])];
            // Listed in the order they run: the commits after the stops.
            let after = stops[stops.length - 1];
            for (const id of commits) {
                const i = out.findIndex((x) => x.id === id);
                const [c] = out.splice(i, 1);
                insertAfter(after, c);
                after = c.id;
            }
            last = stops;
        } else if (aborting) {
            for (const s of out) if (restartIds(groups[0]).includes(s.id)) s.after = [...new Set([...s.after, ...last])];
        }
        if (isSplit) {
            // The sources drop T' through their own quorum: n of n+|T'| and n of n.
            const lastGroup = restartIds(groups[groups.length - 1]);
            insertAfter(lastGroup[lastGroup.length - 1], reconfigStep(`reconfig-remove-${e.active.join("-")}`, [], e.active.slice(), lastGroup, []));
        }
    }
    const restartOrder = groups;

    const brokerOrder = kafkaSteps(ctx, out, warnings);
    out.push(...closingSteps(from, to, clientGroups));
    if (isSplit && !leaderIsSource) {
        warnings.push(
            `${e.name}: the source leader is ${leader.known ? `a target (${leader.leaders.join(", ")})` : "unknown"}: the firewall makes the sources elect one of their own (one election); ` +
                "with reconfig the leader stays the source it was unless a source crashed",
        );
    }
    return { steps: out, restartOrder, windows, warnings };
}

function validate(e: MitosisConfig): ConfigIssue[] {
    const issues = validateMitosis(e);
    if (e.allowSingleServer && (e.source.length === 1 || e.target.length === 1)) {
        issues.push({ path: ensemblePath(e, ".membershipChange"), reason: "reconfig needs an ensemble of at least 3 servers on each side (a single server runs standalone, where reconfig does not exist)" });
    }
    return issues;
}

/** The reconfig room: mitosis's config part and phases, its own phase table and plan. */
export const mitosisReconfig: Procedure<MitosisConfig> = {
    ...mitosis,
    back: BACK,
    validate,
    desired: (e, at) => reconfigDesired(e, at.phase),
    plan,
};
