// The plan of one update as a reviewer reads it: one table per ensemble, a row per step that
// changes something (or checks something, in a preflight phase), in the order `pulumi up` runs
// them, with the host, the myid, the action, the membership before and after (whole server
// lines), why the step is where it is, and the declared availability windows with their expected
// length. Pure (no Pulumi): the preview prints it, the stack exports it, `zkmigrate plan` prints it
// from the config alone.
import { formatConnectString } from "./format/connect-string";
import { isObserverIn, membershipLines, sameMembership } from "./format/zoo-cfg";
import type { EnsemblePlan } from "./model";
import { planTransition } from "./plan";
import type { EnsembleConfig } from "./procedures/registry";
import { effectsOf, type Effect, type Step, type Window } from "./steps";
import type { ServerState } from "./types";

export interface PlanRow {
    /** 1-based, in the order the update runs. */
    step: number;
    /** The plan's step id; the resource is `<ensemble>-<id>` (none for steps the engine takes by deleting). */
    stepId: string;
    resource?: string;
    /** Where it runs: the host's name or address (and the SSH address when it differs); "local" for where pulumi runs. */
    host?: string;
    sshHost?: string;
    myid?: number;
    /** Kafka broker.id, for broker steps. */
    broker?: number;
    action: string;
    /** zoo.cfg membership lines (or, for a broker, its zookeeper.connect) before and after; absent when the step touches none. */
    before?: string[];
    after?: string[];
    /** Why this step is where it is. */
    why: string;
    /** Availability windows this step opens (declared, not refused). */
    windows: string[];
}

export interface PlanWindow {
    /** The client group that may go without a quorum, or the name of a split-brain window. */
    group: string;
    kind: "no-quorum" | "split-brain" | "election";
    reason: string;
    /** Expected length and where the number comes from. */
    expected: string;
    /** What could go wrong inside it. */
    risk?: string;
    /** The rows (steps of this table) in which the safety check found the window open. */
    rows: number[];
}

export interface PlanTable {
    ensemble: string;
    procedure: string;
    from: string;
    to: string;
    rows: PlanRow[];
    /** Resources of the previous update that this one no longer declares (the preview's deletes), and what deleting them does. */
    deletes: { resources: string[]; effect: string }[];
    windows: PlanWindow[];
    /** The restart order in one line per group, and the brokers' order, as the plan explains them. */
    order: string[];
    warnings: string[];
}

/**
 * Expected lengths of the declared windows. The figures are the rehearsal's (README, "The
 * rehearsal": ZooKeeper 3.9.5, tickTime 2000, this project's 2-CPU machine), not a promise; the
 * bound is the health gate of the step, which fails `pulumi up` when it is exceeded.
 */
const WINDOW_ESTIMATES: Record<string, string> = {
    migrating: "about 2-3 s: the rehearsal measured the targets serving again 2.3 s after the firewall went up (README, The rehearsal)",
    "source-users": "about 1-2 s per source restart while the source has no quorum: leader restarts took 1.1-1.5 s in the rehearsal (README, The rehearsal)",
    "source-users-election": "one election: the rehearsal measured the sources' longest write gap at the split at 0.6 s on a quiet machine, 1-2.3 s under load (README, The rehearsal)",
    "join-split-brain": "from the first source's restart onto S+T' to the last one's: about one restart plus spacingSeconds per source in between (the rehearsal reports it as joinSplitBrainWindowMs)",
};

/** The restart groups' short reasons, spelled out for a reviewer. */
const REASONS: Record<string, string> = {
    target: "active target: joins the source and syncs from its leader before any source restarts",
    "fixed order": "myid order, the highest last (the leader is unknown: probe off or unreadable, see the warning)",
    follower: "follower: the leader restarts last",
    "leader last": "leader last: one election per roll",
};

