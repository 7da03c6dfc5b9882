// Loading the stack config: the raw values Pulumi hands the program, the schema (the leaf plus each
// procedure's part, from the registry), the resolved ensembles and the checks across them. Every
// problem is reported at once, with its config path.
import { z } from "zod";
import { PROCEDURE_NAMES, PROCEDURES, procedureOf, type EnsembleConfig } from "../procedures/registry";
import { ConfigError, ensembleLabel, ensemblePath, groupIssues, NAMESPACE, type ConfigIssue } from "./errors";
import { pinHostKeys, readKnownHosts } from "./host-keys";
import { hostRules } from "./rules";
import { CONFIG_KEYS, hostDefaultsSchema, settingsSchema, type Settings } from "./schema";

export interface FleetConfig {
    settings: Settings;
    ensembles: EnsembleConfig[];
}

/** Raw config values by key (without the `zkmigrate:` prefix), as Pulumi config returns them. */
export type RawConfig = Record<string, unknown>;

/** Settings that arrive as strings from the config but are numbers, booleans or objects. */
export const JSON_KEYS = new Set(["sshPort", "sshHostKeyCheck", "leaderProbe", "leaderProbeTimeoutMs", "defaults", "ensembles", "adopted"]);

/** The ensemble names the raw config lists (also those that fail the schema); undefined when `ensembles` is unreadable. */
export function configuredNames(raw: RawConfig): string[] | undefined {
    const list = raw.ensembles ?? [];
    if (!Array.isArray(list)) return undefined;
    return Array.isArray(list) ? list.map((x) => (x && typeof x === "object" ? (x as { name?: unknown }).name : undefined)).filter((n): n is string => typeof n === "string") : [];
}

/** The raw config from Pulumi's `allConfig()` (`zkmigrate:<key>` -> string), JSON keys parsed. */
export function rawConfigOf(all: Record<string, string>): RawConfig {
    const raw: RawConfig = {};
    for (const [key, value] of Object.entries(all)) {
        if (!key.startsWith(`${NAMESPACE}:`)) continue;
        const k = key.slice(NAMESPACE.length + 1);
        try {
            raw[k] = JSON_KEYS.has(k) ? JSON.parse(value) : value;
        } catch {
            raw[k] = value; // the schema names the key and what it expected
        }
    }
    return raw;
}

const schemas = PROCEDURE_NAMES.map((n) => PROCEDURES[n].schema) as unknown as [z.ZodObject, ...z.ZodObject[]];
const ensembleSchema = z.discriminatedUnion("procedure", schemas as any, {
    error: (iss) => (iss.code === "invalid_union" ? `unknown procedure (one of: ${PROCEDURE_NAMES.map((n) => JSON.stringify(n)).join(", ")})` : undefined),
});

function formatPath(key: string, path: readonly PropertyKey[]): string {
    let s = `${NAMESPACE}:${key}`;
    for (const p of path) {
        s += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
    }
    return s;
}

function parseKey<T extends z.ZodType>(key: string, schema: T, value: unknown, issues: ConfigIssue[]): z.output<T> | undefined {
    const r = schema.safeParse(value);
    if (r.success) {
        return r.data;
    }
    for (const i of r.error.issues) {
        issues.push({ path: formatPath(key, i.path), reason: i.message });
    }
    return undefined;
}

/** What a check of the stack config found: every problem, and the ensembles that parsed (for the transition checks). */
export interface ConfigCheck {
    config?: FleetConfig;
    /** The ensembles whose schema passed (also when others failed), resolved. */
    ensembles: EnsembleConfig[];
    issues: ConfigIssue[];
    /** What the preview must show although nothing is refused (hosts reached without a verified key). */
    warnings: string[];
}

export interface CheckOptions {
    /** Where a relative zkmigrate:sshKnownHosts path starts: the project directory (default: the working directory). */
    baseDir?: string;
}

/**
 * Checks the whole stack config in one pass: the scalar keys, the defaults, each ensemble on its
 * own (one that fails the schema does not hide the others), then the semantic checks of every
 * ensemble that parsed and the checks across them. `config` is set only when nothing is wrong.
 */
