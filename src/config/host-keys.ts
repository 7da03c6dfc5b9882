// SSH host keys: which key every remote command pins (`connection.hostKey` of @pulumi/command).
//
// What the provider does with it (pulumi-command v1.2.1, provider/pkg/provider/remote/
// connection.go): it parses the value with golang.org/x/crypto/ssh ParseAuthorizedKey (an
// authorized_keys-style line, `ssh-ed25519 AAAA... [comment]`), accepts only that exact key
// (ssh.FixedHostKey: a different key fails the handshake with "ssh: host key mismatch") and
// offers the server only that key's algorithm (HostKeyAlgorithms = [key.Type()]). So one key per
// host, and its type decides what the host is asked for: a host with ed25519, ECDSA and RSA
// keys answers with the one pinned. An `ssh-rsa` key cannot be pinned usefully: the client then
// offers only the SHA-1 `ssh-rsa` signature, which OpenSSH 8.8+ refuses by default ("no common
// algorithm for host key"). Without a hostKey the provider accepts any key (InsecureIgnoreHostKey).
//
// Keys come from the config: `hostKey` beside a host's `host`/`sshHost`, else the known_hosts of
// `zkmigrate:sshKnownHosts` (looked up by the name pulumi connects to, sshHost ?? host, as
// OpenSSH does: `[name]:port` when the port is not 22; hashed entries and patterns included).
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { ConfigIssue } from "./errors";
import { NAMESPACE } from "./errors";

/** The key types a host key can be pinned with, in the order one is chosen from known_hosts. */
export const PINNABLE_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"] as const;

/** A host reached over SSH as the config lists it (the key is filled in by `pinHostKeys`). */
export interface SshHostSpec {
    host: string;
    sshHost?: string;
    hostKey?: string;
}

const HOW_TO_COLLECT =
    "collect it over a trusted path (ssh-keyscan -t ed25519 <host> from inside the network, and compare `ssh-keygen -lf` of it with the fingerprint the host printed on its console or cloud-init output); see the README, SSH host keys";

/**
 * Checks one public key line (`<type> <base64> [comment]`) and returns it as `<type> <base64>`,
 * or the reason it cannot be pinned.
 */
export function parseHostKey(line: string): { key: string } | { reason: string } {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 2 || fields[0] === "") return { reason: `not a public key line ("<type> <base64> [comment]", e.g. "ssh-ed25519 AAAAC3Nza...")` };
    const [type, b64] = fields;
    if (type === "ssh-rsa") {
        return {
            reason: "an ssh-rsa key cannot be pinned: @pulumi/command then offers only the SHA-1 ssh-rsa signature, which OpenSSH 8.8+ refuses; pin the host's ssh-ed25519 (or ecdsa-sha2-nistp256) key",
        };
    }
    if (!(PINNABLE_KEY_TYPES as readonly string[]).includes(type)) {
        return { reason: `key type ${JSON.stringify(type)} cannot be pinned (one of: ${PINNABLE_KEY_TYPES.join(", ")}; certificates and CAs are not supported by @pulumi/command)` };
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return { reason: `the key of type ${type} is not base64` };
    const blob = Buffer.from(b64, "base64");
    // The blob starts with its own type name (uint32 length + name): it must say the same.
    const n = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    const inner = n >= 0 && 4 + n <= blob.length ? blob.subarray(4, 4 + n).toString("latin1") : undefined;
    if (inner !== type) return { reason: `the key says ${type} but its data is ${inner === undefined ? "not an SSH public key" : `a ${inner} key`}` };
    if (type === "ssh-ed25519") {
        const m = 4 + n;
        const len = blob.length >= m + 4 ? blob.readUInt32BE(m) : -1;
        if (len !== 32 || blob.length !== m + 4 + 32) return { reason: "the ssh-ed25519 key's data is not 32 bytes (truncated?)" };
    }
    return { key: `${type} ${b64}` };
}

/** One usable line of a known_hosts file. */
interface KnownHostsEntry {
    line: number;
    /** Comma-separated patterns, or one hashed name (`|1|salt|hash`). */
    names: string;
    type: string;
    key: string;
    revoked: boolean;
}

export interface KnownHosts {
    entries: KnownHostsEntry[];
    /** Where the entries came from (for messages). */
    source: string;
}

/** Parses known_hosts text; lines that are not entries are reported with their line number. */
export function parseKnownHosts(text: string, source: string): { knownHosts: KnownHosts; problems: string[] } {
    const entries: KnownHostsEntry[] = [];
    const problems: string[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
        const line = raw.trim();
        if (line === "" || line.startsWith("#")) return;
        let fields = line.split(/\s+/);
        let revoked = false;
        if (fields[0].startsWith("@")) {
            // A CA cannot be pinned (the provider compares one fixed key); a revoked key never matches.
            if (fields[0] === "@cert-authority") return;
            if (fields[0] !== "@revoked") {
                problems.push(`line ${i + 1}: unknown marker ${fields[0]} (@cert-authority or @revoked)`);
                return;
            }
            revoked = true;
            fields = fields.slice(1);
        }
        if (fields.length < 3) {
            problems.push(`line ${i + 1}: not "<hosts> <type> <base64-key> [comment]"`);
            return;
        }
        const [names, type, key] = fields;
        if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) {
            problems.push(`line ${i + 1}: the key is not base64`);
            return;
        }
        entries.push({ line: i + 1, names, type, key, revoked });
    });
    return { knownHosts: { entries, source }, problems };
}

