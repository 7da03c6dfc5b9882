// ZooKeeper connect strings: `host:port,host:port[/chroot]`, IPv6 literals in brackets
// (`[::1]:2181`), the port defaulting to 2181. The one type, formatter and parser of the project:
// the model (where clients point), the host scripts (Kafka's zookeeper.connect), the client tools
// (smoke, status, copy) and the policy pack all use these.
import { isIP, isIPv6 } from "node:net";

export const DEFAULT_CLIENT_PORT = 2181;

export interface ZkServerAddress {
    /** A hostname, an IPv4 address or an IPv6 address without its brackets. */
    host: string;
    port: number;
    /** The server's myid, when the model knows it (never part of the text form). */
    id?: number;
}

export interface ConnectString {
    servers: ZkServerAddress[];
    /** The chroot path (`/kafka`), or undefined when there is none (no path, or just `/`). */
    chroot?: string;
}

/** A connect string that cannot be parsed; the message says what and where. */
export class ConnectStringError extends Error {}

// RFC 1123 labels; underscores are accepted too (they occur in real internal names).
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** Parses `host:port,host:port[/chroot]`; throws ConnectStringError with the reason. */
export function parseConnectString(input: string): ConnectString {
    const text = input.trim();
    const fail = (why: string): never => {
        throw new ConnectStringError(`invalid connect string ${JSON.stringify(input)}: ${why}`);
    };
    if (text === "") fail("it is empty (expected host:port[,host:port...][/chroot])");
    const slash = text.indexOf("/");
    const hostList = slash === -1 ? text : text.slice(0, slash);
    const chrootText = slash === -1 ? undefined : text.slice(slash);
    let chroot: string | undefined;
    if (chrootText !== undefined && chrootText !== "/") {
        const problem = chrootProblem(chrootText);
        if (problem) fail(`chroot ${JSON.stringify(chrootText)} ${problem}`);
        chroot = chrootText;
    }
    if (hostList.trim() === "") fail("no server before the chroot (expected host:port[,host:port...][/chroot])");
    const servers = hostList.split(",").map((entry, i) => parseServer(entry.trim(), i + 1, fail));
    return chroot === undefined ? { servers } : { servers, chroot };
}

function parseServer(entry: string, position: number, fail: (why: string) => never): ZkServerAddress {
    const where = `server ${position}`;
    if (entry === "") fail(`${where} is empty (two commas in a row, or a comma at an end)`);
    let host: string;
    let portText: string | undefined;
    if (entry.startsWith("[")) {
        const close = entry.indexOf("]");
        if (close === -1) fail(`${where} ${JSON.stringify(entry)}: "[" without a closing "]"`);
        host = entry.slice(1, close);
        const rest = entry.slice(close + 1);
        if (rest !== "") {
            if (!rest.startsWith(":")) fail(`${where} ${JSON.stringify(entry)}: expected ":port" after "]"`);
            portText = rest.slice(1);
        }
        if (!isIPv6(host)) fail(`${where} ${JSON.stringify(entry)}: ${JSON.stringify(host)} is not an IPv6 address (only IPv6 addresses go in brackets)`);
    } else {
        const colons = entry.split(":").length - 1;
        if (colons > 1) {
            fail(`${where} ${JSON.stringify(entry)}: an IPv6 address must be written in brackets, e.g. [::1]:2181`);
        }
        const colon = entry.indexOf(":");
        host = colon === -1 ? entry : entry.slice(0, colon);
        portText = colon === -1 ? undefined : entry.slice(colon + 1);
        if (host === "") fail(`${where} ${JSON.stringify(entry)}: no host before ":"`);
        if (isIP(host) === 0 && !HOSTNAME.test(host)) fail(`${where} ${JSON.stringify(entry)}: ${JSON.stringify(host)} is not a valid hostname or address`);
    }
    let port = DEFAULT_CLIENT_PORT;
    if (portText !== undefined) {
        if (!/^\d{1,5}$/.test(portText)) fail(`${where} ${JSON.stringify(entry)}: port ${JSON.stringify(portText)} is not a number`);
        port = Number(portText);
        if (port < 1 || port > 65535) fail(`${where} ${JSON.stringify(entry)}: port ${port} is outside 1..65535`);
    }
    return { host, port };
}

/** Why `path` is not a valid ZooKeeper path (the rules of ZooKeeper's PathUtils), or undefined. */
export function chrootProblem(path: string): string | undefined {
    if (!path.startsWith("/")) return "must start with /";
    if (path.length > 1 && path.endsWith("/")) return "must not end with /";
    if (path.includes("//")) return "must not contain an empty component (//)";
    for (const part of path.split("/").slice(1)) {
        if (part === "." || part === "..") return `must not contain a relative component (${part})`;
    }
    for (const ch of path) {
        const c = ch.codePointAt(0)!;
        if (c === 0) return "must not contain the null character";
        if ((c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff0 && c <= 0xffff) || c > 0xffff) {
            return `must not contain the character U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
        }
    }
    return undefined;
}

/** A connect string of `servers` (by myid) on one client port, with an optional chroot. */
export function connectStringOf(servers: { id: number; host: string }[], port: number, chroot?: string): ConnectString {
    const list = servers.map((s) => ({ id: s.id, host: s.host, port }));
    return chroot === undefined ? { servers: list } : { servers: list, chroot };
}

/** `host:port`, with an IPv6 address in brackets. */
export function formatServer(s: ZkServerAddress): string {
    return s.host.includes(":") ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** The connect string of one server with the chroot: what a session to just that server uses. */
export function singleServerConnectString(s: ZkServerAddress, chroot?: string): string {
    return formatServer(s) + (chroot ?? "");
}

/** The whole connect string back, normalised (ports explicit). */
export function formatConnectString(c: ConnectString): string {
    return c.servers.map(formatServer).join(",") + (c.chroot ?? "");
}
