// Fake four-letter-word servers on 127.0.0.1 and a runner of the CLI as a child process.
import { execFile } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";

export const REPO = join(__dirname, "..", "..", "..");

export interface Fake {
    server: Server;
    port: number;
    /** Words received, in order. */
    words: string[];
    close(): void;
}

/** A server that answers each word with `answer(word)`; undefined: never answers (silent). */
export function fakeFourLetterServer(answer: (word: string) => string | undefined): Promise<Fake> {
    return new Promise((resolve) => {
        const sockets = new Set<Socket>();
        const words: string[] = [];
        // allowHalfOpen: a silent server must not close just because the client finished sending.
        const server = createServer({ allowHalfOpen: true }, (sock) => {
            sockets.add(sock);
            sock.on("close", () => sockets.delete(sock));
            sock.on("error", () => {});
            sock.once("data", (d) => {
                const word = d.toString().trim();
                words.push(word);
                const a = answer(word);
                if (a === undefined) return;
                sock.end(a);
            });
        });
        server.listen(0, "127.0.0.1", () =>
            resolve({
                server,
                port: (server.address() as { port: number }).port,
                words,
                close() {
                    for (const s of sockets) s.destroy();
                    server.close();
                },
            }),
        );
    });
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export function closedPort(): Promise<number> {
    return new Promise((resolve) => {
        const s = createServer();
        s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as { port: number }).port;
            s.close(() => resolve(port));
        });
    });
}

export interface CliResult {
    code: number;
    stdout: string;
    stderr: string;
}

/**
 * Runs `node --import tsx cli/zkmigrate.ts ...args` (asynchronously: fakes in this process keep
 * answering); `o.bin` runs the package's bin (cli/zkmigrate.cjs) instead, `o.nodeArgs` go before it.
 */
export function runCli(args: string[], timeoutMs = 60000, o: { bin?: boolean; nodeArgs?: string[]; cwd?: string } = {}): Promise<CliResult> {
    const entry = o.bin ? [join(REPO, "cli", "zkmigrate.cjs")] : ["--import", "tsx", join(REPO, "cli", "zkmigrate.ts")];
    return new Promise((resolve, reject) => {
        execFile(
            process.execPath,
            [...(o.nodeArgs ?? []), ...entry, ...args],
            { cwd: o.cwd ?? REPO, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
            (err, stdout, stderr) => {
                if (err && typeof (err as { code?: unknown }).code !== "number") {
                    reject(new Error(`zkmigrate ${args.join(" ")}: ${err.message}\n${stderr}`));
                    return;
                }
                resolve({ code: err ? ((err as { code: number }).code ?? 0) : 0, stdout, stderr });
            },
        );
    });
}
