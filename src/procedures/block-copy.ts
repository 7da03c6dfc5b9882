// Block & copy (seed 003), for a target ensemble that is not empty, where mitosis cannot work:
// copy the subtree while the clients run, stop ("block") the clients, copy again only what
// changed since (the copy's state file), point the clients at the target and start them.
//
// No ZooKeeper server changes in any phase: no restart, no membership line, no firewall. The
// clients' downtime is the stretch from `blocked` to `switched`; the full copy runs before it,
// so only the incremental copy falls inside it.
import type { BlockCopyConfig } from "../config";
import { phaseIndex, type BlockCopyPhase } from "../phases";
import type { BlockCopyState, ConnectString, DesiredState } from "../types";
import { shellQuote } from "../scripts/shell";
import { connectString, formatConnect } from "./common";

/** Per phase: the copy taken last, whether the clients are stopped, where they point. */
export const BLOCK_COPY_TABLE: Record<BlockCopyPhase, BlockCopyState> = {
    precopy: { copy: "full", clientsBlocked: false, clientsOn: "source" },
    blocked: { copy: "full", clientsBlocked: true, clientsOn: "source" },
    "final-copy": { copy: "incremental", clientsBlocked: true, clientsOn: "source" },
    switched: { copy: "incremental", clientsBlocked: false, clientsOn: "target" },
    done: { copy: "incremental", clientsBlocked: false, clientsOn: "target" },
};

/** The source subtree (`<source servers>/<path>`) and where it lands (`<target servers>/<targetPath>`). */
export function blockCopyEndpoints(e: BlockCopyConfig): { source: ConnectString; target: ConnectString } {
    return {
        source: connectString(e.source.map((s) => ({ id: s.id, address: s.host })), e.ports.client, e.path),
        target: connectString(e.target.map((s) => ({ id: s.id, address: s.host })), e.ports.client, e.targetPath),
    };
}

export function blockCopyDesired(e: BlockCopyConfig, phase: BlockCopyPhase = e.phase as BlockCopyPhase): DesiredState {
    phaseIndex("block-copy", phase); // throws on an unknown phase
    const state = BLOCK_COPY_TABLE[phase];
    const { source, target } = blockCopyEndpoints(e);
    return {
        ensemble: e.name,
        procedure: "block-copy",
        phase,
        servers: [],
        firewall: [],
        clients: { old: source, next: target, current: state.clientsOn === "target" ? target : source },
        preflight: false,
        blockCopy: { ...state },
    };
}

// ---------------------------------------------------------------------------------------------
// The commands of the phases, rendered once here: the component declares them, the integration
// test runs them, so what is tested is what runs.

/** `host:port,.../path` of both sides, as `zkmigrate copy` takes them. */
export function copyEndpoints(e: BlockCopyConfig): { source: string; target: string } {
    const { source, target } = blockCopyEndpoints(e);
    return { source: formatConnect(source), target: formatConnect(target) };
}

/**
 * The copy of `precopy` (mode full: the state file is removed first, so a re-run copies in full
 * again and starts a new watermark) or of `final-copy` (incremental from the state file, with
 * --delete as configured and --verify: any difference fails the step). Credentials never appear:
 * the CLI reads them from the named variables of its environment. A bash script; the component
 * wraps it for SSH when the copy runs on a host.
 */
export function renderCopyScript(e: BlockCopyConfig, mode: "full" | "incremental"): string {
    const { source, target } = copyEndpoints(e);
    const args = [
        "copy",
        shellQuote(source),
        shellQuote(target),
        "--mtime-since",
        '"$state"',
        ...(e.copy.sourceAuthEnv ? ["--src-auth-env", e.copy.sourceAuthEnv] : []),
        ...(e.copy.targetAuthEnv ? ["--dst-auth-env", e.copy.targetAuthEnv] : []),
        ...(mode === "incremental" ? [...(e.copy.delete ? ["--delete"] : []), "--verify"] : []),
        ...e.copy.extraArgs.map(shellQuote),
    ];
    const lines = [
        "set -euo pipefail",
        `# zkmigrate block-copy ${e.name}: ${mode === "full" ? "precopy (full, clients running)" : "final copy (incremental, clients blocked)"}`,
        `state=${shellQuote(e.copy.stateFile)}`,
        ...(mode === "full"
            ? ['mkdir -p "$(dirname "$state")"', 'rm -f "$state"']
            : [
                  'if [ ! -f "$state" ]; then',
                  `  echo "zkmigrate block-copy ${e.name}: no state file $state where the copy runs: the precopy ran elsewhere (copy.runOn or copy.stateFile changed?); step back to precopy" >&2`,
                  "  exit 1",
                  "fi",
              ]),
        `${e.copy.command} ${args.join(" ")}`,
    ];
    return lines.join("\n") + "\n";
}

/** A client's block command, as configured, under bash (stops at the first failure). */
export function renderBlockScript(e: BlockCopyConfig): string {
    return `set -e\n${e.clients.block}\n`;
}

export function renderUnblockScript(e: BlockCopyConfig): string | undefined {
    return e.clients.unblock ? `set -e\n${e.clients.unblock}\n` : undefined;
}

/** A client's switch command, with ZK_CONNECT: the target connect string with the target path. */
export function renderSwitchScript(e: BlockCopyConfig): string {
    return `set -e\nexport ZK_CONNECT=${shellQuote(copyEndpoints(e).target)}\n${e.clients.switch}\n`;
}
