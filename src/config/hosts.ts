// Hosts as the resolver sees them, not as text: one canonical form per address, so that two
// spellings of one host are one host in every config rule (src/config/rules.ts).
//
// The policy (README "Hosts"):
// - IPv4 spellings other than the dotted quad (`192.0.2.01`, `0xc0.0.2.1`, `3221225985`,
//   `192.0.2.010`, `192.0.2`, `127.1`) are refused, naming the canonical form. They are not
//   normalized because the programs that read them disagree: the C resolver (inet_aton, used by
//   ssh, getent, iptables) reads `192.0.2.010` as 192.0.2.8 (octal) and `192.0.2` as 192.0.0.2,
//   while Java (ZooKeeper reads zoo.cfg with it) reads octets as decimal (192.0.2.10), or refuses
//   them. One config line would name two hosts.
// - A bracketed IPv6 address (`[2001:db8::1]`) is refused, naming the form without brackets:
//   zkmigrate adds the brackets where a format needs them (zoo.cfg's server lines).
// - Other IPv6 spellings (upper case, leading zeros, no `::`) are unambiguous: accepted, and
//   compared in RFC 5952 form. `::ffff:a.b.c.d` is the IPv4 address a.b.c.d.
// - Names are compared lower-cased without a trailing dot (DNS names are case-insensitive, and
//   `zk1.example.com.` is `zk1.example.com`).
import { isIPv4, isIPv6 } from "node:net";

/**
 * The IPv4 address `s` means to inet_aton(3) (1 to 4 parts; each decimal, 0-prefixed octal or
 * 0x-prefixed hex; the last part fills the remaining bytes), as a 32-bit number; undefined when
 * it is no IPv4 address to the resolver (then it is a name).
 */
export function inetAton(s: string): number | undefined {
    const parts = s.split(".");
    if (parts.length < 1 || parts.length > 4) return undefined;
    const values: number[] = [];
    for (const p of parts) {
        let v: number;
        if (/^0[xX][0-9a-fA-F]*$/.test(p)) v = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
        else if (/^0[0-7]*$/.test(p)) v = parseInt(p, 8);
        else if (/^[1-9][0-9]*$/.test(p)) v = parseInt(p, 10);
        else return undefined;
        if (!Number.isSafeInteger(v)) return undefined;
        values.push(v);
    }
    const last = values.pop()!;
    for (const v of values) if (v > 255) return undefined;
    if (last >= 2 ** (8 * (4 - values.length))) return undefined;
    let n = 0;
    for (const v of values) n = n * 256 + v;
    return n * 2 ** (8 * (4 - values.length)) + last;
}

/** Java's reading of an all-decimal IPv4 literal (each part decimal, leading zeros ignored), or undefined. */
function javaReading(s: string): number | undefined {
    const parts = s.split(".");
    if (parts.length > 4 || !parts.every((p) => /^[0-9]+$/.test(p))) return undefined;
    const values = parts.map((p) => parseInt(p, 10));
    const last = values.pop()!;
    if (values.some((v) => v > 255) || last >= 2 ** (8 * (4 - values.length))) return undefined;
    let n = 0;
    for (const v of values) n = n * 256 + v;
    return n * 2 ** (8 * (4 - values.length)) + last;
}

export function dottedQuad(n: number): string {
    return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

function stripBrackets(h: string): string {
    return /^\[.*\]$/.test(h) ? h.slice(1, -1) : h;
}

/** RFC 5952 text of an IPv6 address (lower case, longest zero run compressed); a v4-mapped one as its IPv4 address. */
function canonicalIPv6(h: string): string {
    const pct = h.indexOf("%");
    const addr = pct < 0 ? h : h.slice(0, pct);
    const zone = pct < 0 ? "" : h.slice(pct);
    // The WHATWG URL parser serializes IPv6 hosts as RFC 5952 does (it has no zones: kept as given).
    const text = new URL(`http://[${addr}]/`).hostname.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
    if (mapped && zone === "") return dottedQuad(parseInt(mapped[1], 16) * 65536 + parseInt(mapped[2], 16));
    return text + zone;
}

/**
 * The form a host is compared in: IPv4 as a dotted quad, IPv6 per RFC 5952 (a v4-mapped address
 * as its IPv4 address), names lower-cased without the trailing dot. Brackets are ignored.
 */
export function canonicalHost(host: string): string {
    const h = stripBrackets(host.trim());
    if (isIPv6(h)) return canonicalIPv6(h);
    const v4 = inetAton(h);
    if (v4 !== undefined) return dottedQuad(v4);
    return h.toLowerCase().replace(/\.$/, "");
}

/** Whether a host is an IP address (in any spelling the resolver takes), not a name. */
export function isAddress(host: string): boolean {
    const h = stripBrackets(host.trim());
    return isIPv6(h) || inetAton(h) !== undefined;
}

/**
 * Why a host's spelling is refused (see the policy above), naming the canonical form; undefined
 * when it is fine (a dotted quad, an IPv6 address, or a name).
 */
export function hostSpellingIssue(host: string): string | undefined {
    if (/^\[.*\]$/.test(host)) {
        const inner = host.slice(1, -1);
        if (isIPv6(inner)) return `write the IPv6 address without brackets: ${canonicalIPv6(inner)} (zkmigrate adds them where a format needs them)`;
        return "not an IP address or host name (brackets hold only an IPv6 address)";
    }
    if (isIPv4(host) || isIPv6(host)) return undefined;
    const v4 = inetAton(host);
    const java = javaReading(host);
    if (v4 === undefined) {
        if (java === undefined) return undefined;
        return `"${host}" is an ambiguous IPv4 spelling: Java (ZooKeeper reads zoo.cfg with it) reads it as ${dottedQuad(java)}, while the C resolver (inet_aton: ssh, getent, iptables) does not take it as an address (a part with a leading 0 is octal, and 8 and 9 are no octal digits); write the dotted quad ${dottedQuad(java)}`;
    }
    const canonical = dottedQuad(v4);
    const readings =
        java === undefined
            ? `the C resolver (inet_aton: ssh, getent, iptables) reads it as ${canonical}, while Java (ZooKeeper reads zoo.cfg with it) does not take it as an address and looks it up as a name`
            : java !== v4
              ? `the C resolver (inet_aton: ssh, getent, iptables) reads it as ${canonical} (a part with a leading 0 is octal), but Java (ZooKeeper reads zoo.cfg with it) as ${dottedQuad(java)}`
              : `it is ${canonical} only to resolvers that take inet_aton's forms (a leading 0 makes a part octal, short and integer forms fill the last bytes)`;
    const want = java !== undefined && java !== v4 ? `the dotted quad you mean (${canonical} or ${dottedQuad(java)})` : `the dotted quad ${canonical}`;
    return `"${host}" is an ambiguous IPv4 spelling: ${readings}; write ${want}`;
}

/** A host name or IP address: the syntax, then the spelling policy above. */
export function hostSyntaxIssue(host: string): string | undefined {
    const h = host.replace(/\.$/, "");
    if (h.length === 0) return "not an IP address or host name";
    if (/^\[.*\]$/.test(host) || isIPv4(host) || isIPv6(host)) return hostSpellingIssue(host);
    if (h !== host && inetAton(h) !== undefined) return `write the address without the trailing dot: ${dottedQuad(inetAton(h)!)}`;
    if (!/^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(h)) {
        return "not an IP address or host name";
    }
    return hostSpellingIssue(host);
}
