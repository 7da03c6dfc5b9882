// The steps of one `pulumi up` (commands on hosts, and Kubernetes objects), from the engine's
// events: when each started and ended, whether it failed, and whether it stops its server (rather
// than restarting it).
import type { EngineEvent } from "@pulumi/pulumi/automation";

export interface StepTiming {
    name: string;
    op: string;
    /** The step stops its server (zk-service stop), rather than restarting it. */
    stops?: boolean;
    start: number;
    end?: number;
    failed?: boolean;
}

/** A step of the plan: a command, or a Kubernetes object (not the provider itself). */
function isStep(type: string): boolean {
    return type.startsWith("command:") || (type.startsWith("kubernetes:") && type !== "pulumi:providers:kubernetes");
}

/**
 * Records the steps of one phase's `pulumi up` and says what happens (`say`); `refusedEnv`: the
 * variables a host's sshd refused to a command (@pulumi/command: "Unable to set 'X'"; the program
 * must send none, components/remote-command.ts).
 */
export function recordSteps(
    phase: string,
    say: (line: string) => void,
): { steps: Map<string, StepTiming>; refusedEnv: Set<string>; onEvent: (e: EngineEvent) => void } {
    const steps = new Map<string, StepTiming>();
    const refusedEnv = new Set<string>();
    const onEvent = (e: EngineEvent) => {
        const now = Date.now();
        const pre = e.resourcePreEvent?.metadata;
        if (pre && isStep(pre.type)) {
            const name = pre.urn.split("::").pop()!;
            const script = String((pre.new?.inputs as Record<string, unknown> | undefined)?.[pre.op === "update" ? "update" : "create"] ?? "");
            steps.set(name, { name, op: pre.op, start: now, stops: /^# zkmigrate: stop/m.test(script) });
            if (pre.op !== "same") say(`  ${phase}: ${pre.op} ${name} ...`);
        }
        const out = e.resOutputsEvent?.metadata;
        if (out && isStep(out.type)) {
            const s = steps.get(out.urn.split("::").pop()!);
            if (s) {
                s.end = now;
                if (s.op !== "same") say(`  ${phase}: ${s.op} ${s.name} done in ${now - s.start} ms`);
            }
        }
        const failed = e.resOpFailedEvent?.metadata;
        if (failed && isStep(failed.type)) {
            const s = steps.get(failed.urn.split("::").pop()!);
            if (s) {
                s.end = now;
                s.failed = true;
                say(`  ${phase}: ${s.op} ${s.name} FAILED after ${now - s.start} ms`);
            }
        }
        const diag = e.diagnosticEvent;
        const refused = diag && /Unable to set '([^']+)'/.exec(diag.message);
        if (refused) refusedEnv.add(refused[1]);
        if (diag && (diag.severity === "warning" || diag.severity === "error") && !diag.ephemeral) {
            // The command provider quotes the whole script in its error: keep the status and
            // what the script said.
            const lines = diag.message.trim().split("\n");
            lines[0] = lines[0].replace(/: running ".*$/, "").slice(0, 200);
            say(`  ${phase}: ${diag.severity}: ${lines.slice(0, 12).join("\n    ")}`);
        }
    };
    return { steps, refusedEnv, onEvent };
}
