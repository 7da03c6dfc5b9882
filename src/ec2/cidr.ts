// CIDR blocks of the ephemeral EC2 ensembles: parsing, containment, and the refusals that keep a
// security group from opening ZooKeeper or SSH to the Internet. Pure TypeScript.
import { isIP } from "node:net";

export interface Cidr {
    /** As given, e.g. `203.0.113.0/24`. */
    text: string;
    family: 4 | 6;
    /** The network address as an integer (128 bits for IPv6). */
    network: bigint;
    prefix: number;
}

/**
 * The shortest prefixes admitted in a security group rule: 0.0.0.0/0 and ::/0 are the whole
 * Internet, and so is any short prefix in pieces (0.0.0.0/1 + 128.0.0.0/1).
 */
export const MIN_PREFIX: Record<4 | 6, number> = { 4: 8, 6: 16 };

function bitsOf(family: 4 | 6): number {
    return family === 4 ? 32 : 128;
}

/** An IPv4 or IPv6 address as an integer; undefined when it is not an address. */
export function ipToBigInt(ip: string): { family: 4 | 6; value: bigint } | undefined {
    const family = isIP(ip);
    if (family === 4) {
        return { family: 4, value: ip.split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) };
    }
    if (family === 6) {
        let text = ip;
        // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two groups.
        const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
        if (v4) {
            const n = ipToBigInt(v4[1])!.value;
            text = text.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
        }
        const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
        const h = head ? head.split(":") : [];
        const t = tail ? tail.split(":") : [];
        const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
        return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
    }
    return undefined;
}

/** An integer back to its address text (IPv4 dotted; IPv6 uncompressed groups, lower case). */
export function bigIntToIp(family: 4 | 6, value: bigint): string {
    if (family === 4) {
        return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join(".");
    }
    const groups: string[] = [];
    for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
    return groups.join(":");
}

/**
 * Parses `address/prefix`. Throws a plain reason (the caller names the argument): not a CIDR, a
 * bare address, a bad prefix, or host bits set (the network address is suggested).
 */
export function parseCidr(text: string): Cidr {
    if (typeof text !== "string") throw new Error(`expected a CIDR string such as 203.0.113.0/24, got ${JSON.stringify(text)}`);
    const m = /^([^/\s]+)\/(\d{1,3})$/.exec(text);
    if (!m) {
        if (isIP(text) !== 0) {
            throw new Error(`${JSON.stringify(text)} is an address, not a CIDR: write ${text}/${isIP(text) === 4 ? 32 : 128} for this one host`);
        }
        throw new Error(`${JSON.stringify(text)} is not a CIDR block such as 203.0.113.0/24 or 2001:db8::/48`);
    }
    const ip = ipToBigInt(m[1]);
    if (!ip) throw new Error(`${JSON.stringify(text)}: ${JSON.stringify(m[1])} is not an IPv4 or IPv6 address`);
    const prefix = Number(m[2]);
    const bits = bitsOf(ip.family);
    if (prefix > bits) throw new Error(`${JSON.stringify(text)}: the prefix length ${prefix} is more than ${bits}`);
    const hostMask = (1n << BigInt(bits - prefix)) - 1n;
    if ((ip.value & hostMask) !== 0n) {
        const network = bigIntToIp(ip.family, ip.value & ~hostMask);
        throw new Error(`${JSON.stringify(text)} has host bits set: the block is ${ip.family === 6 ? compressIpv6(network) : network}/${prefix}`);
    }
    return { text, family: ip.family, network: ip.value, prefix };
}

function compressIpv6(full: string): string {
    // Longest run of zero groups becomes "::" (enough for messages).
    const groups = full.split(":");
    let best = { at: -1, len: 0 };
    for (let i = 0; i < groups.length; ) {
        if (groups[i] !== "0") {
            i++;
            continue;
        }
        let j = i;
        while (j < groups.length && groups[j] === "0") j++;
        if (j - i > best.len) best = { at: i, len: j - i };
        i = j;
    }
    if (best.len < 2) return full;
    return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.len).join(":")}`;
}

/**
 * A CIDR a security group may admit: parsed, and not the Internet (no /0, nothing shorter than
 * MIN_PREFIX). Throws the reason.
 */
export function checkRuleCidr(text: string): Cidr {
    const c = parseCidr(text);
    if (c.prefix === 0) {
        throw new Error(`${text} admits the whole Internet: name the network that needs access (an office or VPN range, a bastion's /32)`);
    }
    if (c.prefix < MIN_PREFIX[c.family]) {
        throw new Error(
            `${text} is broader than /${MIN_PREFIX[c.family]}: that is a large part of the Internet (short prefixes in pieces are the same as /0); name a narrower range`,
        );
    }
    return c;
}

/** Whether `ip` lies inside `cidr` (same family only). */
export function contains(cidr: Cidr, ip: string): boolean {
    const a = ipToBigInt(ip);
    if (!a || a.family !== cidr.family) return false;
    const shift = BigInt(bitsOf(cidr.family) - cidr.prefix);
    return a.value >> shift === cidr.network >> shift;
}

/** Whether two blocks share an address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
    if (a.family !== b.family) return false;
    const shift = BigInt(bitsOf(a.family) - Math.min(a.prefix, b.prefix));
    return a.network >> shift === b.network >> shift;
}

/** The address `offset` places after the network address of an IPv4 block. */
export function nthAddress(cidr: Cidr, offset: number): string {
    return bigIntToIp(cidr.family, cidr.network + BigInt(offset));
}

/** The number of addresses of a block (2^(bits - prefix)). */
export function sizeOf(cidr: Cidr): bigint {
    return 1n << BigInt(bitsOf(cidr.family) - cidr.prefix);
}
