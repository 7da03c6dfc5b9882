// A mitosis migration of one ensemble: the host steps of every phase (seed 003).
import * as pulumi from "@pulumi/pulumi";
import type { MitosisConfig } from "../src/config";
import type { EnsemblePlan } from "../src/model";
import { formatConnect } from "../src/procedures/common";
import type { RestartGroup } from "../src/types";
import { declareHostServers, serverSummary, type HostServers, type SshArgs } from "./host-servers";

export const MITOSIS_ENSEMBLE_TYPE = "zkmigrate:mitosis:Ensemble";

export interface MitosisEnsembleArgs {
    /** The validated ensemble config (src/config.ts). */
    ensemble: MitosisConfig;
    /** The checked plan from the applied phase to `ensemble.phase` (src/model.ts `planFleet`). */
    plan: EnsemblePlan;
    /** SSH to the hosts; the key stays secret. */
    ssh: SshArgs;
}

export class MitosisEnsemble extends pulumi.ComponentResource {
    /** The phase this update applies; resolves only once every host step succeeded. */
    readonly appliedPhase: pulumi.Output<string>;
    /** The connect string the migrating clients should use now (with chroot). */
    readonly connect: string;
    /** The source's connect string (old) and the target's (new). */
    readonly oldConnect: string;
    readonly newConnect: string;
    /** The restart groups of this update, in order (targets first, leader last; all targets at the split). */
    readonly restartOrder: RestartGroup[];
    readonly warnings: string[];
    readonly hosts: HostServers;

    constructor(name: string, args: MitosisEnsembleArgs, opts?: pulumi.ComponentResourceOptions) {
        super(MITOSIS_ENSEMBLE_TYPE, name, {}, opts);
        const { plan } = args;
        this.hosts = declareHostServers(this, { name, ensemble: args.ensemble, plan, ssh: args.ssh, preflight: (s) => preflightOf(args.ensemble, s.id) });
        this.connect = formatConnect(plan.desired.clients.current);
        this.oldConnect = formatConnect(plan.desired.clients.old);
        this.newConnect = formatConnect(plan.desired.clients.next);
        this.restartOrder = plan.plan.restartOrder;
        this.warnings = plan.plan.warnings;
        this.appliedPhase = pulumi.all(this.hosts.all.map((c) => c.id)).apply(() => plan.desired.phase);
        this.registerOutputs({
            appliedPhase: this.appliedPhase,
            connect: this.connect,
            oldConnect: this.oldConnect,
            newConnect: this.newConnect,
            servers: serverSummary(plan),
        });
    }
}

/**
 * Before anything changes: every server reaches every other one on the client and election ports
 * (the peer port listens only on a leader, so it cannot be checked from every host).
 */
function preflightOf(e: MitosisConfig, self: number) {
    const all = [...e.source, ...e.target].filter((s) => s.id !== self);
    return {
        reach: all.flatMap((s) => [
            { address: s.host, port: e.ports.client },
            { address: s.host, port: e.ports.election },
        ]),
        requireCommands: ["timeout"],
    };
}
