// The resources the real program declares for Pulumi.dev.yaml in a given phase (the Fleet under
// Pulumi mocks, tests/components/harness.ts), as a stack policy sees them: parents, the restart
// chain's dependsOn (mocks do not record it, so it is wired from the plan the components follow:
// each restart group waits for the previous group and for every firewall split), secrets
// unwrapped, the stack outputs on the Stack resource and the previous update's `applied` on the
// program's StackReference to itself.
import { loadConfig, type AppliedState, type FleetConfig } from "../../src/config";
import type { LeaderInfo } from "../../src/plan";
import { appliedAfter, runFleet, type FleetRun } from "../components/harness";
import { devConfigAt, edited } from "../fixtures";
import type { StackResourceSpec } from "./harness";

export interface Step {
    kafka: string;
    shared: string;
    cutover: number[];
}

/** Every update of Pulumi.dev.yaml from the first phase to the last, one step each. */
export const WALKTHROUGH: Step[] = [
    { kafka: "separate", shared: "hosts", cutover: [] },
    { kafka: "joined", shared: "services", cutover: [] },
    { kafka: "clients", shared: "clients", cutover: [] },
    { kafka: "prepared", shared: "peers", cutover: [] },
    { kafka: "split", shared: "pods", cutover: [11] },
    { kafka: "source-restarted", shared: "pods", cutover: [11, 12] },
    { kafka: "done", shared: "pods", cutover: [11, 12, 13] },
    { kafka: "done", shared: "done", cutover: [11, 12, 13] },
];

export const LEADERS: Record<string, LeaderInfo> = {
    "kafka-main": { leaders: [3], known: true },
    shared: { leaders: [12], known: true },
};

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Secrets as a policy sees them: plain values. */
function unwrap(v: any): any {
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map(unwrap);
    if (SECRET_SIG in v) return unwrap(v.value);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
}

export interface ProgramStack {
    specs: StackResourceSpec[];
    run: FleetRun;
}

/** Pulumi.dev.yaml at a step; with `observer`, kafka-main joins its targets as observers (issue 13). */
function fleetAt(step: Step, observer: boolean): FleetConfig {
    const raw = devConfigAt({ "kafka-main": step.kafka, shared: step.shared }, step.cutover);
    if (!observer) return loadConfig(raw);
    return loadConfig(
        edited(raw, (r) => {
            const e = r.ensembles.find((x: { name: string }) => x.name === "kafka-main");
            delete e.activeTargets;
            e.joinAs = "observer";
        }),
    );
}

/** The stack of step `step`, after `previous` (what the last update applied; none: a new stack). */
export async function programStack(step: Step, previous?: Step, o: { observer?: boolean } = {}): Promise<ProgramStack> {
    const config = fleetAt(step, o.observer ?? false);
    const applied: AppliedState = previous ? appliedAfter(fleetAt(previous, o.observer ?? false)) : {};
    const run = await runFleet(config, applied, LEADERS);
    const specs: StackResourceSpec[] = [
        { type: "pulumi:pulumi:Stack", name: "zkmigrate-dev", props: { applied: run.applied, ensembles: run.outputs } },
        { type: "pulumi:pulumi:StackReference", name: "zkmigrate-applied", parent: "zkmigrate-dev", props: { name: "organization/zkmigrate/dev", outputs: { applied } } },
    ];
    const ensembles = [...run.fleet.ensembles.keys()];
    const parentOf = (name: string, type: string): string => {
        if (type === "zkmigrate:index:Fleet") return "zkmigrate-dev";
        if (ensembles.includes(name)) return "fleet";
        return ensembles.find((e) => name.startsWith(`${e}-`)) ?? "fleet";
    };
    for (const r of run.resources) {
        specs.push({
            type: r.type,
            name: r.name,
            parent: parentOf(r.name, r.type),
            props: unwrap(r.inputs),
            // The command SDK marks the connection secret (it holds the private key).
            opts: r.type === "command:remote:Command" ? { additionalSecretOutputs: ["connection"] } : {},
        });
    }
    for (const [name, child] of run.fleet.ensembles) {
        const firewalls = [...child.resources.keys()].filter((k) => k.startsWith("firewall-")).map((k) => `${name}-${k}`);
        child.restartOrder.forEach((g, i) => {
            const previous = i > 0 ? child.restartOrder[i - 1].ids.map((id) => `${name}-restart-${id}`) : [];
            for (const id of g.ids) {
                const spec = specs.find((s) => s.name === `${name}-restart-${id}`)!;
                spec.dependsOn = [...previous, ...firewalls];
            }
        });
    }
    return { specs, run };
}

/** The steps of the walkthrough with the step before each. */
export function walkthroughPairs(): { step: Step; previous?: Step }[] {
    return WALKTHROUGH.map((step, i) => ({ step, previous: i > 0 ? WALKTHROUGH[i - 1] : undefined }));
}

/** A copy of `specs` with `edit` applied to the resource named `name`. */
export function editSpec(specs: StackResourceSpec[], name: string, edit: (s: StackResourceSpec) => void): StackResourceSpec[] {
    const copy = structuredClone(specs);
    const s = copy.find((x) => x.name === name);
    if (!s) throw new Error(`no resource ${name} in the stack`);
    edit(s);
    return copy;
}
