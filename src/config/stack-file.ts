// A stack's config read straight from its `Pulumi.<stack>.yaml`, for `zkmigrate plan`: what the
// program would receive from the engine, without the engine. Secrets stay encrypted in the file
// and are not needed to plan: the SSH key is replaced by a placeholder.
import { parse } from "yaml";
import { ConfigError, NAMESPACE } from "./errors";
import { JSON_KEYS, type RawConfig } from "./loader";

/** The `zkmigrate:` keys of a stack file, without the prefix (objects as they are in the YAML). */
export function rawConfigOfStackFile(text: string, file: string): RawConfig {
    let doc: unknown;
    try {
        doc = parse(text);
    } catch (e) {
        throw new ConfigError([{ path: file, reason: `not YAML: ${(e as Error).message.split("\n")[0]}` }]);
    }
    const config = (doc as { config?: unknown } | null)?.config;
    if (config === undefined || config === null || typeof config !== "object" || Array.isArray(config)) {
        throw new ConfigError([{ path: file, reason: "has no `config:` map (a Pulumi stack settings file has one)" }]);
    }
    const raw: RawConfig = {};
    for (const [key, value] of Object.entries(config as Record<string, unknown>)) {
        if (!key.startsWith(`${NAMESPACE}:`)) continue;
        const k = key.slice(NAMESPACE.length + 1);
        // `pulumi config set` writes every value as a string ("false", "22"); the engine hands the
        // program strings too, and rawConfigOf parses these keys: the same here.
        if (JSON_KEYS.has(k) && typeof value === "string") {
            try {
                raw[k] = JSON.parse(value);
                continue;
            } catch {
                // the schema names the key and what it expected
            }
        }
        raw[k] = value;
    }
    // Planning runs nothing on a host: the key (a secret, encrypted in the file) is not needed.
    raw.sshPrivateKey = "(not needed to plan)";
    return raw;
}