function windowOf(w: Window, bound: number | undefined, rows: number[]): PlanWindow {
    const estimate = (w.kind === "election" ? WINDOW_ESTIMATES[`${w.group}-election`] : undefined) ?? WINDOW_ESTIMATES[w.group] ?? "no measured figure";
    const limit = bound !== undefined ? `; at most healthTimeoutSeconds = ${bound} s (config) before the health gate stops pulumi up` : "";
    return { group: w.group, kind: w.kind ?? "no-quorum", reason: w.reason, expected: estimate + limit, ...(w.risk ? { risk: w.risk } : {}), rows };
}

const where = (s: { target?: { host: string; sshHost?: string } }) =>
    s.target ? { host: s.target.host, ...(s.target.sshHost && s.target.sshHost !== s.target.host ? { sshHost: s.target.sshHost } : {}) } : { host: "local" };

/**
 * The step ids the last update declared, as far as the config tells: those of a plan that stays in
 * the applied phase (what is declared there stays declared while nothing changes).
 */
export function declaredBefore(e: EnsembleConfig, p: EnsemblePlan): string[] {
    return planTransition(e, p.current, p.current).steps.filter((s) => !("declare" in s)).map((s) => s.id);
}

/** The rows and notes of one ensemble's update. `previous`: the step ids the last update declared (see declaredBefore). */
export function planTable(p: EnsemblePlan, previous?: string[]): PlanTable {
    const { plan, current, desired } = p;
    const before = new Map(current.servers.map((s) => [s.id, s]));
    const restarted = new Set(plan.steps.filter((s) => s.kind === "restart" && s.effect).map((s) => (s as { server: number }).server));
    const rows: PlanRow[] = [];
    const seenEffects = new Set<Effect>();
    const health = plan.steps.map((s) => ("settings" in s && s.settings && "healthTimeoutSeconds" in s.settings ? s.settings.healthTimeoutSeconds : undefined)).find((x) => x !== undefined);
    const resource = (s: Step) => ("declare" in s ? undefined : `${plan.ensemble}-${s.id}`);
    const push = (s: Step, r: Omit<PlanRow, "step" | "stepId" | "resource" | "windows"> & { windows?: string[] }) => {
        const res = resource(s);
        rows.push({ step: rows.length + 1, stepId: s.id, ...(res ? { resource: res } : {}), ...r, windows: r.windows ?? [] });
        noteEvent(s);
    };
    const groupCount = plan.restartOrder.length;
    // The plan's events (as the safety check numbers them) and the row that carries each.
    const eventOf = new Map<Effect, number>(effectsOf(plan.steps).map((e, i) => [e, i + 1]));
    const rowEvents = new Map<number, number>();
    const noteEvent = (s: Step) => {
        const ev = s.effect ? eventOf.get(s.effect) : undefined;
        if (ev !== undefined) rowEvents.set(rows.length, ev);
    };

    for (const s of plan.steps) {
        const e = s.effect;
        switch (s.kind) {
            case "preflight": {
                if (!desired.preflight) break;
                const c = s.check;
                const checks = [
                    `reach ${c.reach.length} address:port${c.reach.length === 1 ? "" : "s"}`,
                    ...(c.resolveNames?.length ? [`resolve ${c.resolveNames.length} name(s)`] : []),
                    ...(c.emptyTarget ? [`target empty (at most ${c.emptyTarget.maxZnodes} znodes)`] : []),
                    ...(c.noLeftoverSplit ? ["no leftover firewall chain"] : []),
                    `commands: ${c.requireCommands.join(", ")}`,
                ];
                push(s, { ...where(s), myid: s.server, action: `preflight, read-only: ${checks.join("; ")}`, why: "before anything is written: every preflight must pass first" });
                break;
            }
            case "restart": {
                if (e?.kind === "stop") {
                    // A reconfig mitosis: every running target stops before any starts (src/procedures/mitosis-reconfig.ts).
                    push(s, { ...where(s), myid: s.server, action: "stop ZooKeeper", before: membershipLines((before.get(s.server) as ServerState).runningWith), after: ["(stopped)"], why: e.reason, windows: e.windows.map((w) => w.group) });
                    break;
                }
                if (!e || e.kind !== "restart") break;
                const b = before.get(s.server) as ServerState;
                const wasRunning = b.running && b.location === "host";
                const action = !s.running
                    ? "stop ZooKeeper"
                    : s.seed
                      ? `write the seed membership (${s.seed.map((m) => `${m.id}${m.observer ? " observer" : ""}`).join(", ")}) to a dynamic file${s.wipeData ? ", empty the data dir" : ""}, start ZooKeeper, health gate (srvr answers with a Mode)`
                    : !wasRunning
                      ? `write zoo.cfg${s.wipeData ? ", empty the data dir" : ""}, start ZooKeeper, health gate (srvr answers with a Mode)`
                      : "write zoo.cfg, restart ZooKeeper, health gate (srvr answers with a Mode)";
                const group = s.group !== undefined ? `restart group ${s.group + 1} of ${groupCount}: ` : "";
                const together = e.group.ids.length > 1 ? ` (together with ${e.group.ids.filter((id) => id !== s.server).join(", ")})` : "";
                push(s, {
                    ...where(s),
                    myid: s.server,
                    action:
                        action +
                        // The observer join: the server's own line says observer, and its zoo.cfg gets peerType=observer.
                        (s.running && isObserverIn(s.membership, s.server) ? ", as an observer (peerType=observer)" : "") +
                        (s.unfence ? "; the split's client fence lifted once the old server stopped" : "") +
                        (s.running && s.spacingSeconds > 0 ? `, then wait ${s.spacingSeconds} s` : ""),
                    before: wasRunning ? membershipLines(b.runningWith) : ["(stopped)"],
                    after: s.running ? membershipLines(s.membership) : ["(stopped)"],
                    why: group + (REASONS[e.group.reason] ?? e.group.reason) + together,
                    windows: e.windows.map((w) => w.group),
                });
                break;
            }
            case "reconfig": {
                if (e?.kind !== "reconfig") break;
                const change = [...(e.add.length > 0 ? [`-add ${e.add.map((m) => `${m.id}${m.observer ? " (observer)" : ""}`).join(", ")}`] : []), ...(e.remove.length > 0 ? [`-remove ${e.remove.join(", ")}`] : [])].join(" ");
                push(s, {
                    ...where(s),
                    myid: s.server,
                    action: `reconfig ${change} through zkCli on this server${s.auth ? " (credentials: zkmigrate:reconfigAuth)" : ""}; the committed configuration read before and after`,
                    why: "a reconfig commits through the leader with a quorum of the old and of the new configuration; no server restarts",
                    windows: e.windows.map((w) => w.group),
                });
                break;
            }
            case "gate": {
                const g = s.gate;
                const checks = [
                    "reachable over SSH, root",
                    g.serving ? "ZooKeeper serves (or runs cut off by this split from an earlier attempt)" : "",
                    g.firewallPeers ? "iptables usable" : "",
                    g.deadman ? "the dead man's switch can be armed (setsid, clock)" : "",
                ].filter((x) => x);
                push(s, { ...where(s), myid: s.server, action: `gate, read-only, on every attempt: ${checks.join("; ")}`, why: `${g.guards}: several hosts change, so every gate must pass before the first change on any of them` });
                break;
            }
            case "split-fence": {
                push(s, {
                    ...where(s),
                    myid: s.server,
                    action: `fence the client port: it answers loopback only (tcp-reset to everyone else); lifted by its restart into the target ensemble, or ${s.fence.seconds} s after the update started`,
                    why: "from here no target acknowledges a write: the migrating clients' service stops until the target ensemble serves",
                });
                break;
            }
            case "split-catchup": {
                push(s, {
                    ...where(s),
                    myid: s.server,
                    action: `wait until this server has applied the highest zxid of the sources (${s.catchup.sources.map((x) => x.address).join(", ")}); its fence lifted if it cannot`,
                    why: "every target is fenced, so no target acknowledged anything beyond that zxid: with it on every target, whichever majority of the target ensemble elects holds every acknowledged write",
                });
                break;
            }
            case "split-arm": {
                const d = s.deadman;
                push(s, {
                    ...where(s),
                    myid: s.server,
                    action: `arm the dead man's switch (fires ${d.seconds} s after the update started; restarts commit within ${d.commitBySeconds} s of it), then reject TCP to and from ${s.peers.join(", ")}`,
                    why: "the firewall only makes sense with the targets' restart: without it the switch lifts the rules, unless another target serves",
                    windows: e?.kind === "firewall-apply" ? e.windows.map((w) => w.group) : [],
                });
                break;
            }
            case "firewall": {
                if (!e) break;
                if (s.commit) {
                    push(s, {
                        ...where(s),
                        myid: s.server,
                        action: `commit the split: this host's dead man's switch still armed, its rules against ${s.peers.join(", ")} in place, the commit window open (refused otherwise); the switch stays armed`,
                        why: "every host's rules are up (the arms): the restarts of the split wait for every commit; at its deadline the switch keeps the rules only if the target ensemble serves",
                        windows: e.kind === "firewall-apply" ? e.windows.map((w) => w.group) : [],
                    });
                    break;
                }
                push(s, {
                    ...where(s),
                    myid: s.server,
                    action: `firewall split: reject TCP to and from ${s.peers.join(", ")} (tcp-reset, chain of ${s.ensemble})`,
                    why: "the targets are cut off from the sources before they restart onto their own membership",
                    windows: e.kind === "firewall-apply" ? e.windows.map((w) => w.group) : [],
                });
                break;
            }
            case "firewall-remove":
                if (e?.kind === "firewall-remove")
                    push(s, { host: "targets", action: `remove the firewall split on ${e.ids.join(", ")} (Pulumi deletes the firewall resources; their delete lifts the rules)`, why: "the sources run their own membership now" });
                break;
            case "decommission":
                if (!e) break;
                push(s, {
                    ...where(s),
                    myid: s.server,
                    action: "stop ZooKeeper on the host and disable it; then its Service selects the pod, the StatefulSet grows by one (ordinal -> myid), and Pulumi waits until the pod is ready (synced)",
                    why: "cutover: one server per update, in the order of `cutover`; the host stops first so that the myid never runs twice",
                });
                break;
            case "broker": {
                if (!e || e.kind !== "broker-restart") break;
                const old = current.clients.kafka?.connect;
                push(s, {
                    ...where(s),
                    broker: s.broker.id,
                    action: "rewrite zookeeper.connect, restart the broker, gate (registered, no under-replicated partitions)" + (s.settings.spacingSeconds > 0 ? `, then wait ${s.settings.spacingSeconds} s` : ""),
                    ...(old ? { before: [`zookeeper.connect=${formatConnectString(old)}`] } : {}),
                    after: [`zookeeper.connect=${formatConnectString(s.connect)}`],
                    why: `broker ${s.position + 1} of ${plan.brokerOrder?.ids.length ?? "?"}, after every ZooKeeper step: ${plan.brokerOrder?.reason ?? e.reason}`,
                });
                break;
            }
            case "k8s-service":
            case "k8s-endpoints":
                if (e && !seenEffects.has(e)) {
                    seenEffects.add(e);
                    const names = plan.steps.filter((x) => x.effect === e).map((x) => `${plan.ensemble}-${x.id}`);
                    rows.push({
                        step: rows.length + 1,
                        stepId: s.id,
                        host: "kubernetes",
                        action: `create a ClusterIP Service without selector and manual Endpoints per server, to the host addresses (${names.join(", ")})`,
                        why: "the peers and clients can move to the Service names only once they resolve",
                        windows: [],
                    });
                    noteEvent(s);
                }
                break;
            case "copy":
                if (e?.kind === "copy")
                    push(s, { ...where(s), action: e.mode === "full" ? "full copy of the subtree while the clients run (precopy)" : "incremental copy of what changed since the precopy, --verify", why: e.mode === "full" ? "first: the bulk of the data moves while the clients still run" : "the clients are blocked: nothing changes during the copy" });
                break;
            case "clients-block":
                if (e) push(s, { ...where(s), action: "clients.block: stop the client", why: "one client host after the other" });
                break;
            case "clients-switch-host":
                if (e) push(s, { ...where(s), action: "clients.switch: point the client at the target and start it", why: "after the verified final copy" });
                break;
            case "clients-unblock":
                if (e?.kind === "clients-unblock") push(s, { host: e.hosts.join(", "), action: "clients.unblock (Pulumi deletes the block resources)", why: "stepping back: the clients start again on the source" });
                break;
            case "clients-connect":
                if (e?.kind === "clients-switch") push(s, { host: "clients", action: `${e.group} connect to ${formatConnectString(e.to)} (the stack output connect; your clients follow it)`, why: "the published connect string changes" });
                else if (e?.kind === "clients-repoint") push(s, { host: "clients", action: `clients switched to ${formatConnectString(e.to)}`, why: "the published connect string changes" });
                break;
        }
    }

    const declared = new Set(plan.steps.filter((s) => !("declare" in s)).map((s) => s.id));
    const prev = previous ?? [];
    const deletes: PlanTable["deletes"] = [];
    for (const id of prev.filter((x) => !declared.has(x))) {
        const effect = deleteEffect(id);
        const d = deletes.find((x) => x.effect === effect);
        if (d) d.resources.push(`${plan.ensemble}-${id}`);
        else deletes.push({ resources: [`${plan.ensemble}-${id}`], effect });
    }
    const order = [
        ...plan.restartOrder.map((g, i) => `${i + 1}. ${g.ids.join(" + ")}: ${g.reason}`),
        ...(plan.brokerOrder && plan.steps.some((s) => s.kind === "broker" && s.effect) ? [`brokers ${plan.brokerOrder.ids.join(", ")}: ${plan.brokerOrder.reason}`] : []),
    ];
    return {
        ensemble: plan.ensemble,
        procedure: desired.procedure,
        from: plan.from,
        to: plan.to,
        rows,
        deletes,
        windows: plan.windows.map((w) => windowOf(w, health, [...rowEvents].filter(([, ev]) => w.steps?.includes(ev)).map(([row]) => row))),
        order,
        warnings: plan.warnings,
    };
}

