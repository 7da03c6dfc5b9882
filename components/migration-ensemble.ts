// What both ensemble components publish: connect strings, the restart order, warnings, and the
// applied phase, which resolves only once every step of the update succeeded.
import * as pulumi from "@pulumi/pulumi";
import type { EnsemblePlan } from "../src/model";
import { formatConnect } from "../src/procedures/common";
import type { RestartGroup } from "../src/types";
import { serverSummary, type HostServers } from "./host-servers";

export abstract class MigrationEnsemble extends pulumi.ComponentResource {
    /** The connect string clients should use now (with chroot). */
    readonly connect: string;
    /** The connect string before the migration (old) and after it (new). */
    readonly oldConnect: string;
    readonly newConnect: string;
    /** The restart groups of this update, in the order their dependsOn chain runs them. */
    readonly restartOrder: RestartGroup[];
    /** The plan's warnings (unknown leader, declared availability windows). */
    readonly warnings: string[];
    abstract readonly hosts: HostServers;
    private applied?: pulumi.Output<string>;

    protected constructor(type: string, name: string, protected readonly plan: EnsemblePlan, opts?: pulumi.ComponentResourceOptions) {
        super(type, name, {}, opts);
        this.connect = formatConnect(plan.desired.clients.current);
        this.oldConnect = formatConnect(plan.desired.clients.old);
        this.newConnect = formatConnect(plan.desired.clients.next);
        this.restartOrder = plan.plan.restartOrder;
        this.warnings = plan.plan.warnings;
    }

    /** The phase this update applies; unknown until every resource of the ensemble succeeded. */
    get appliedPhase(): pulumi.Output<string> {
        if (!this.applied) throw new Error(`${this.constructor.name}: publish() was not called`);
        return this.applied;
    }

    /** Ends the constructor of a subclass: the applied phase waits for all of `resources`. */
    protected publish(resources: pulumi.CustomResource[]): void {
        this.applied = pulumi.all(resources.map((r) => r.id)).apply(() => this.plan.desired.phase);
        this.registerOutputs({
            appliedPhase: this.applied,
            connect: this.connect,
            oldConnect: this.oldConnect,
            newConnect: this.newConnect,
            servers: serverSummary(this.plan),
        });
    }
}
