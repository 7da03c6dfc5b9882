// Re-adoption: rebuilds the `applied` record of each ensemble from what its servers run, read
// over SSH, for a stack that lost its outputs. Read-only on every host. The record goes back into
// the stack as `zkmigrate:adopted` (src/config/adopted.ts), which the program uses only where the
// stack has no record of its own.
import type { FleetConfig } from "../config/loader";
import { serversOf, type EnsembleConfig } from "../procedures/registry";
import { renderAdoptProbe } from "../scripts/adopt";
import { firewallChainName } from "../scripts/firewall";
import type { AppliedState } from "../types";
import { adoptionReport, matchPhases, type EnsembleAdoption } from "./match";
import { failedObservation, parseProbe, type Observation } from "./observe";
import { adoptionOf } from "./procedures";
import { runScriptOverSsh, type SshOptions } from "./ssh";

export { adoptionReport, matchPhases, phaseDifferences, type EnsembleAdoption } from "./match";
export { parseProbe, parseServerLine, type Observation } from "./observe";
export { adoptionOf } from "./procedures";
export { sshArgs, type SshOptions } from "./ssh";

/** Runs `f` over `items`, at most `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, f: (t: T) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const i = next++;
            out[i] = await f(items[i]);
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return out;
}

/** Reads every server of an ensemble over SSH (at most 16 at once). */
export async function observeEnsemble(e: EnsembleConfig, ssh: SshOptions, log: (l: string) => void = () => {}): Promise<Observation[]> {
    const script = renderAdoptProbe({ host: e.host, chain: firewallChainName(e.name) });
    return pool(serversOf(e), 16, async (s) => {
        const target = s.sshHost ?? s.host;
        const r = await runScriptOverSsh(ssh, target, script);
        log(`adopt: ${e.name} myid ${s.id} (${target}): probe exit ${r.code}${r.timedOut ? " (timed out)" : ""}`);
        if (r.code !== 0) {
            const why = r.timedOut ? `no answer within ${ssh.timeoutMs / 1000} s` : `ssh exit ${r.code}: ${r.stderr.trim().split("\n").slice(-3).join(" | ") || "(no message)"}`;
            return failedObservation(s.id, target, why);
        }
        return parseProbe(s.id, target, r.stdout);
    });
}

export interface AdoptResult {
    adoptions: EnsembleAdoption[];
    /** Ensembles not looked at: their procedure cannot be adopted from the hosts (and none was asked for by name). */
    skipped: { ensemble: string; reason: string }[];
    /** The records of every adopted ensemble, by name: the value of `zkmigrate:adopted`. */
    adopted: AppliedState;
    /** The report for the operator: what each server runs, the phase adopted or why not. */
    report: string;
    ok: boolean;
}

/**
 * Adopts the ensembles of a fleet (or those named in `only`). `phases` is the operator's choice
 * by ensemble name among phases that look alike on the servers.
 */
export async function adoptFleet(
    config: FleetConfig,
    o: { ssh: SshOptions; only?: string[]; phases?: Record<string, string>; log?: (l: string) => void },
): Promise<AdoptResult> {
    const named = o.only && o.only.length > 0;
    const ensembles = config.ensembles.filter((e) => !named || o.only!.includes(e.name));
    const skipped: AdoptResult["skipped"] = [];
    const adoptions: EnsembleAdoption[] = [];
    for (const e of ensembles) {
        const a = adoptionOf(e);
        if (!a.supported && !named) {
            skipped.push({ ensemble: e.name, reason: a.reason });
            continue;
        }
        const observations = a.supported ? await observeEnsemble(e, o.ssh, o.log) : [];
        adoptions.push(matchPhases(e, observations, o.phases?.[e.name]));
    }
    const adopted: AppliedState = Object.fromEntries(adoptions.filter((a) => a.record).map((a) => [a.ensemble, a.record!]));
    const report = [
        ...adoptions.map(adoptionReport),
        ...skipped.map((s) => `${s.ensemble}: skipped: ${s.reason}`),
    ].join("\n");
    return { adoptions, skipped, adopted, report: report + "\n", ok: adoptions.length > 0 && adoptions.every((a) => a.record !== undefined) };
}