export function checkConfig(raw: RawConfig, isSecret: (key: string) => boolean = () => true, opts: CheckOptions = {}): ConfigCheck {
    const issues: ConfigIssue[] = [];
    // `adopted` is checked against the stack's own records (mergeAdopted, src/config/adopted.ts).
    const { defaults: rawDefaults, ensembles: rawEnsembles, adopted: _adopted, ...scalars } = raw;
    const settings = parseSettings(scalars, issues);
    const defaults = parseKey("defaults", hostDefaultsSchema, rawDefaults ?? {}, issues);
    const parsed: { item: unknown; index: number }[] = [];
    if (!Array.isArray(rawEnsembles)) {
        parseKey("ensembles", z.array(ensembleSchema).min(1, "at least one ensemble"), rawEnsembles, issues);
    } else if (rawEnsembles.length === 0) {
        issues.push({ path: `${NAMESPACE}:ensembles`, reason: "at least one ensemble" });
    } else {
        rawEnsembles.forEach((item, index) => {
            const r = ensembleSchema.safeParse(item);
            if (r.success) {
                parsed.push({ item: r.data, index });
                return;
            }
            const label = ensembleLabel(index, (item as { name?: unknown } | null)?.name);
            for (const i of r.error.issues) issues.push({ path: formatPath(`ensembles[${label}]`, i.path), reason: i.message });
        });
    }

    if (settings?.sshPrivateKey !== undefined && !isSecret(`${NAMESPACE}:sshPrivateKey`)) {
        issues.push({
            path: `${NAMESPACE}:sshPrivateKey`,
            reason: "the SSH private key must be a secret: pulumi config set --secret zkmigrate:sshPrivateKey < key",
        });
    }
    if (settings?.reconfigAuth !== undefined && !isSecret(`${NAMESPACE}:reconfigAuth`)) {
        issues.push({
            path: `${NAMESPACE}:reconfigAuth`,
            reason: "the reconfig credentials must be a secret: pulumi config set --secret zkmigrate:reconfigAuth 'user:password'",
        });
    }
    // The ensembles need the defaults to resolve; with broken defaults only those are reported.
    const ensembles = defaults ? parsed.map(({ item, index }) => procedureOf(item as { procedure: EnsembleConfig["procedure"] }).resolve(item as never, index, defaults)) : [];
    // A reconfig mitosis sends the credentials when the stack has them (the value stays in the settings).
    for (const e of ensembles) if ("membershipChange" in e && e.membershipChange === "reconfig" && settings?.reconfigAuth !== undefined) e.reconfigAuth = true;
    issues.push(...validateFleet(ensembles));
    const warnings = settings ? checkHostKeys(settings, ensembles, opts.baseDir ?? process.cwd(), issues) : [];
    if (settings && settings.sshPrivateKey === undefined) {
        issues.push({
            path: `${NAMESPACE}:sshPrivateKey`,
            reason: "required to run the host steps over SSH: pulumi config set --secret zkmigrate:sshPrivateKey < key",
        });
    }
    const complete = settings && defaults && Array.isArray(rawEnsembles) && parsed.length === rawEnsembles.length;
    const labels = Array.isArray(rawEnsembles) ? rawEnsembles.map((item, i) => ensembleLabel(i, (item as { name?: unknown } | null)?.name)) : [];
    return { ...(issues.length === 0 && complete ? { config: { settings, ensembles } } : {}), ensembles, issues: groupIssues(issues, labels), warnings };
}

/**
 * Pins the SSH host key of every host a remote command reaches (its `hostKey`, else from
 * zkmigrate:sshKnownHosts); a host without one is an issue at its config path. Returns the
 * warning that lists the hosts reached unverified when sshHostKeyCheck is false.
 */
function checkHostKeys(settings: Settings, ensembles: EnsembleConfig[], baseDir: string, issues: ConfigIssue[]): string[] {
    // "" is the default Pulumi.yaml declares: no known_hosts.
    const knownHosts = settings.sshKnownHosts ? readKnownHosts(settings.sshKnownHosts, baseDir, issues) : undefined;
    // An unreadable known_hosts is reported once, not once per host that it would have named.
    if (settings.sshKnownHosts && !knownHosts) return [];
    const hosts = ensembles.flatMap((e) => procedureOf(e).sshHosts(e).map(({ path, spec }) => ({ path: ensemblePath(e, path), spec })));
    const r = pinHostKeys(hosts, settings.sshPort, knownHosts, settings.sshHostKeyCheck);
    issues.push(...r.issues);
    if (r.unverified.length === 0) return [];
    return [
        `zkmigrate:sshHostKeyCheck is false: SSH to ${r.unverified.join(", ")} accepts ANY host key (no key configured), so a host impersonating them would receive the commands and the SSH session; pin their keys (README, SSH host keys) and remove sshHostKeyCheck`,
    ];
}

/** Parses and checks the whole stack config. Throws a ConfigError listing every problem. */
export function loadConfig(raw: RawConfig, isSecret: (key: string) => boolean = () => true, opts: CheckOptions = {}): FleetConfig {
    const r = checkConfig(raw, isSecret, opts);
    if (!r.config) throw new ConfigError(r.issues);
    return r.config;
}

/** The scalar keys are separate config keys: report each under its own name. */
function parseSettings(scalars: Record<string, unknown>, issues: ConfigIssue[]): Settings | undefined {
    const r = settingsSchema.safeParse(scalars);
    if (r.success) {
        return r.data;
    }
    for (const i of r.error.issues) {
        if (i.code === "unrecognized_keys") {
            for (const k of i.keys) {
                issues.push({ path: `${NAMESPACE}:${k}`, reason: `unknown key (known: ${CONFIG_KEYS.join(", ")})` });
            }
        } else {
            issues.push({ path: formatPath(String(i.path[0]), i.path.slice(1)), reason: i.message });
        }
    }
    return undefined;
}

/** Checks one fleet's ensembles: each by its procedure's rules, then across them (pure, for table tests). */
export function validateFleet(ensembles: EnsembleConfig[]): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    const names = new Map<string, number>();
    for (const e of ensembles) {
        if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(e.name) || e.name.length > 40) {
            issues.push({ path: ensemblePath(e, ".name"), reason: `"${e.name}" is not a DNS label of at most 40 characters (a-z, 0-9, -)` });
        }
        const other = names.get(e.name);
        if (other !== undefined) {
            issues.push({ path: ensemblePath(e, ".name"), reason: `ensemble name "${e.name}" is used twice (items ${other} and ${e.index} of zkmigrate:ensembles)` });
        }
        names.set(e.name, e.index);
        const p = procedureOf(e);
        issues.push(...p.validate(e));
    }
    // The rules about hosts, ports and what two ensembles on one host share (src/config/rules.ts).
    issues.push(...hostRules(ensembles));
    return issues;
}
