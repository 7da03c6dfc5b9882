// Config refusals: every one names the config path (with the ensemble's name) and the reason, and
// all of them are reported together, before any resource is declared.

/** The config namespace (the Pulumi project name). */
export const NAMESPACE = "zkmigrate";

export interface ConfigIssue {
    /** e.g. `zkmigrate:ensembles[kafka-main].target[1].id` */
    path: string;
    reason: string;
}

export class ConfigError extends Error {
    readonly issues: ConfigIssue[];
    constructor(issues: ConfigIssue[]) {
        issues = groupIssues(issues);
        super(
            `invalid zkmigrate configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
                issues.map((i) => `  - ${i.path}: ${i.reason}`).join("\n"),
        );
        this.issues = issues;
        this.name = "ConfigError";
    }
}

/**
 * How a config path names an item of `zkmigrate:ensembles`: by its name when it has one (what a
 * reviewer looks for in the file: `ensembles[kafka-main].phase`), else by its index.
 */
export function ensembleLabel(index: number, name: unknown): string {
    return typeof name === "string" && /^[^\s\[\]]+$/.test(name) ? name : String(index);
}

/** The config path of an ensemble, with `rest` appended. */
export function ensemblePath(e: { index: number; name?: unknown }, rest = ""): string {
    return `${NAMESPACE}:ensembles[${ensembleLabel(e.index, e.name)}]${rest}`;
}

/**
 * The problems in the order a reader checks them: the keys outside the ensembles first, then each
 * ensemble's together (schema and semantic problems alike), in the order of `labels` (the
 * ensembles' labels in the file), else in the order they first appear.
 */
export function groupIssues(issues: ConfigIssue[], labels: string[] = []): ConfigIssue[] {
    const key = (i: ConfigIssue) => /^[^:]+:ensembles\[[^\]]+\]/.exec(i.path)?.[0] ?? "";
    const order: string[] = labels.map((l) => `${NAMESPACE}:ensembles[${l}]`);
    for (const i of issues) if (!order.includes(key(i))) order.push(key(i));
    const rank = (k: string) => (k === "" ? -1 : order.indexOf(k));
    return issues
        .map((i, n) => ({ i, n }))
        .sort((a, b) => rank(key(a.i)) - rank(key(b.i)) || a.n - b.n)
        .map((x) => x.i);
}
