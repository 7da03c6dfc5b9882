// Config refusals: every one names the config path (with the ensemble's name) and the reason, and
// all of them are reported together, before any resource is declared.

/** The config namespace (the Pulumi project name). */
export const NAMESPACE = "zkmigrate";

export interface ConfigIssue {
    /** e.g. `zkmigrate:ensembles[0].target[1].id` */
    path: string;
    reason: string;
}

export class ConfigError extends Error {
    constructor(readonly issues: ConfigIssue[]) {
        super(
            `invalid zkmigrate configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
                issues.map((i) => `  - ${i.path}: ${i.reason}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

/** The config path of an ensemble (by its index in `zkmigrate:ensembles`), with `rest` appended. */
export function ensemblePath(e: { index: number }, rest = ""): string {
    return `${NAMESPACE}:ensembles[${e.index}]${rest}`;
}
