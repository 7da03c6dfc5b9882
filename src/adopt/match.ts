// Which phase the servers are in: each phase's desired state (the procedure's own phase table,
// procedureOf(e).desired) compared with what every server runs, per server: running or stopped
// (and serving), the membership of its config file, the membership it runs with (when `conf`
// tells), its myid, and the ensemble's firewall split on its host. Exactly one phase must match,
// or the operator names one of those that match (`--phase`); otherwise adoption is refused with
// what each server runs and why each phase does not fit. Pure, for table tests.
import { appliedOf } from "../config/applied";
import { procedureOf, type EnsembleConfig } from "../procedures/registry";
import { formatConnectString } from "../format/connect-string";
import { membershipLines, serverLine } from "../format/zoo-cfg";
import type { AppliedEnsemble, DesiredState, Membership, MemberLine, ServerState } from "../types";
import type { Observation } from "./observe";
import { adoptionOf } from "./procedures";

export interface PhaseMatch {
    phase: string;
    /** Why the servers are not in this phase (empty: they are). */
    differences: string[];
}

export interface EnsembleAdoption {
    ensemble: string;
    procedure: EnsembleConfig["procedure"];
    observations: Observation[];
    phases: PhaseMatch[];
    /** The phases every server agrees with. */
    candidates: string[];
    /** The phase adopted, and its record (what `pulumi up` writes for it); absent when refused. */
    phase?: string;
    record?: AppliedEnsemble;
    /** Why nothing is adopted. */
    refusal?: string;
}

/** The ids of a membership, `1,2,3`. */
function ids(members: MemberLine[]): string {
    return members.map((m) => m.id).join(",");
}

/** How `seen` differs from `want`: other members, or the same ids on other addresses/ports. */
export function membershipDifference(seen: Membership, want: Membership): string | undefined {
    const a = membershipLines(seen);
    const b = membershipLines(want);
    if (a.join("\n") === b.join("\n")) return undefined;
    if (ids(seen.members) !== ids(want.members)) return `lists servers ${ids(seen.members)}, expected ${ids(want.members)}`;
    const diff = a.map((l, i) => (l !== b[i] ? `${l} (expected ${b[i]})` : undefined)).filter((x) => x !== undefined);
    return `lists ${diff.join(", ")}`;
}

function sameMembers(a: MemberLine[], b: MemberLine[]): boolean {
    const lines = (m: MemberLine[]) => [...m].sort((x, y) => x.id - y.id).map(serverLine).join("\n");
    return lines(a) === lines(b);
}

/** Why server `o` is not as `s` (its desired state in one phase) says; `split`: the firewall split is on its host. */
export function serverDifferences(s: ServerState, split: boolean, o: Observation, clientPort: number): string[] {
    const out: string[] = [];
    const runs = s.running && !s.decommissioned && s.location === "host";
    if (o.myid !== undefined && o.myid !== "" && o.myid !== String(s.id)) out.push(`its myid file holds ${JSON.stringify(o.myid)}`);
    if (runs && !o.listening) out.push(`stopped (nothing listens on its client port ${clientPort}), expected running`);
    if (runs && o.listening && !o.mode) out.push(`listens but does not serve (srvr: ${o.srvrProblem ?? "no Mode"})`);
    if (!runs && o.listening) out.push(`runs${o.mode ? ` (${o.mode})` : ""}, expected stopped`);
    if (!o.membership) {
        out.push(`config not read: ${o.configProblems.join("; ") || "no membership"}`);
    } else {
        const d = membershipDifference(o.membership, s.written);
        if (d) out.push(`zoo.cfg ${d}`);
        for (const p of o.configProblems) out.push(`config: ${p}`);
    }
    if (runs && o.listening && o.runningMembers && !sameMembers(o.runningMembers, s.runningWith.members)) {
        out.push(`runs with servers ${ids(o.runningMembers)} (conf), expected ${ids(s.runningWith.members)}`);
    }
    const fw = o.firewall;
    if (fw.state === "unknown") out.push(`cannot tell whether the firewall split is there (${fw.reason})`);
    else if (fw.state === "partial") out.push("the firewall split is there only in part (a chain or a jump is missing)");
    else if (split && fw.state === "absent") out.push("no firewall split, expected one");
    else if (!split && fw.state === "present") out.push("the firewall split is there, expected none");
    return out;
}

/** Every difference between what runs and phase `phase`: per server (prefixed with its myid), then the procedure's own. */
export function phaseDifferences(e: EnsembleConfig, phase: string, observations: Observation[]): string[] {
    const d = procedureOf(e).desired(e, { phase, cutover: [] });
    const byId = new Map(observations.map((o) => [o.id, o]));
    const out: string[] = [];
    for (const s of d.servers) {
        const o = byId.get(s.id);
        if (!o) {
            out.push(`myid ${s.id}: not read`);
            continue;
        }
        const split = d.firewall.some((f) => f.id === s.id);
        for (const x of serverDifferences(s, split, o, e.ports.client)) out.push(`myid ${s.id}: ${x}`);
    }
    const a = adoptionOf(e);
    if (a.supported) out.push(...a.dataDifferences(e, d, observations));
    return out;
}