function deleteEffect(id: string): string {
    if (id.startsWith("preflight-")) return "the read-only preflight of the first phase; its delete runs nothing";
    if (id.startsWith("firewall-")) return "the firewall split; its delete removes the rules";
    if (id.startsWith("block-")) return "the block of a client; its delete runs clients.unblock";
    if (id.startsWith("endpoints-")) return "kept in Kubernetes (retainOnDelete): the Service's selector manages the endpoints of a server in a pod";
    if (id.startsWith("config-") || id.startsWith("restart-")) return "the host steps of a server that now runs in a pod; they have no delete command: deleting them runs nothing on the host";
    return "not declared in this phase";
}

// ---- rendering ----

function rowHost(r: PlanRow): string {
    return r.host === undefined ? "" : r.sshHost ? `${r.host} (ssh ${r.sshHost})` : r.host;
}

function rowWho(r: PlanRow): string {
    return r.myid !== undefined ? `myid ${r.myid}` : r.broker !== undefined ? `broker ${r.broker}` : "";
}

function sameLines(a?: string[], b?: string[]): boolean {
    return a !== undefined && b !== undefined && a.join("\n") === b.join("\n");
}

export function renderText(tables: PlanTable[]): string {
    const out: string[] = [];
    for (const t of tables) {
        out.push(`${t.ensemble} (${t.procedure}): ${t.from} -> ${t.to}`);
        if (t.rows.length === 0) out.push("  no host, Kubernetes or client change in this update");
        for (const r of t.rows) {
            const who = rowWho(r);
            out.push(`  ${r.step}. ${rowHost(r)}${who ? ` ${who}` : ""}${r.resource ? ` [${r.resource}]` : ""}`);
            out.push(`     action: ${r.action}`);
            if (r.before || r.after) {
                if (sameLines(r.before, r.after)) out.push(`     membership unchanged: ${r.after!.join(" ")}`);
                else {
                    if (r.before) out.push(`     before: ${r.before.join("\n             ")}`);
                    if (r.after) out.push(`     after:  ${r.after.join("\n             ")}`);
                }
            }
            out.push(`     why: ${r.why}`);
            if (r.windows.length > 0) out.push(`     opens the availability window of: ${r.windows.join(", ")}`);
        }
        if (t.order.length > 0) out.push("  order:", ...t.order.map((o) => `    ${o}`));
        for (const w of t.windows) {
            out.push(`  ${w.kind === "split-brain" ? "split-brain window" : w.kind === "election" ? "election" : "window"} (${w.group}): ${w.reason}`, `    open in: ${w.rows.length > 0 ? `step${w.rows.length > 1 ? "s" : ""} ${w.rows.join(", ")}` : "no step (declared, not needed)"}`, `    expected: ${w.expected}`);
            if (w.risk) out.push(`    risk: ${w.risk}`);
        }
        for (const d of t.deletes) out.push(`  ${d.resources.length} to delete (${d.resources.join(", ")}): ${d.effect}`);
        for (const w of t.warnings) out.push(`  warning: ${w}`);
        out.push("");
    }
    return out.join("\n");
}

