// What each host step of a plan runs: the bash of its create, update and delete, rendered from the
// step alone. The components declare these; the integration tests run the same renderers.
import type { Attempt, Step } from "../steps";
import { renderBlockScript, renderCopyScript, renderJournalStopScript, renderSwitchScript, renderUnblockScript } from "./block-copy";
import { forgetSplit, renderGate, renderSplitArm, renderSplitCommit } from "./deadman";
import { renderSplitCatchup, renderSplitFence } from "./fence";
import { firewallChainName, renderFirewallApply, renderFirewallRemove } from "./firewall";
import { renderKafkaBroker } from "./kafka";
import { renderPreflight } from "./preflight";
import { renderReconfigChange, renderReconfigStart } from "./reconfig";
import { renderHealthGate, renderRestart, renderStop } from "./service";

/** A step that runs commands, and its scripts (bash). `update` and `delete` when the step has them. */
export interface StepCommands {
    create: string;
    update?: string;
    delete?: string;
}

export type CommandStep = Extract<Step, { kind: "preflight" | "gate" | "split-arm" | "split-fence" | "split-catchup" | "firewall" | "restart" | "decommission" | "broker" | "copy" | "clients-block" | "clients-switch-host" | "reconfig" }>;

export function isCommandStep(s: Step): s is CommandStep {
    return ["preflight", "gate", "split-arm", "split-fence", "split-catchup", "firewall", "restart", "decommission", "broker", "copy", "clients-block", "clients-switch-host", "reconfig"].includes(s.kind);
}

/** Steps that must run on every attempt of their update (src/procedures/gates.ts): the component replaces them per attempt. */
export function runsEveryAttempt(s: Step): boolean {
    return s.kind === "gate" || s.kind === "split-arm" || s.kind === "split-fence" || s.kind === "split-catchup";
}

/** The attempt of a render without one (tests, previews of the text): now. */
function now(): Attempt {
    return { startedAt: Math.floor(Date.now() / 1000) };
}

/**
 * The scripts of one step.
 * - restart: `create` only adopts the server as it runs (a health gate, or a stop for a server that
 *   must not run): the first phase changes nothing. `update` writes the server's config and
 *   restarts (or stops) it into the state of the phase; its text carries the membership the server
 *   must run with. It runs only in an update whose plan restarts the server: otherwise the step is
 *   frozen (a `triggers` change would replace the resource and run `create` instead).
 * - gate: read-only checks of a host of a multi-host step; split-arm: the split's dead man's switch
 *   armed, then the rules up. Both depend on the attempt (the update's start), which the component
 *   passes: they run again on every attempt.
 * - firewall: `create` applies the rules, or, on a host whose split-arm armed the switch and put
 *   them up (`commit`), commits the split there (the switch and the rules checked): after
 *   every arm, before any restart of the split.
 * - firewall: `delete` lifts the split (the engine runs it when the phase no longer has one), and
 *   stops the split's switch where one was armed.
 * - broker: `create` adopts the broker, `update` moves it to the step's connect string.
 * - copy: the precopy's (mode full) `delete` stops its change journal.
 * - clients-block: `delete` starts the clients again (clients.unblock), when configured.
 */
export function commandsOf(s: CommandStep, attempt: Attempt = now()): StepCommands {
    switch (s.kind) {
        case "gate":
            return { create: renderGate({ host: s.settings, ensemble: s.ensemble, gate: s.gate, attempt }) };
        case "split-catchup":
            return { create: renderSplitCatchup({ host: s.settings, ensemble: s.ensemble, catchup: s.catchup }) };
        case "split-fence":
            return { create: renderSplitFence({ host: s.settings, ensemble: s.ensemble, fence: s.fence, attempt }) };
        case "split-arm":
            return { create: renderSplitArm({ host: s.settings, ensemble: s.ensemble, peers: s.peers, deadman: s.deadman, attempt }) };
        case "preflight":
            return {
                create: renderPreflight({
                    host: s.settings,
                    reach: s.check.reach,
                    resolveNames: s.check.resolveNames,
                    ...(s.check.settleSeconds !== undefined ? { settleSeconds: s.check.settleSeconds } : {}),
                    requireCommands: s.check.requireCommands,
                    noLeftoverChain: s.check.noLeftoverSplit ? firewallChainName(s.ensemble) : undefined,
                    emptyTarget: s.check.emptyTarget,
                    versionGuard: s.check.versionGuard,
                    ...(s.check.observers ? { observers: s.check.observers } : {}),
                }),
            };
        case "firewall": {
            const rules = { chain: firewallChainName(s.ensemble), tag: `zkmigrate:${s.ensemble}`, peers: s.peers };
            // On an armed host the rules are up already (split-arm): the create commits the split.
            const create = s.commit && s.settings ? renderSplitCommit({ host: s.settings, ensemble: s.ensemble, peers: s.peers }) : renderFirewallApply(rules);
            return { create, delete: renderFirewallRemove(rules, s.settings ? forgetSplit(s.settings, s.ensemble) : undefined) };
        }
        case "restart":
            if (s.seed && s.running) {
                // A reconfig mitosis server: (re)started from a seed membership (src/scripts/reconfig.ts).
                return { create: renderHealthGate({ host: s.settings }), update: renderReconfigStart({ host: s.settings, myid: s.server, seed: s.seed, wipeData: s.wipeData, spacingSeconds: s.spacingSeconds, ...(s.unfence ? { unfence: s.unfence } : {}) }) };
            }
            return {
                create: s.running ? renderHealthGate({ host: s.settings }) : renderStop({ host: s.settings, disable: false }),
                update: s.running
                    ? renderRestart({ host: s.settings, myid: s.server, mode: "restart", wipeData: s.wipeData, spacingSeconds: s.spacingSeconds, expect: s.membership, ...(s.before ? { before: s.before } : {}), ...(s.unfence ? { unfence: s.unfence } : {}) })
                    : renderStop({ host: s.settings, disable: false }),
            };
        case "decommission":
            return { create: renderStop({ host: s.settings, disable: true }) };
        case "broker": {
            const script = (mode: "adopt" | "restart") => renderKafkaBroker({ brokerId: s.broker.id, host: s.broker.host, kafka: s.settings, connect: s.connect, mode });
            return { create: script("adopt"), update: script("restart") };
        }
        case "copy":
            return { create: renderCopyScript(s.spec, s.mode), ...(s.mode === "full" ? { delete: renderJournalStopScript(s.spec) } : {}) };
        case "clients-block": {
            const unblock = renderUnblockScript(s.spec);
            return { create: renderBlockScript(s.spec), ...(unblock ? { delete: unblock } : {}) };
        }
        case "clients-switch-host":
            return { create: renderSwitchScript(s.spec) };
        case "reconfig":
            // One-shot: declared only in the update that takes it, so its create is the change.
            return { create: renderReconfigChange({ host: s.settings, cli: s.cli, add: s.add, remove: s.remove, auth: s.auth }) };
    }
}