/** What differs between the desired states of phases that look alike on the servers (for the operator's choice). */
export function whatDiffers(a: DesiredState, b: DesiredState): string[] {
    const out: string[] = [];
    const ca = formatConnectString(a.clients.current);
    const cb = formatConnectString(b.clients.current);
    if (ca !== cb) out.push(`where the clients point (${a.phase}: ${ca}; ${b.phase}: ${cb})`);
    const ka = a.clients.kafka ? formatConnectString(a.clients.kafka.connect) : "";
    const kb = b.clients.kafka ? formatConnectString(b.clients.kafka.connect) : "";
    if (ka !== kb) out.push("the Kafka brokers' zookeeper.connect");
    const wa = a.servers.map((s) => membershipLines(s.runningWith).join(" ")).join("|");
    const wb = b.servers.map((s) => membershipLines(s.runningWith).join(" ")).join("|");
    if (wa !== wb) out.push("the membership the servers run with (not visible without `conf` in the four-letter-word whitelist)");
    if (out.length === 0) out.push("only in what the next step does");
    return out;
}

/**
 * Matches the observations against every phase of the ensemble's procedure. `chosen` is the
 * operator's `--phase` for this ensemble: it must be one of the phases that match.
 */
export function matchPhases(e: EnsembleConfig, observations: Observation[], chosen?: string): EnsembleAdoption {
    const p = procedureOf(e);
    const base = { ensemble: e.name, procedure: e.procedure, observations };
    const a = adoptionOf(e);
    if (!a.supported) return { ...base, phases: [], candidates: [], refusal: a.reason };
    if (chosen !== undefined && !p.phases.includes(chosen)) {
        return { ...base, phases: [], candidates: [], refusal: `--phase ${e.name}=${chosen}: not a ${e.procedure} phase (one of: ${p.phases.join(", ")})` };
    }
    const unread = observations.filter((o) => o.error !== undefined);
    if (unread.length > 0) {
        return {
            ...base,
            phases: [],
            candidates: [],
            refusal: `not every server could be read, so the servers cannot be shown to agree:\n${unread.map((o) => `  myid ${o.id} (${o.sshHost}): ${o.error}`).join("\n")}`,
        };
    }
    const phases = p.phases.map((phase) => ({ phase, differences: phaseDifferences(e, phase, observations) }));
    const candidates = phases.filter((m) => m.differences.length === 0).map((m) => m.phase);
    const result = { ...base, phases, candidates };
    const adopt = (phase: string): EnsembleAdoption => ({ ...result, phase, record: appliedOf({ ...e, phase } as EnsembleConfig) });
    if (chosen !== undefined) {
        if (candidates.includes(chosen)) return adopt(chosen);
        const why = phases.find((m) => m.phase === chosen)!.differences;
        return {
            ...result,
            refusal:
                `--phase ${e.name}=${chosen}: the servers are not in ${chosen}:\n${why.map((w) => `  ${w}`).join("\n")}\n` +
                (candidates.length > 0 ? `they match: ${candidates.join(", ")}` : "they match no phase"),
        };
    }
    if (candidates.length === 1) return adopt(candidates[0]);
    if (candidates.length === 0) {
        return { ...result, refusal: `the servers match no ${e.procedure} phase: they disagree with each phase as follows\n${phaseReport(phases)}` };
    }
    const desired = candidates.map((c) => p.desired(e, { phase: c, cutover: [] }));
    const differs = desired.slice(1).map((d) => `${desired[0].phase} and ${d.phase} differ in ${whatDiffers(desired[0], d).join(", ")}`);
    return {
        ...result,
        refusal:
            `the servers match ${candidates.length} phases (${candidates.join(", ")}), which look alike on the servers: ` +
            `${differs.join("; ")}. Choose the one the fleet is in with --phase ${e.name}=<phase>`,
    };
}

/** Each phase and why it does not fit (at most 6 reasons per phase). */
export function phaseReport(phases: PhaseMatch[]): string {
    return phases
        .map((m) => {
            if (m.differences.length === 0) return `  ${m.phase}: matches`;
            const shown = m.differences.slice(0, 6).map((d) => `      ${d}`);
            const more = m.differences.length > 6 ? [`      (${m.differences.length - 6} more)`] : [];
            return [`  ${m.phase}:`, ...shown, ...more].join("\n");
        })
        .join("\n");
}

/** What each server runs, one line each, for the report. */
export function serverReport(observations: Observation[]): string {
    return observations
        .map((o) => {
            if (o.error) return `  myid ${o.id} ${o.sshHost}: not read (${o.error})`;
            const runs = o.listening ? (o.mode ? `${o.mode}${o.nodeCount !== undefined ? `, ${o.nodeCount} znodes` : ""}` : "listens, not serving") : "stopped";
            const cfg = o.membership ? `zoo.cfg ${ids(o.membership.members)}${o.membership.quorumListenOnAllIPs ? " quorumListenOnAllIPs" : ""}` : "zoo.cfg unread";
            const conf = o.runningMembers ? `, runs with ${ids(o.runningMembers)}` : "";
            const fw = `firewall ${o.firewall.state}`;
            return `  myid ${o.id} ${o.sshHost}: ${runs}; ${cfg}${conf}; ${fw}`;
        })
        .join("\n");
}

/** The whole report of one ensemble (stderr of `zkmigrate adopt`). */
export function adoptionReport(a: EnsembleAdoption): string {
    const head = a.record ? `${a.ensemble} (${a.procedure}): adopted at phase ${a.phase}` : `${a.ensemble} (${a.procedure}): not adopted`;
    const parts = [head];
    if (a.observations.length > 0) parts.push(serverReport(a.observations));
    if (a.candidates.length > 0) parts.push(`  phases that match: ${a.candidates.join(", ")}`);
    if (a.refusal) parts.push(a.refusal.replace(/^/gm, "  "));
    return parts.join("\n");
}
