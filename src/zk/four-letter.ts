// ZooKeeper's four-letter words over plain TCP (the server closes the connection after answering).
import { Socket } from "node:net";
import type { ServerId } from "../types";

/**
 * Why a four-letter word got no usable answer:
 * - `refused`: the server answered that the word is not in its `4lw.commands.whitelist`;
 * - `unreachable`: no TCP connection (refused, no route, unknown host);
 * - `timeout`: connected (or connecting) but no complete answer within the timeout;
 * - `failed`: the connection broke after it was established.
 */
export type FourLetterErrorKind = "refused" | "unreachable" | "timeout" | "failed";

export class FourLetterError extends Error {
    constructor(
        message: string,
        readonly kind: FourLetterErrorKind = "failed",
        readonly word: string = "",
        readonly host: string = "",
        readonly port: number = 0,
    ) {
        super(message);
        this.name = "FourLetterError";
    }
}

/** The answer ZooKeeper 3.5+ gives for a word missing from `4lw.commands.whitelist`. */
export function isWhitelistRefusal(text: string): boolean {
    return /is not executed because it is not in the whitelist/.test(text);
}

/** Sends `word` (srvr, mntr, conf, ruok, ...) and returns the whole answer. */
export function fourLetterWord(host: string, port: number, word: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
        const socket = new Socket();
        const chunks: Buffer[] = [];
        let connected = false;
        let done = false;
        const fail = (kind: FourLetterErrorKind, why: string) => {
            socket.destroy();
            if (done) return;
            done = true;
            reject(new FourLetterError(`${word} on ${host}:${port}: ${why}`, kind, word, host, port));
        };
        // setTimeout on the socket is an idle timeout; this one bounds the whole exchange.
        const timer = setTimeout(() => fail("timeout", `no answer within ${timeoutMs} ms`), timeoutMs);
        socket.once("close", () => clearTimeout(timer));
        socket.once("error", (err) => fail(connected ? "failed" : "unreachable", err.message));
        socket.on("data", (d) => chunks.push(d));
        socket.once("end", () => {
            socket.destroy();
            if (done) return;
            const text = Buffer.concat(chunks).toString("utf8");
            if (isWhitelistRefusal(text)) {
                fail("refused", `refused by the server's 4lw.commands.whitelist (add ${word} to it)`);
            } else {
                done = true;
                resolve(text);
            }
        });
        socket.connect(port, host, () => {
            connected = true;
            socket.end(word);
        });
    });
}

/** `Mode: leader` -> "leader"; undefined when the server is not serving. */
export function parseMode(srvr: string): string | undefined {
    return /^Mode: (\S+)/m.exec(srvr)?.[1];
}

/** Which servers answered `Mode: leader` (known: false when none could be asked, with why). */
export interface LeaderReading {
    leaders: ServerId[];
    known: boolean;
    detail?: string;
    /** The release of each server that answered (`Zookeeper version:`), by myid. */
    versions: Record<ServerId, string>;
}

/** `Zookeeper version: 3.9.5-8c7e..., built on ...` -> `3.9.5` (the text when it has no x.y.z). */
export function parseVersion(srvr: string): string | undefined {
    const text = /^Zookeeper version: *(.+)$/m.exec(srvr)?.[1]?.trim();
    if (text === undefined) return undefined;
    return /^(\d+\.\d+\.\d+)/.exec(text)?.[1] ?? text.split(",")[0].trim();
}

/** Asks every server for its mode, in parallel; the leader(s) restart last. */
export async function probeLeaders(servers: { id: ServerId; address: string; port: number }[], timeoutMs: number): Promise<LeaderReading> {
    const answers = await Promise.allSettled(servers.map((s) => fourLetterWord(s.address, s.port, "srvr", timeoutMs)));
    const leaders: ServerId[] = [];
    const errors: string[] = [];
    const versions: Record<ServerId, string> = {};
    answers.forEach((a, i) => {
        if (a.status === "fulfilled") {
            const version = parseVersion(a.value);
            if (version !== undefined) versions[servers[i].id] = version;
            if (parseMode(a.value) === "leader") leaders.push(servers[i].id);
        } else {
            errors.push(String((a.reason as Error).message));
        }
    });
    if (leaders.length > 0) {
        return { leaders, known: true, versions };
    }
    return { leaders: [], known: false, detail: errors.length > 0 ? errors.join("; ") : "no server answered Mode: leader", versions };
}