const md = (s: string) => s.replace(/\|/g, "\\|");

export function renderMarkdown(tables: PlanTable[]): string {
    const out: string[] = [];
    for (const t of tables) {
        out.push(`### ${t.ensemble} (${t.procedure}): \`${t.from}\` → \`${t.to}\``, "");
        if (t.rows.length === 0) out.push("No host, Kubernetes or client change in this update.", "");
        else {
            out.push("| # | host | server | action | membership before → after | why this order | window |", "|---|---|---|---|---|---|---|");
            for (const r of t.rows) {
                const m = r.before || r.after ? (sameLines(r.before, r.after) ? "unchanged" : `${(r.before ?? []).map((l) => `\`${l}\``).join("<br>")} → ${(r.after ?? []).map((l) => `\`${l}\``).join("<br>")}`) : "";
                const host = `${md(rowHost(r))}${r.resource ? `<br>\`${r.resource}\`` : ""}`;
                out.push(`| ${r.step} | ${host} | ${rowWho(r)} | ${md(r.action)} | ${md(m)} | ${md(r.why)} | ${r.windows.join(", ")} |`);
            }
            out.push("");
        }
        if (t.order.length > 0) out.push("**Order**", "", ...t.order.map((o) => `- ${md(o)}`), "");
        if (t.windows.length > 0) out.push("**Declared availability windows**", "", ...t.windows.map((w) => `- \`${w.group}\`${w.kind === "split-brain" ? " (split-brain)" : w.kind === "election" ? " (election)" : ""}, ${w.rows.length > 0 ? `open in steps ${w.rows.join(", ")}` : "not needed"}: ${md(w.reason)}. Expected: ${md(w.expected)}${w.risk ? `. Risk: ${md(w.risk)}` : ""}`), "");
        if (t.deletes.length > 0) out.push("**Deleted (the preview's deletes)**", "", ...t.deletes.map((d) => `- ${d.resources.map((r) => `\`${r}\``).join(", ")}: ${md(d.effect)}`), "");
        if (t.warnings.length > 0) out.push("**Warnings**", "", ...t.warnings.map((w) => `- ${md(w)}`), "");
    }
    return out.join("\n");
}

export function renderJson(tables: PlanTable[]): string {
    return JSON.stringify(tables, null, 2) + "\n";
}
