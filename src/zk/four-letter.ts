// ZooKeeper's four-letter words over plain TCP (the server closes the connection after answering).
import { Socket } from "node:net";
import type { LeaderInfo } from "../plan";
import type { ServerId } from "../types";

export class FourLetterError extends Error {}

/** Sends `word` (srvr, mntr, conf, ruok, ...) and returns the whole answer. */
export function fourLetterWord(host: string, port: number, word: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
        const socket = new Socket();
        const chunks: Buffer[] = [];
        const fail = (why: string) => {
            socket.destroy();
            reject(new FourLetterError(`${word} on ${host}:${port}: ${why}`));
        };
        socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`));
        socket.once("error", (err) => fail(err.message));
        socket.on("data", (d) => chunks.push(d));
        socket.once("end", () => {
            socket.destroy();
            const text = Buffer.concat(chunks).toString("utf8");
            if (/is not executed because it is not in the whitelist/.test(text)) {
                reject(new FourLetterError(`${word} on ${host}:${port}: refused by the server's 4lw.commands.whitelist (add ${word} to it)`));
            } else {
                resolve(text);
            }
        });
        socket.connect(port, host, () => socket.end(word));
    });
}

/** `Mode: leader` -> "leader"; undefined when the server is not serving. */
export function parseMode(srvr: string): string | undefined {
    return /^Mode: (\S+)/m.exec(srvr)?.[1];
}

/** Asks every server for its mode, in parallel; the leader(s) restart last. */
export async function probeLeaders(servers: { id: ServerId; address: string; port: number }[], timeoutMs: number): Promise<LeaderInfo> {
    const answers = await Promise.allSettled(servers.map((s) => fourLetterWord(s.address, s.port, "srvr", timeoutMs)));
    const leaders: ServerId[] = [];
    const errors: string[] = [];
    answers.forEach((a, i) => {
        if (a.status === "fulfilled") {
            if (parseMode(a.value) === "leader") leaders.push(servers[i].id);
        } else {
            errors.push(String((a.reason as Error).message));
        }
    });
    if (leaders.length > 0) {
        return { leaders, known: true };
    }
    return { leaders: [], known: false, detail: errors.length > 0 ? errors.join("; ") : "no server answered Mode: leader" };
}
