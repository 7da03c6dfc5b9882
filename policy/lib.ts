// Helpers shared by the policies: values unknown at preview, the parameters of zkmigrate's rendered
// host scripts, zoo.cfg text, ports and address ranges. Pure functions; the policies read
// resources through them.
import { parseConnectString } from "../src/format/connect-string";
import type { MemberLine, Membership } from "../src/types";

/** Whether `e` is @pulumi/policy's UnknownValueError: a value that is computed only during the update. */
export function isUnknownError(e: unknown): boolean {
    return e instanceof Error && (e.constructor?.name === "UnknownValueError" || /can't be known during preview$/.test(e.message));
}

/**
 * Evaluates `read` and returns undefined when it touches a value that is unknown at preview, so
 * that a policy skips that value and still judges the rest (instead of @pulumi/policy's default,
 * which abandons the whole policy with an advisory "can't run during preview").
 */
export function known<T>(read: () => T): T | undefined {
    try {
        return read();
    } catch (e) {
        if (isUnknownError(e)) return undefined;
        throw e;
    }
}

/** What `read` returns when the value it reads is unknown at preview. */
export const UNKNOWN: unique symbol = Symbol("unknown at preview");

/** Evaluates `read`: its value, undefined when absent, or UNKNOWN when unknown at preview. */
export function read<T>(get: () => T): T | typeof UNKNOWN {
    try {
        return get();
    } catch (e) {
        if (isUnknownError(e)) return UNKNOWN;
        throw e;
    }
}

/** `v` as an array of plain values (a proxied array copied element by element, unknowns dropped). */
export function knownArray<T = unknown>(read: () => unknown): T[] {
    const v = known(read);
    if (!Array.isArray(v)) return [];
    const out: T[] = [];
    for (let i = 0; i < v.length; i++) {
        const x = known(() => v[i] as T);
        if (x !== undefined) out.push(x);
    }
    return out;
}

/** A string, or undefined when absent, unknown or not a string. */
export function knownString(read: () => unknown): string | undefined {
    const v = known(read);
    return typeof v === "string" ? v : undefined;
}

/** Every string inside `value` with its property path (`create`, `environment.KEY`, `data["zoo.cfg"]`). */
export function stringsIn(value: unknown, path = ""): { path: string; text: string }[] {
    const v = known(() => value);
    if (typeof v === "string") return [{ path, text: v }];
    if (v === null || typeof v !== "object") return [];
    const out: { path: string; text: string }[] = [];
    const keys = known(() => Object.keys(v)) ?? [];
    for (const k of keys) {
        const sub = Array.isArray(v) ? `${path}[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? (path ? `${path}.${k}` : k) : `${path}[${JSON.stringify(k)}]`;
        out.push(...stringsIn(known(() => (v as Record<string, unknown>)[k]), sub));
    }
    return out;
}

// ---- Rendered host scripts (src/scripts/shell.ts renderScript): `readonly NAME='value'` lines. ----

/** The words of a line of POSIX shell made of single-quoted strings and `\'`: `'a' 'b'\''c'`. */
function shellWords(s: string): string[] | undefined {
    const words: string[] = [];
    let i = 0;
    while (i < s.length) {
        while (s[i] === " ") i++;
        if (i >= s.length) break;
        let word = "";
        while (i < s.length && s[i] !== " ") {
            if (s[i] === "'") {
                const end = s.indexOf("'", i + 1);
                if (end < 0) return undefined;
                word += s.slice(i + 1, end);
                i = end + 1;
            } else if (s[i] === "\\" && i + 1 < s.length) {
                word += s[i + 1];
                i += 2;
            } else {
                return undefined; // not a form renderScript writes
            }
        }
        words.push(word);
    }
    return words;
}

/** The parameters of a script rendered by src/scripts (scalars and `readonly -a` arrays). */
export function scriptParams(script: string): Map<string, string | string[]> {
    const out = new Map<string, string | string[]>();
    for (const line of script.split("\n")) {
        const m = /^readonly (-a )?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
        if (!m) continue;
        if (m[1]) {
            const inner = /^\((.*)\)$/.exec(m[3]);
            const words = inner ? shellWords(inner[1]) : undefined;
            if (words) out.set(m[2], words);
        } else {
            const words = shellWords(m[3]);
            if (words && words.length === 1) out.set(m[2], words[0]);
        }
    }
    return out;
}

/** `server.N=address:peer:election[:participant|:observer][;client]` (IPv6 in brackets) as a member line; an observer keeps its flag. */
export function parseServerLine(line: string): MemberLine | undefined {
    const m = /^\s*server\.(\d+)\s*=\s*(\[[^\]]+\]|[^:\s]+):(\d+):(\d+)(?::(participant|observer))?/.exec(line);
    if (!m) return undefined;
    return { id: Number(m[1]), address: m[2].replace(/^\[|\]$/g, ""), peerPort: Number(m[3]), electionPort: Number(m[4]), ...(m[5] === "observer" ? { observer: true as const } : {}) };
}

/** A membership from `server.N=` lines and an optional `quorumListenOnAllIPs=` line. */
export function parseMembership(lines: readonly string[]): Membership {
    const members: MemberLine[] = [];
    let quorumListenOnAllIPs = false;
    for (const line of lines) {
        const m = parseServerLine(line);
        if (m) members.push(m);
        const q = /^\s*quorumListenOnAllIPs\s*=\s*(\S+)/.exec(line);
        if (q) quorumListenOnAllIPs = q[1] === "true";
    }
    members.sort((a, b) => a.id - b.id);
    return { members, quorumListenOnAllIPs };
}

/** The membership written by a config script (SERVER_LINES, QUORUM_LISTEN_ON_ALL_IPS). */
export function writtenMembership(params: Map<string, string | string[]>): Membership | undefined {
    const lines = params.get("SERVER_LINES");
    if (!Array.isArray(lines)) return undefined;
    return parseMembership([...lines, `quorumListenOnAllIPs=${params.get("QUORUM_LISTEN_ON_ALL_IPS") ?? "false"}`]);
}

/**
 * What a restart resource's update leaves running: its EXPECTED_MEMBERSHIP, or (a reconfig
 * mitosis's start, src/scripts/reconfig.ts) its SEED_LINES, or stopped.
 */
export function restartOutcome(params: Map<string, string | string[]>): { running: boolean; membership?: Membership } | undefined {
    const expected = params.get("EXPECTED_MEMBERSHIP");
    if (Array.isArray(expected)) return { running: true, membership: parseMembership(expected) };
    const seed = params.get("SEED_LINES");
    if (Array.isArray(seed)) return { running: true, membership: parseMembership(seed) };
    if (params.has("DISABLE") && params.has("SERVICE_STOP")) return { running: false };
    return undefined;
}

export function membershipIds(m: Membership): number[] {
    return m.members.map((l) => l.id);
}

// ---- zoo.cfg text. ----

/** `key=value` settings of a zoo.cfg-like text, also as Java properties (`-Dzookeeper.key=value`). */
export function zooSettings(text: string): { key: string; value: string }[] {
    const out: { key: string; value: string }[] = [];
    for (const raw of text.split("\n")) {
        const line = raw.trim();
        if (line.startsWith("#")) continue;
        const re = /(?:^|\s|-D|["'])((?:zookeeper\.)?(?:admin\.enableServer|admin\.serverAddress|admin\.serverPort|4lw\.commands\.whitelist))\s*=\s*([^\s"',]*(?:\s*,\s*[^\s"',]*)*)/g;
        for (let m = re.exec(line); m; m = re.exec(line)) {
            out.push({ key: m[1].replace(/^zookeeper\./, ""), value: m[2] });
        }
    }
    return out;
}

/** A complete zoo.cfg (not a fragment): it names the data directory and a port or the members. */
export function isCompleteZooCfg(text: string): boolean {
    return /^\s*dataDir\s*=/m.test(text) && /^\s*(clientPort|server\.\d+)\s*=/m.test(text);
}

export function isLoopback(address: string): boolean {
    const a = address.replace(/^\[|\]$/g, "").toLowerCase();
    return a === "localhost" || a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

// ---- Ports and address ranges. ----

/** 0.0.0.0/0 or ::/0 (and their spelled-out forms). */
export function isWorldCidr(cidr: string): boolean {
    const c = cidr.trim().toLowerCase();
    return c === "0.0.0.0/0" || c === "::/0" || c === "0:0:0:0:0:0:0:0/0";
}

/** The listed ports that a rule with protocol `protocol` from `from` to `to` opens. */
export function openedPorts(protocol: unknown, from: unknown, to: unknown, ports: readonly number[]): number[] {
    const p = String(protocol ?? "").toLowerCase();
    if (p === "-1" || p === "all") return [...ports]; // every protocol, every port
    if (p !== "tcp" && p !== "6") return [];
    const lo = typeof from === "number" ? from : Number(from);
    const hi = typeof to === "number" ? to : Number(to);
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
    // 0-0 with TCP is no port range AWS accepts; -1/-1 is "all" on some rule types.
    if (lo === -1 && hi === -1) return [...ports];
    return ports.filter((port) => port >= lo && port <= hi);
}

/** A published connect string's servers (the project's one parser, src/format); none when it does not parse. */
export function parseConnect(connect: string): { address: string; port: number }[] {
    try {
        return parseConnectString(connect).servers.map((s) => ({ address: s.host, port: s.port }));
    } catch {
        return [];
    }
}

export function chrootOf(connect: string): string | undefined {
    try {
        return parseConnectString(connect).chroot;
    } catch {
        return undefined;
    }
}
