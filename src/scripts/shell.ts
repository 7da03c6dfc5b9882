// Shell building blocks shared by every rendered script: quoting, the remote wrapper, the
// script skeleton, and input validation (a rendered script must never depend on escaping luck).
import { isIP } from "node:net";

/** POSIX single-quote quoting: the result is one shell word whose value is exactly `s`. */
export function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

const DELIMITER = "ZKMIGRATE_SCRIPT";

/**
 * Runs `script` under bash whatever the login shell of the SSH user is (sh, dash, zsh...).
 * The quoted heredoc delimiter keeps the outer shell from expanding anything in the script.
 */
export function asRemoteCommand(script: string): string {
    const body = script.endsWith("\n") ? script.slice(0, -1) : script;
    if (body.split("\n").includes(DELIMITER)) {
        throw new Error(`asRemoteCommand: the script contains a line "${DELIMITER}", which would end the heredoc early`);
    }
    return `bash -s <<'${DELIMITER}'\n${body}\n${DELIMITER}\n`;
}

/**
 * A template tag for bash code: like String.raw (bash keeps its backslashes), except that `\${`
 * gives `${`, so bash expansions are written `\${x}` and are never TypeScript interpolations.
 */
export function sh(strings: TemplateStringsArray, ...values: unknown[]): string {
    return String.raw({ raw: strings.raw }, ...values).replace(/\\\$\{/g, "${");
}

export type ParamValue = string | number | boolean | readonly string[];

/** `readonly NAME='value'` (or a readonly array): parameters show up verbatim in a preview diff. */
function paramLine(name: string, value: ParamValue): string {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`bad parameter name ${name}`);
    if (Array.isArray(value)) {
        return `readonly -a ${name}=(${value.map(shellQuote).join(" ")})`;
    }
    return `readonly ${name}=${shellQuote(String(value))}`;
}

export interface ScriptParts {
    /** One line: what the script is for (a comment under the shebang). */
    title: string;
    params: [string, ParamValue][];
    /** Bash function definitions (from lib.ts and the script's own). */
    functions: string[];
    /** The body of `main`. */
    main: string;
}

/**
 * The skeleton of every script. Everything runs inside `main`, which bash parses completely
 * before running it: under `bash -s` the rest of the script is still unread on stdin, and a
 * child that reads stdin (a service command, sudo) would otherwise eat it. `main` gets
 * /dev/null as stdin for the same reason.
 */
export function renderScript(p: ScriptParts): string {
    const lines = [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        `# zkmigrate: ${p.title}`,
        "",
        "# Parameters.",
        ...p.params.map(([n, v]) => paramLine(n, v)),
        "",
        "# C locale: error texts (Connection refused) and sorting must not depend on the host's locale.",
        "export LC_ALL=C",
        "# iptables and friends live in sbin, which a non-root SSH session often lacks.",
        'PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/sbin:/sbin"',
        "export PATH",
        "# Command substitutions fail like the rest of the script (bash >= 4.4; older bash ignores it).",
        "shopt -s inherit_errexit 2>/dev/null || true",
        "",
        // A group named twice (two groups that need a third) is written once.
        ...[...new Set(p.functions)].map((f) => f.trim() + "\n"),
        "main() {",
        indent(p.main.trim()),
        "}",
        "",
        "main </dev/null",
        "",
    ];
    return lines.join("\n");
}

function indent(body: string): string {
    return body
        .split("\n")
        .map((l) => (l.length > 0 ? `    ${l}` : l))
        .join("\n");
}

// ---- Validation: reject at render time what would make a broken or ambiguous script. ----

export function fail(what: string): never {
    throw new Error(`zkmigrate scripts: ${what}`);
}

export function checkInt(name: string, v: number, min: number, max: number): void {
    if (!Number.isInteger(v) || v < min || v > max) fail(`${name} must be an integer in ${min}..${max}, got ${v}`);
}

export function checkPort(name: string, v: number): void {
    checkInt(name, v, 1, 65535);
}

/** Absolute, single-line paths: they end up in file names, config lines and messages. */
export function checkPath(name: string, p: string): void {
    if (!p.startsWith("/") || /[\n\r\0]/.test(p) || p.length > 4096) fail(`${name} must be an absolute path on one line, got ${JSON.stringify(p)}`);
}

/** A host name or IP address (no spaces, slashes or control characters). */
export function checkAddress(name: string, a: string): void {
    if (!/^[A-Za-z0-9._:%\-\[\]]{1,253}$/.test(a)) fail(`${name} must be a host name or IP address, got ${JSON.stringify(a)}`);
}

/** A one-line, non-empty string (service commands may be any shell text, but on one line is saner for logs). */
export function checkText(name: string, s: string): void {
    if (s.trim().length === 0 || /[\0]/.test(s)) fail(`${name} must be a non-empty command, got ${JSON.stringify(s)}`);
}

/** An IPv4 or IPv6 address, optionally a CIDR; returns the IP family. */
export function ipFamily(peer: string): 4 | 6 {
    const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(peer);
    const family = m && !m[1].includes("%") ? isIP(m[1]) : 0;
    if (!m || family === 0) fail(`firewall peer ${JSON.stringify(peer)} is not an IPv4/IPv6 address or CIDR`);
    if (m[2] !== undefined && Number(m[2]) > (family === 4 ? 32 : 128)) fail(`firewall peer ${JSON.stringify(peer)} has a bad prefix length`);
    return family as 4 | 6;
}
