// Runs the model's host steps on a local fleet the way the components declare them
// (components/host-servers.ts): the config step of every server whose written membership changes,
// then the restart groups in the planned order, each server's script over SSH.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { host as fleetHost, runScript, stackHostConfig, stackSshConfig, type LocalFleet, type ScriptResult } from "../../../rehearsal/fleet";
import { loadConfig, type EnsembleConfig, type RawConfig } from "../../../src/config";
import { renderRestart, renderStop, renderWriteConfig } from "../../../src/scripts";
import type { HostSettings, Membership, RestartGroup, ServerId, ServerState } from "../../../src/types";
import type { Window } from "../../../rehearsal/gaps";

/** A validated ensemble config for the fleet's hosts (the fleet's host settings, a short spacing). */
export function ensembleConfig(f: LocalFleet, ensemble: Record<string, unknown>, o: { spacingSeconds?: number } = {}): EnsembleConfig {
    const raw: RawConfig = {
        sshUser: "root",
        sshPrivateKey: readFileSync(f.sshKey, "utf8"),
        sshKnownHosts: stackSshConfig(f).sshKnownHosts,
        leaderProbe: false,
        defaults: { ...stackHostConfig(f), spacingSeconds: o.spacingSeconds ?? 2 },
        ensembles: [ensemble],
    };
    return loadConfig(raw).ensembles[0];
}

/** The fleet's hosts as config servers ({ id, host }). */
export function serversOf(f: LocalFleet, ensemble: string): { id: number; host: string }[] {
    return f.hosts.filter((h) => h.ensemble === ensemble).map((h) => ({ id: h.id, host: h.address }));
}

export interface StepResult extends Window {
    label: string;
    ids: ServerId[];
    results: Map<ServerId, ScriptResult>;
}

export function describeResult(id: ServerId, r: ScriptResult): string {
    return `myid ${id}: exit ${r.code} after ${r.ms} ms${r.timedOut ? " (timed out)" : ""}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** Writes each server's membership (renderWriteConfig), all servers at once; every script must succeed. */
export async function writeConfigs(f: LocalFleet, host: HostSettings, configs: { id: ServerId; membership: Membership }[]): Promise<Map<ServerId, ScriptResult>> {
    const results = new Map<ServerId, ScriptResult>();
    await Promise.all(
        configs.map(async (c) => {
            const r = await runScript(f, fleetHost(f, c.id), renderWriteConfig({ host, myid: c.id, membership: c.membership }), { timeoutMs: 60_000 });
            results.set(c.id, r);
        }),
    );
    for (const [id, r] of results) assert.equal(r.code, 0, `config step failed on ${describeResult(id, r)}`);
    return results;
}

/** The restart step of a server, as components/host-servers.ts renders it. */
export function restartScript(host: HostSettings, spacingSeconds: number, s: ServerState): string {
    if (!s.running) return renderStop({ host, disable: false });
    return renderRestart({ host, myid: s.id, mode: "restart", wipeData: s.wipeDataOnStart, spacingSeconds, expect: s.runningWith });
}

/**
 * Runs the restart groups one after the other (the servers of a group at once); stops at the
 * first failing group, as `pulumi up` does. `onStep` sees each group when it is done.
 */
export async function runRestarts(
    f: LocalFleet,
    host: HostSettings,
    spacingSeconds: number,
    groups: RestartGroup[],
    servers: ServerState[],
    onStep?: (s: StepResult) => void,
): Promise<StepResult[]> {
    const byId = new Map(servers.map((s) => [s.id, s]));
    const steps: StepResult[] = [];
    for (const g of groups) {
        const start = Date.now();
        const results = new Map<ServerId, ScriptResult>();
        await Promise.all(
            g.ids.map(async (id) => {
                const s = byId.get(id);
                if (!s) throw new Error(`restart group names myid ${id}, which has no desired state`);
                results.set(id, await runScript(f, fleetHost(f, id), restartScript(host, spacingSeconds, s), { timeoutMs: (host.healthTimeoutSeconds + 180) * 1000 }));
            }),
        );
        const verb = g.ids.every((id) => byId.get(id)!.running) ? "restart" : "stop";
        const step: StepResult = { label: `${verb} ${g.ids.join("+")} (${g.reason})`, start, end: Date.now(), ids: g.ids, results };
        steps.push(step);
        onStep?.(step);
        for (const [id, r] of results) assert.equal(r.code, 0, `step "${step.label}" failed on ${describeResult(id, r)}`);
    }
    return steps;
}
