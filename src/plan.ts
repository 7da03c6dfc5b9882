// The transition from the applied phase to the requested one, as the ordered steps that
// `pulumi up` will take: the components declare exactly these steps (each step's `after` its
// resource's dependsOn), and the safety check simulates exactly their effects, in this order.
import { formatConnectString } from "./format/connect-string";
import { sameMembership } from "./format/zoo-cfg";
import type { EnsembleConfig } from "./procedures/registry";
import { procedureOf } from "./procedures/registry";
import { effectsOf, UNKNOWN_LEADER, type ClientGroup, type KafkaControllerInfo, type LeaderInfo, type MigrationPlan } from "./steps";
import type { DesiredState } from "./types";

export { UNKNOWN_LEADER, type LeaderInfo, type MigrationPlan, type Window, type Step, type ClientGroup } from "./steps";

/** The client groups of an ensemble in a desired state (those that must keep being served). */
export function clientGroups(d: DesiredState): ClientGroup[] {
    return procedureOf(d.procedure).clientGroups(d);
}

/** The steps from `from` to `to`, in the order the components run them. */
export function planTransition(e: EnsembleConfig, from: DesiredState, to: DesiredState, leader: LeaderInfo = UNKNOWN_LEADER, kafka?: KafkaControllerInfo): MigrationPlan {
    const room = procedureOf(e).plan({ e, from, to, leader, kafka });
    const fromById = new Map(from.servers.map((s) => [s.id, s]));
    const configChanges = to.servers.filter((s) => s.location === "host" && !sameMembership(fromById.get(s.id)!.written, s.written)).map((s) => s.id);
    return { ensemble: e.name, from: from.phase, to: to.phase, configChanges, ...room };
}

/** The plan's events in words, in order (the preview prints them). */
export function describePlan(p: MigrationPlan): string[] {
    return effectsOf(p.steps).map((s) => {
        switch (s.kind) {
            case "firewall-apply":
                return `firewall split on ${s.ids.join(", ")}`;
            case "services-create":
                return "create the per-server Services and Endpoints";
            case "restart":
                return `restart ${s.group.ids.join(" + ")} (${s.group.reason})`;
            case "cutover":
                return `cut over ${s.ids.join(", ")} into pods`;
            case "firewall-remove":
                return `remove the firewall split on ${s.ids.join(", ")}`;
            case "clients-switch":
                return `${s.group} connect to ${formatConnectString(s.to)}`;
            case "broker-restart":
                return `restart Kafka broker ${s.broker} on ${formatConnectString(s.connect)} (${s.reason})`;
            case "copy":
                if (s.mode === "full") return s.journal ? "change journal started, then full copy while the clients run (precopy)" : "full copy while the clients run (precopy)";
                return s.journal
                    ? "incremental copy of the paths the change journal recorded since the precopy (the scan if it broke), verified (clients blocked); the journal stops"
                    : "incremental copy of what changed since the precopy, verified (clients blocked)";
            case "clients-block":
                return `block the clients on ${s.hosts.join(", ")}`;
            case "clients-unblock":
                return `unblock the clients on ${s.hosts.join(", ")}`;
            case "clients-repoint":
                return `clients switched to ${formatConnectString(s.to)}`;
            case "stop":
                return `stop ${s.ids.join(" + ")} (${s.reason})`;
            case "reconfig":
                return `reconfig through ${s.through}:${s.add.length > 0 ? ` add ${s.add.map((m) => `${m.id}${m.observer ? " (observer)" : ""}`).join(", ")}` : ""}${s.remove.length > 0 ? ` remove ${s.remove.join(", ")}` : ""}`;
        }
    });
}

/** The restart groups of a step in order (its warnings appended to `warnings`). */
export function restartGroups(e: EnsembleConfig, from: DesiredState, to: DesiredState, leader: LeaderInfo, warnings: string[]) {
    const p = planTransition(e, from, to, leader);
    warnings.push(...p.warnings);
    return p.restartOrder;
}
