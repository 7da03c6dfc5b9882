// What a procedure is: one room (src/procedures/<name>.ts) holds its phases, its config part and
// validators, its desired state as a literal phase table, its transition rules and its plan steps.
// The model reaches a procedure only through the registry (./registry.ts): nothing outside a room
// tests a procedure's name.
import type { z } from "zod";
import type { ConfigIssue } from "../config/errors";
import type { SshHostSpec } from "../config/host-keys";
import type { EnsembleBase, HostDefaults, ServerSpec } from "../config/schema";
import type { ClientGroup, KafkaControllerInfo, LeaderInfo, MigrationPlan } from "../steps";
import type { AppliedEnsemble, DesiredState, ProcedureName, ServerId } from "../types";

/** A rule for stepping back one phase: allowed (and why it is safe), or refused with the reason. */
export interface BackStep {
    allowed: boolean;
    reason: string;
}

/** What planning one update of one ensemble knows. */
export interface PlanContext<C> {
    e: C;
    /** What runs now (the desired state of the applied phase) and what this update makes of it. */
    from: DesiredState;
    to: DesiredState;
    leader: LeaderInfo;
    /** The Kafka controller, for ensembles with brokers among their clients. */
    kafka?: KafkaControllerInfo;
}

/** The part of a plan a room decides; src/plan.ts adds what every plan has. */
export type RoomPlan = Pick<MigrationPlan, "steps" | "restartOrder" | "windows" | "warnings" | "brokerOrder">;

export interface Procedure<C extends EnsembleBase & { procedure: ProcedureName } = EnsembleBase & { procedure: ProcedureName }> {
    readonly name: ProcedureName;
    /** The phases in order; an update moves one step. */
    readonly phases: readonly string[];
    /** The Pulumi type of its ensemble component (URNs and the policy pack use it). */
    readonly componentType: string;
    /** Its part of `zkmigrate:ensembles[]` (discriminated by `procedure`). */
    readonly schema: z.ZodObject;
    /** Whether it restarts ZooKeeper servers (their leader is read at preview; a host:port belongs to one ensemble). */
    readonly managesServers: boolean;
    /**
     * Where an ensemble may leave the config (Pulumi then deletes its resources, running their
     * deletes): the phases in which that changes nothing on a host, and what to do elsewhere.
     */
    readonly removal: { phases: readonly string[]; otherwise: string };
    /** Stepping back from a phase (the key) to the one before it. Every phase but the first has a rule. */
    readonly back: Readonly<Record<string, BackStep>>;
    resolve(raw: never, index: number, defaults: HostDefaults): C;
    validate(e: C): ConfigIssue[];
    /** Its server lists by config key (`source`, `target`, `servers`). */
    groups(e: C): [string, ServerSpec[]][];
    /**
     * Every host its remote commands reach, with its config path after the ensemble's
     * (`.source[0]`): the loader gives each its pinned SSH host key or reports it there.
     */
    sshHosts(e: C): { path: string; spec: SshHostSpec }[];
    /** The desired state at `phase` (with the cutover applied then, for procedures that have one). */
    desired(e: C, at: { phase: string; cutover?: ServerId[] }): DesiredState;
    /** The client groups that must keep being served, and where each connects in `d`. */
    clientGroups(d: DesiredState): ClientGroup[];
    /** Its own checks of a requested step against what was applied (beyond one step at a time). */
    transitionIssues(e: C, applied: AppliedEnsemble | undefined, current: AppliedEnsemble): ConfigIssue[];
    /** Fields of the applied record beyond procedure, phase and servers. */
    appliedExtra(e: C): Pick<AppliedEnsemble, "cutover" | "statefulSet" | "joinAs" | "membershipChange">;
    plan(ctx: PlanContext<C>): RoomPlan;
}

export type AnyProcedure = Procedure<any>;

/** The index of `phase` in `phases`; throws on an unknown phase (the schema refuses those first). */
export function phaseIndexIn(procedure: string, phases: readonly string[], phase: string): number {
    const i = phases.indexOf(phase);
    if (i < 0) throw new Error(`unknown ${procedure} phase "${phase}" (one of: ${phases.join(", ")})`);
    return i;
}
