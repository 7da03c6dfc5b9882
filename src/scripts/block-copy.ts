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
 */
export function renderCopyScript(e: BlockCopySpec, mode: "full" | "incremental"): string {
    const args = [
        "copy",
        shellQuote(e.source),
        shellQuote(e.target),
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
