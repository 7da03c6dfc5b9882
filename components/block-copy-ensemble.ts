// Block & copy of one subtree (seed 003): for a target ensemble that is not empty. No ZooKeeper
// server is touched; the resources are the copies and the clients' own commands:
//
//   precopy     `<name>-precopy`          full copy while the clients run (state file written)
//   blocked     `<name>-block-<host>`     per client host, one after the other: clients.block
//   final-copy  `<name>-final-copy`       incremental copy since the precopy, --verify
//   switched    `<name>-switch-<host>`    per client host: clients.switch with ZK_CONNECT
//   done        nothing new
//
// Each resource stays declared in the later phases, so nothing re-runs: a command runs when it is
// created. Past its own phase a resource ignores changes of its command (an edited config must not
// replace it: a precopy re-run after the switch would write stale source data over the clients'
// new writes). Stepping back deletes the later resources; only the block has a delete (clients.unblock).
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { BlockCopyConfig } from "../src/config";
import type { EnsemblePlan } from "../src/model";
import { phaseIndex } from "../src/phases";
import { renderBlockScript, renderCopyScript, renderSwitchScript, renderUnblockScript } from "../src/procedures/block-copy";
import { asRemoteCommand } from "../src/scripts";
import type { HostServers, SshArgs } from "./host-servers";
import { MigrationEnsemble } from "./migration-ensemble";

export const BLOCK_COPY_ENSEMBLE_TYPE = "zkmigrate:block-copy:Ensemble";

export interface BlockCopyEnsembleArgs {
    /** The validated ensemble config (src/config.ts). */
    ensemble: BlockCopyConfig;
    /** The checked plan from the applied phase to `ensemble.phase` (src/model.ts `planFleet`). */
    plan: EnsemblePlan;
    /** SSH to the client hosts and to the copy host (copy.runOn); the key stays secret. */
    ssh: SshArgs;
}

type Cmd = command.local.Command | command.remote.Command;

/** What a command of an earlier phase ignores: a change there would replace it and run it again. */
export const FROZEN = ["create", "interpreter", "connection", "triggers"] as const;

export class BlockCopyEnsemble extends MigrationEnsemble {
    /** No ZooKeeper server changes in block & copy. */
    readonly hosts: HostServers = { preflight: [], config: new Map(), restart: new Map(), firewall: new Map(), all: [] };
    readonly precopy: Cmd;
    /** Per client host, in config order (each waits for the previous one). */
    readonly blocks: command.remote.Command[] = [];
    readonly finalCopy?: Cmd;
    readonly switches: command.remote.Command[] = [];

    constructor(name: string, args: BlockCopyEnsembleArgs, opts?: pulumi.ComponentResourceOptions) {
        super(BLOCK_COPY_ENSEMBLE_TYPE, name, args.plan, opts);
        const e = args.ensemble;
        const at = (p: string) => phaseIndex("block-copy", e.phase) >= phaseIndex("block-copy", p);
        const past = (p: string) => phaseIndex("block-copy", e.phase) > phaseIndex("block-copy", p);
        /** Options of a resource created in `phase`: chained after `dependsOn`, frozen once past its phase. */
        const optsOf = (phase: string, dependsOn: pulumi.Resource[]): pulumi.CustomResourceOptions => ({
            parent: this,
            dependsOn,
            ...(past(phase) ? { ignoreChanges: [...FROZEN] } : {}),
        });
        const connection = (h: { host: string; sshHost?: string }): command.types.input.remote.ConnectionArgs => ({
            host: h.sshHost ?? h.host,
            port: args.ssh.port,
            user: args.ssh.user,
            privateKey: pulumi.secret(args.ssh.privateKey),
            dialErrorLimit: 10,
        });
        // Where the copy runs: locally (the project directory of `pulumi up`), or on copy.runOn.
        const copy = (role: string, script: string, o: pulumi.CustomResourceOptions): Cmd =>
            e.copy.host
                ? new command.remote.Command(`${name}-${role}`, { connection: connection(e.copy.host), create: asRemoteCommand(script) }, o)
                : new command.local.Command(`${name}-${role}`, { create: script, interpreter: ["/bin/bash", "-c"] }, o);

        this.precopy = copy("precopy", renderCopyScript(e, "full"), optsOf("precopy", []));
        let prev: pulumi.Resource = this.precopy;
        if (at("blocked")) {
            const unblock = renderUnblockScript(e);
            for (const h of e.clients.hosts) {
                const cmd = new command.remote.Command(
                    `${name}-block-${h.host}`,
                    {
                        connection: connection(h),
                        create: asRemoteCommand(renderBlockScript(e)),
                        // Undoing the block (step back to precopy, or destroy) starts the client as configured.
                        ...(unblock ? { delete: asRemoteCommand(unblock) } : {}),
                    },
                    optsOf("blocked", [prev]),
                );
                this.blocks.push(cmd);
                prev = cmd;
            }
        }
        if (at("final-copy")) {
            this.finalCopy = copy("final-copy", renderCopyScript(e, "incremental"), optsOf("final-copy", [prev]));
            prev = this.finalCopy;
        }
        if (at("switched")) {
            for (const h of e.clients.hosts) {
                // No delete: once a client writes to the target, pointing it back would lose those writes.
                const cmd = new command.remote.Command(
                    `${name}-switch-${h.host}`,
                    { connection: connection(h), create: asRemoteCommand(renderSwitchScript(e)) },
                    optsOf("switched", [prev]),
                );
                this.switches.push(cmd);
                prev = cmd;
            }
        }
        this.publish([this.precopy, ...this.blocks, ...(this.finalCopy ? [this.finalCopy] : []), ...this.switches]);
    }
}
