// The commands of block & copy, rendered once here: the component declares them, the integration
// test runs them, so what is tested is what runs.
import type { BlockCopySpec } from "../types";
import { shellQuote } from "./shell";

/**
 * The copy of `precopy` (mode full: the state file is removed first, so a re-run copies in full
 * again and starts a new watermark) or of `final-copy` (incremental from the state file, with
 * --delete as configured and --verify: any difference fails the step). Credentials never appear:
 * the CLI reads them from the named variables of its environment. A bash script; the component
 * wraps it for SSH when the copy runs on a host.
 *
 * With copy.journal, the precopy first stops a journal a previous run left recording (so a re-run
 * converges), then starts a new one (`<state>.journal`) before the full copy reads anything; the
 * final copy consumes it with --journal (it stops it and visits only the recorded paths, or falls
 * back to the scan and says why). The precopy's delete (renderJournalStopScript) stops it too.
 */
export function renderCopyScript(e: BlockCopySpec, mode: "full" | "incremental"): string {
    const args = [
        "copy",
        shellQuote(e.source),
        shellQuote(e.target),
        "--mtime-since",
        '"$state"',
        ...(mode === "incremental" && e.copy.journal ? ["--journal", '"$state.journal"'] : []),
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
            ? [
                  'mkdir -p "$(dirname "$state")"',
                  stopJournalLine(e),
                  'rm -f "$state"',
                  ...(e.copy.journal ? [`${e.copy.command} journal start ${shellQuote(e.source)} --file "$state.journal"${srcAuth(e)}`] : []),
              ]
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

const srcAuth = (e: BlockCopySpec) => (e.copy.sourceAuthEnv ? ` --src-auth-env ${e.copy.sourceAuthEnv}` : "");

/** Stops the journal at `<state>.journal` if there is one (a stopped one stays as it is); never fails. */
function stopJournalLine(e: BlockCopySpec): string {
    return `if [ -f "$state.journal" ]; then ${e.copy.command} journal stop ${shellQuote(e.source)} --file "$state.journal" || true; fi`;
}

/**
 * The precopy's delete (step back before it, destroy): stops the change journal where the copy
 * runs, so that it never outlives the migration. Rendered whether or not copy.journal is on (a
 * journal an earlier config started stops too); it never fails.
 */
export function renderJournalStopScript(e: BlockCopySpec): string {
    return [`# zkmigrate block-copy ${e.name}: stop the change journal, if one still records`, `state=${shellQuote(e.copy.stateFile)}`, stopJournalLine(e), ""].join("\n");
}

/** A client's block command, as configured, under bash (stops at the first failure). */
export function renderBlockScript(e: BlockCopySpec): string {
    return `set -e\n${e.clients.block}\n`;
}

export function renderUnblockScript(e: BlockCopySpec): string | undefined {
    return e.clients.unblock ? `set -e\n${e.clients.unblock}\n` : undefined;
}

/** A client's switch command, with ZK_CONNECT: the target connect string with the target path. */
export function renderSwitchScript(e: BlockCopySpec): string {
    return `set -e\nexport ZK_CONNECT=${shellQuote(e.target)}\n${e.clients.switch}\n`;
}