/** The name known_hosts records for a host reached on `port` (OpenSSH: `[host]:port` unless 22). */
export function knownHostsName(host: string, port: number): string {
    return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's pattern match: `*` any run, `?` one character, case-insensitive. */
function globMatch(pattern: string, name: string): boolean {
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
    return re.test(name);
}

/** Whether a known_hosts hosts field names `name` (hashed `|1|salt|hash`, or patterns with `!` negation). */
export function namesMatch(names: string, name: string): boolean {
    if (names.startsWith("|1|")) {
        const [, , salt, hash] = names.split("|");
        if (!salt || !hash) return false;
        return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
    }
    let matched = false;
    for (const p of names.split(",")) {
        if (p.startsWith("!")) {
            if (globMatch(p.slice(1), name)) return false;
        } else if (globMatch(p, name)) {
            matched = true;
        }
    }
    return matched;
}

/**
 * The key to pin for `name` from known_hosts: the first of PINNABLE_KEY_TYPES the file has for
 * it (a revoked key is never chosen), or why there is none.
 */
export function lookupKnownHosts(kh: KnownHosts, name: string): { key: string } | { reason: string } {
    const all = kh.entries.filter((e) => namesMatch(e.names, name));
    const revoked = new Set(all.filter((e) => e.revoked).map((e) => e.key));
    const usable = all.filter((e) => !e.revoked && !revoked.has(e.key));
    for (const type of PINNABLE_KEY_TYPES) {
        const e = usable.find((x) => x.type === type);
        if (!e) continue;
        const r = parseHostKey(`${e.type} ${e.key}`);
        return "key" in r ? r : { reason: `${kh.source} line ${e.line}: ${r.reason}` };
    }
    if (usable.length > 0) {
        return { reason: `${kh.source} has only ${[...new Set(usable.map((e) => e.type))].join(", ")} for ${name}, none of which can be pinned (${PINNABLE_KEY_TYPES.join(", ")})` };
    }
    return { reason: all.length > 0 ? `${kh.source} lists only revoked keys for ${name}` : `${kh.source} has no entry for ${name}` };
}

/** Whether a `zkmigrate:sshKnownHosts` value is known_hosts text rather than a path: a line break, or an entry's key type. */
export function isKnownHostsText(value: string): boolean {
    return value.includes("\n") || /\s(ssh-|ecdsa-|sk-)/.test(value);
}

/**
 * Reads `zkmigrate:sshKnownHosts`: the text of a known_hosts file (isKnownHostsText), else a
 * path (relative to `baseDir`, the project directory where pulumi runs the program).
 */
export function readKnownHosts(value: string, baseDir: string, issues: ConfigIssue[]): KnownHosts | undefined {
    const path = `${NAMESPACE}:sshKnownHosts`;
    let text = value;
    let source = "zkmigrate:sshKnownHosts";
    if (!isKnownHostsText(value)) {
        const file = isAbsolute(value) ? value : resolve(baseDir, value);
        try {
            text = readFileSync(file, "utf8");
        } catch (err) {
            issues.push({ path, reason: `cannot read the known_hosts file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (a value without a line break or key is a path)` });
            return undefined;
        }
        source = `known_hosts ${file}`;
    }
    const { knownHosts, problems } = parseKnownHosts(text, source);
    for (const p of problems) issues.push({ path, reason: `${source}: ${p}` });
    return problems.length > 0 ? undefined : knownHosts;
}

export interface HostKeyCheck {
    issues: ConfigIssue[];
    /** Hosts reached without a verified key (only with sshHostKeyCheck: false), for the preview. */
    unverified: string[];
}

/**
 * Gives every SSH host of the fleet its key: its own `hostKey`, else the one known_hosts has for
 * the name pulumi connects to. A host without one is a config issue at `<path>.hostKey`, unless
 * `check` is false (then it is listed in `unverified`).
 */
export function pinHostKeys(hosts: { path: string; spec: SshHostSpec }[], port: number, knownHosts: KnownHosts | undefined, check: boolean): HostKeyCheck {
    const issues: ConfigIssue[] = [];
    const unverified: string[] = [];
    for (const { path, spec } of hosts) {
        if (spec.hostKey !== undefined) continue; // the schema checked it
        const connectTo = spec.sshHost ?? spec.host;
        const name = knownHostsName(connectTo, port);
        const found = knownHosts ? lookupKnownHosts(knownHosts, name) : undefined;
        if (found && "key" in found) {
            spec.hostKey = found.key;
            continue;
        }
        if (!check) {
            if (!unverified.includes(connectTo)) unverified.push(connectTo);
            continue;
        }
        const where = knownHosts ? `${found!.reason}; add it there or` : `no zkmigrate:sshKnownHosts is set;`;
        issues.push({
            path: `${path}.hostKey`,
            reason: `no SSH host key for ${connectTo} (${where} set hostKey here, e.g. "ssh-ed25519 AAAAC3Nza..."): ${HOW_TO_COLLECT}`,
        });
    }
    return { issues, unverified };
}
