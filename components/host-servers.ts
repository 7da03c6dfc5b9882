// The host side of an ensemble, shared by both procedures: per server a preflight check (in the
// phases that have one), a config write, and a restart chained in the planned order.
//
// Restarts are `remote.Command`s whose `create` only adopts the server as it runs (a health gate:
// the first phase changes nothing) and whose `update` is the restart (or stop) for the state the
// phase asks for. The update text carries the membership the server must run with, so a server
// is restarted exactly when that membership (or whether it runs) changes; a server whose config
// did not change shows no diff and is not touched. (A `triggers` change would replace the
// resource and run `create` instead, which must stay the harmless adopt step.)
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { EnsembleConfig } from "../src/config";
import type { EnsemblePlan } from "../src/model";
import { membershipLines } from "../src/procedures/common";
import {
    asRemoteCommand,
    firewallChainName,
    renderFirewallApply,
    renderFirewallRemove,
    renderHealthGate,
    renderPreflight,
    renderRestart,
    renderStop,
    renderWriteConfig,
} from "../src/scripts";
import type { ServerId, ServerState } from "../src/types";

/** How pulumi reaches the hosts over SSH. */
export interface SshArgs {
    user: string;
    port: number;
    /** The private key; kept secret in state and never printed. */
    privateKey: pulumi.Input<string>;
}

export interface HostServersArgs {
    /** The component's name: every child is `${name}-<role>-<myid>`. */
    name: string;
    ensemble: EnsembleConfig;
    plan: EnsemblePlan;
    ssh: SshArgs;
    /** Resources every restart waits for (e.g. Services that the new membership names). */
    restartAfter?: pulumi.Resource[];
    /** Extra preflight inputs per server (names to resolve, addresses to reach). */
    preflight?: (s: ServerState) => { reach: { address: string; port: number; listening?: boolean }[]; resolveNames?: string[]; requireCommands?: string[] };
}

export interface HostServers {
    preflight: command.remote.Command[];
    config: Map<ServerId, command.remote.Command>;
    restart: Map<ServerId, command.remote.Command>;
    firewall: Map<ServerId, command.remote.Command>;
    /** Every host command, for outputs that must wait until all of them succeeded. */
    all: command.remote.Command[];
}

export function connectionOf(s: ServerState, ssh: SshArgs): command.types.input.remote.ConnectionArgs {
    return {
        host: s.sshHost ?? s.host,
        port: ssh.port,
        user: ssh.user,
        privateKey: pulumi.secret(ssh.privateKey),
        dialErrorLimit: 10,
    };
}

/** The script a server's restart resource runs on update: restart into its membership, or stop. */
export function restartScript(e: EnsembleConfig, s: ServerState): string {
    if (!s.running || s.decommissioned) {
        return renderStop({ host: e.host, disable: false });
    }
    return renderRestart({
        host: e.host,
        myid: s.id,
        mode: "restart",
        wipeData: s.wipeDataOnStart,
        spacingSeconds: e.spacingSeconds,
        expect: s.runningWith,
    });
}

export function declareHostServers(parent: pulumi.Resource, args: HostServersArgs): HostServers {
    const { name, ensemble: e, plan, ssh } = args;
    const desired = plan.desired;
    const opts = (dependsOn: pulumi.Input<pulumi.Resource>[] = []): pulumi.CustomResourceOptions => ({ parent, dependsOn });
    const onHosts = desired.servers.filter((s) => s.location === "host");
    const out: HostServers = { preflight: [], config: new Map(), restart: new Map(), firewall: new Map(), all: [] };

    // Preflight: read-only checks; nothing is written anywhere until all of them passed.
    if (desired.preflight) {
        for (const s of onHosts) {
            const extra = args.preflight?.(s) ?? { reach: [] };
            const firewallHost = desired.procedure === "mitosis" && s.role === "target";
            const cmd = new command.remote.Command(
                `${name}-preflight-${s.id}`,
                {
                    connection: connectionOf(s, ssh),
                    create: asRemoteCommand(
                        renderPreflight({
                            host: e.host,
                            reach: extra.reach,
                            resolveNames: extra.resolveNames,
                            requireCommands: [...(extra.requireCommands ?? []), ...(firewallHost ? ["iptables"] : [])],
                            noLeftoverChain: firewallHost ? firewallChainName(e.name) : undefined,
                            emptyTarget: e.procedure === "mitosis" && s.role === "target" ? { maxZnodes: e.emptyTargetMaxZnodes } : undefined,
                        }),
                    ),
                    // Read-only: nothing to undo.
                },
                opts(args.restartAfter ?? []),
            );
            out.preflight.push(cmd);
        }
    }

    for (const s of onHosts) {
        // The config write keeps every other setting and backs the file up; deleting this
        // resource leaves the file as it is (a later phase or the next procedure rewrites it).
        const config = new command.remote.Command(
            `${name}-config-${s.id}`,
            {
                connection: connectionOf(s, ssh),
                create: asRemoteCommand(renderWriteConfig({ host: e.host, myid: s.id, membership: s.written })),
            },
            opts(out.preflight),
        );
        out.config.set(s.id, config);
    }

    // The firewall split goes up before the targets restart at the split, and comes down
    // (its delete) only when the resource leaves the program, after the sources restarted.
    for (const f of desired.firewall) {
        const s = desired.servers.find((x) => x.id === f.id)!;
        const rules = { chain: firewallChainName(e.name), tag: `zkmigrate:${e.name}`, peers: f.peers };
        const cmd = new command.remote.Command(
            `${name}-firewall-${f.id}`,
            {
                connection: connectionOf(s, ssh),
                create: asRemoteCommand(renderFirewallApply(rules)),
                delete: asRemoteCommand(renderFirewallRemove(rules)),
            },
            opts([...out.config.values()]),
        );
        out.firewall.set(f.id, cmd);
    }

    // Restarts, chained in the planned order: each group waits for the previous group.
    const position = new Map<ServerId, number>();
    plan.plan.restartOrder.forEach((g, i) => g.ids.forEach((id) => position.set(id, i)));
    const groupMembers: command.remote.Command[][] = plan.plan.restartOrder.map(() => []);
    const ordered = [...onHosts].sort((a, b) => (position.get(a.id) ?? -1) - (position.get(b.id) ?? -1));
    for (const s of ordered) {
        const pos = position.get(s.id);
        const previous = pos !== undefined && pos > 0 ? groupMembers[pos - 1] : [];
        const restart = new command.remote.Command(
            `${name}-restart-${s.id}`,
            {
                connection: connectionOf(s, ssh),
                create: asRemoteCommand(
                    s.running ? renderHealthGate({ host: e.host }) : renderStop({ host: e.host, disable: false }),
                ),
                update: asRemoteCommand(restartScript(e, s)),
                // Restarting a server is not undone by deleting the record of it.
            },
            opts([out.config.get(s.id)!, ...previous, ...out.firewall.values(), ...(args.restartAfter ?? [])]),
        );
        if (pos !== undefined) groupMembers[pos].push(restart);
        out.restart.set(s.id, restart);
    }
    out.all = [...out.preflight, ...out.config.values(), ...out.firewall.values(), ...out.restart.values()];
    return out;
}

/** The per-server summary published as a stack output. */
export function serverSummary(plan: EnsemblePlan) {
    return plan.desired.servers.map((s) => ({
        myid: s.id,
        role: s.role,
        address: s.host,
        location: s.location,
        running: s.running,
        dormant: s.dormant,
        membership: membershipLines(s.runningWith),
        written: membershipLines(s.written),
    }));
}
