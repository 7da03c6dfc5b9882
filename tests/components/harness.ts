// Runs the Fleet component under Pulumi mocks and records every resource it declares.
import * as pulumi from "@pulumi/pulumi";
import { appliedOf, type AppliedState, type FleetConfig } from "../../src/config";
import type { KafkaControllerInfo, LeaderInfo } from "../../src/steps";

export interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, any>;
}

/** The value of an output (mocks run as `pulumi up`, so every value is known). */
export function valueOf<T>(o: pulumi.Output<T> | pulumi.Input<T>): Promise<T> {
    return new Promise((resolve) => pulumi.output(o).apply((v) => resolve(v as T)));
}

export interface FleetRun {
    resources: Recorded[];
    byName: Map<string, Recorded>;
    fleet: import("../../components").Fleet;
    applied: AppliedState;
    outputs: Record<string, any>;
    urns: Map<string, string>;
}

/**
 * Declares the fleet for `config`, with `applied` as what the previous update applied, and waits
 * until every output resolved. Resources are recorded by name (names are unique in a fleet).
 */
export async function runFleet(
    config: FleetConfig,
    applied: AppliedState,
    leaders: Record<string, LeaderInfo> = {},
    kafkaControllers: Record<string, KafkaControllerInfo> = {},
): Promise<FleetRun> {
    const resources: Recorded[] = [];
    await pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                resources.push({ type: args.type, name: args.name, inputs: args.inputs });
                // Realistic state: commands echo their inputs and succeed with empty output.
                const state = args.type.startsWith("command:") ? { ...args.inputs, stdout: "", stderr: "" } : args.inputs;
                return { id: `${args.name}-id`, state };
            },
            call(args: pulumi.runtime.MockCallArgs) {
                return args.inputs;
            },
        },
        "zkmigrate",
        "dev",
        false,
        "organization",
    );
    const { Fleet } = await import("../../components");
    const { planFleet } = await import("../../src/model");
    const plans = planFleet(config, applied, leaders, kafkaControllers);
    const fleet = new Fleet("fleet", { config, plans, privateKey: pulumi.secret("test-key") });
    const appliedNow = await valueOf(fleet.applied);
    const outputs: Record<string, any> = {};
    for (const [name, s] of Object.entries(fleet.summary)) {
        outputs[name] = { ...s, appliedPhase: await valueOf(s.appliedPhase) };
    }
    const urns = new Map<string, string>();
    for (const child of fleet.ensembles.values()) {
        urns.set((await valueOf(child.urn)).split("::").pop()!, await valueOf(child.urn));
        for (const r of child.resources.values()) {
            urns.set(await valueOf(r.urn).then((u) => u.split("::").pop()!), await valueOf(r.urn));
        }
    }
    // Let the outstanding registrations drain before the next run replaces the mocks.
    await pulumi.runtime.disconnect();
    return { resources, byName: new Map(resources.map((r) => [r.name, r])), fleet, applied: appliedNow, outputs, urns };
}

/** The applied state after a successful update of `config`. */
export function appliedAfter(config: FleetConfig): AppliedState {
    return Object.fromEntries(config.ensembles.map((e) => [e.name, appliedOf(e)]));
}
