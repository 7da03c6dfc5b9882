// The block-copy rehearsal's stand-in client: a real process on a fleet host that writes sequence
// numbers under <connect>/seq (one persistent znode each, `n-<number>`), one after the other, and
// appends each number ZooKeeper acknowledged to its ack log. SIGTERM (the clients' block
// command) lets the write in flight finish, then it exits; started again (the switch command,
// against ZK_CONNECT) it goes on from the last acknowledged number. The loss check compares the
// ack log with what the target holds.
//   node --import tsx rehearsal/block-copy-client.ts <connect-with-path> <ack-log> <pid-file>
import { appendFileSync, existsSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import * as zookeeper from "node-zookeeper-client";
import { call, connectClient } from "../src/zk/session";

/** The numbers an ack log holds. */
export function readAcks(file: string): number[] {
    if (!existsSync(file)) return [];
    return readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => Number(l.split(" ")[0]));
}

/** The commands of the client host: start (against $ZK_CONNECT), stop (bounded, once it no longer writes). */
export function clientCommands(o: { repo: string; ackLog: string; pidFile: string }): { start: string; stop: string } {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const start =
        // `cd` apart from the `&` list: a backgrounded `cd && node` is a subshell that keeps the
        // SSH session's output open as long as the client runs.
        `: "\${ZK_CONNECT:?ZK_CONNECT is not set}"; cd ${q(o.repo)} || exit 1; ` +
        `setsid node --import tsx rehearsal/block-copy-client.ts "$ZK_CONNECT" ${q(o.ackLog)} ${q(o.pidFile)} >>${q(`${o.ackLog}.out`)} 2>&1 < /dev/null & ` +
        // Started: its pid file exists (it writes it once its session is up).
        `for i in $(seq 1 200); do [ -s ${q(o.pidFile)} ] && exit 0; sleep 0.1; done; echo "the stand-in client did not start; see ${o.ackLog}.out" >&2; exit 1`;
    const stop =
        `[ -s ${q(o.pidFile)} ] || exit 0; pid=$(cat ${q(o.pidFile)}); kill -TERM "$pid" 2>/dev/null || { rm -f ${q(o.pidFile)}; exit 0; }; ` +
        `for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || { rm -f ${q(o.pidFile)}; exit 0; }; sleep 0.1; done; echo "the stand-in client (pid $pid) did not stop within 20 s" >&2; exit 1`;
    return { start, stop };
}

async function main(): Promise<void> {
    const [connect, ackLog, pidFile] = process.argv.slice(2);
    if (!connect || !ackLog || !pidFile) {
        console.error("usage: block-copy-client.ts <connect-with-path> <ack-log> <pid-file>");
        process.exit(2);
    }
    let stopping = false;
    process.on("SIGTERM", () => (stopping = true));
    const acks = readAcks(ackLog);
    let n = acks.length > 0 ? Math.max(...acks) + 1 : 1;
    const c = await connectClient(connect, 20_000, 10_000);
    const p = <T>(f: (cb: (err: unknown, v?: T) => void) => void) => call<T>("write", 10_000, f);
    await p((cb) => c.mkdirp("/seq", cb)).catch(() => undefined);
    writeFileSync(pidFile, `${process.pid}\n`);
    console.error(`stand-in client ${process.pid}: writing from ${n} to ${connect}`);
    while (!stopping) {
        try {
            await p((cb) => c.create(`/seq/n-${n}`, Buffer.from(String(n)), zookeeper.CreateMode.PERSISTENT, cb));
            appendFileSync(ackLog, `${n} ${Date.now()}\n`);
            n++;
        } catch (e) {
            const code = (e as { code?: number }).code;
            // Already there: the create was applied but its answer lost; count it as written.
            if (code === zookeeper.Exception.NODE_EXISTS) {
                appendFileSync(ackLog, `${n} ${Date.now()}\n`);
                n++;
                continue;
            }
            console.error(`stand-in client: write ${n} failed: ${(e as Error).message}`);
            await new Promise((r) => setTimeout(r, 200));
        }
        await new Promise((r) => setTimeout(r, 20));
    }
    c.close();
    console.error(`stand-in client ${process.pid}: stopped after ${n - 1}`);
    try {
        unlinkSync(pidFile);
    } catch {
        // the stop command removes it too
    }
    process.exit(0);
}

if (require.main === module) {
    main().catch((e) => {
        console.error(`stand-in client: ${(e as Error).message}`);
        process.exit(1);
    });
}
