// `zkmigrate smoke`: phunt's zk-smoketest redone for ZooKeeper 3.5+ with node-zookeeper-client.
// Every server of the connect string is tested on its own (a session of just that server, the
// chroot kept): create/get/set/delete under a unique path, a watch set through one server's
// session that a write through another fires, an ephemeral node created through one server
// and seen through another after a sync, and the latency of every operation.
import { randomBytes } from "node:crypto";
import * as zookeeper from "node-zookeeper-client";
import { type ConnectString, formatConnectString, formatServer, type ZkServerAddress } from "../format/connect-string";
import { FourLetterError, fourLetterWord } from "./four-letter";
import { isNotServing, parseSrvr } from "./four-letter-answers";
import { call, closeSession, openSession, type Session, syncBarrier, waitForLiveSession, ZkOperationError } from "./session";
import { formatTable } from "./table";

export interface SmokeOptions {
    /** Bound of the session setup, of every operation and of every watch wait. */
    timeoutMs: number;
    /** create/get/set/watch/delete rounds per server (latency samples). */
    count: number;
    /**
     * The parent of the test znodes (default /zkmigrate-smoke); each run works in
     * `<parent>/<random>-<N>` and removes the parent when it is left empty. One fixed top-level
     * znode, because ZooKeeper 3.7+ keeps read/write metrics per top-level znode (namespace) in
     * memory: a new top-level name per run would add metrics to mntr for good.
     */
    parent?: string;
    /** Progress lines (e.g. to stderr). */
    log?: (line: string) => void;
}

/** The operations timed, in the order they run. */
export const SMOKE_OPS = ["connect", "create", "get", "get-peer", "set", "watch", "delete", "ephemeral", "sync-peer", "exists-peer"] as const;
export type SmokeOp = (typeof SMOKE_OPS)[number];

export interface LatencyStats {
    op: SmokeOp;
    samples: number;
    minMs: number;
    medianMs: number;
    maxMs: number;
}

export interface ServerSmoke {
    /** `host:port`. */
    server: string;
    /** The server whose session watched and read what this server's session wrote. */
    peer?: string;
    /** Whether a session with this server was established. */
    session: boolean;
    /** The test znode of this server (under the chroot). */
    path: string;
    ok: boolean;
    latencies: LatencyStats[];
    /** What failed, each naming the server (and the peer) where it failed. */
    failures: string[];
}

export interface SmokeReport {
    connect: string;
    chroot?: string;
    /** The common prefix of the test znodes (`/zkmigrate-smoke/<random>`). */
    root: string;
    servers: ServerSmoke[];
    cleanup: { ok: boolean; failures: string[] };
    ok: boolean;
    /** 0 ok, 1 something failed, 3 no server gave a session. */
    exitCode: 0 | 1 | 3;
    summary: string;
}

/** min/median/max of the samples (median of an even count: mean of the middle two). */
export function latencyStats(op: SmokeOp, samples: number[]): LatencyStats {
    const sorted = [...samples].sort((a, b) => a - b);
    const n = sorted.length;
    const median = n === 0 ? NaN : n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    const r = (x: number) => Math.round(x * 1000) / 1000;
    return { op, samples: n, minMs: r(sorted[0] ?? NaN), medianMs: r(median), maxMs: r(sorted[n - 1] ?? NaN) };
}

/** Why a server gave no session: asks `srvr` to tell "refused" from "not serving" from "slow". */
async function diagnose(s: ZkServerAddress, timeoutMs: number): Promise<string> {
    try {
        const text = await fourLetterWord(s.host, s.port, "srvr", Math.min(timeoutMs, 2000));
        if (isNotServing(text)) return "the server is not serving requests (no quorum, or still starting)";
        const mode = parseSrvr(text).mode;
        return mode ? `the server answers srvr (Mode: ${mode}) but gave no session` : "the server answers srvr but gave no session";
    } catch (e) {
        if (e instanceof FourLetterError) {
            if (e.kind === "refused") return "the server accepts connections (srvr is not in its 4lw.commands.whitelist) but gave no session";
            if (e.kind === "unreachable") return e.message.replace(/^srvr on \S+: /, "");
            return "the server accepts connections but does not answer";
        }
        return String(e);
    }
}

class Recorder {
    readonly samples = new Map<SmokeOp, number[]>();
    add(op: SmokeOp, ms: number) {
        const list = this.samples.get(op) ?? [];
        list.push(ms);
        this.samples.set(op, list);
    }
    async time<T>(op: SmokeOp, f: () => Promise<T>): Promise<T> {
        const t0 = performance.now();
        const v = await f();
        this.add(op, performance.now() - t0);
        return v;
    }
    stats(): LatencyStats[] {
        return SMOKE_OPS.filter((op) => this.samples.has(op)).map((op) => latencyStats(op, this.samples.get(op)!));
    }
}

const text = (b: Buffer | undefined) => (b ? b.toString("utf8") : "");

/** A failure that already says what and where. */
class SmokeFailure extends Error {}

/** Runs the checks of one server through `own`, with `peer` (another server's session) watching and reading. */
async function smokeServer(own: Session, peer: Session, parent: string, path: string, chroot: string | undefined, rec: Recorder, opts: SmokeOptions): Promise<void> {
    const t = opts.timeoutMs;
    const at = (s: Session) => (s === own ? `through ${own.server}` : `through peer ${peer.server}`) + (s.alive() ? "" : `; the session with ${s.server} is disconnected`);
    const timed = async <T>(op: SmokeOp, s: Session, f: () => Promise<T>): Promise<T> => {
        try {
            return await rec.time(op, f);
        } catch (e) {
            throw new SmokeFailure(`${e instanceof Error ? e.message : String(e)} (${at(s)})`);
        }
    };
    const step = <T>(op: SmokeOp, s: Session, what: string, f: (cb: (err: unknown, v?: T) => void) => void): Promise<T> =>
        timed(op, s, () => call<T>(what, t, f));
    const createParent = async () => {
        try {
            await call<string>(`create ${parent}`, t, (cb) => own.client.create(parent, cb));
        } catch (e) {
            if (!(e instanceof ZkOperationError && e.code === "NODE_EXISTS")) throw e;
        }
    };
    try {
        await createParent().catch((e: Error) => {
            throw new SmokeFailure(`${e.message} (${at(own)})`);
        });
        try {
            await step<string>("create", own, `create ${path}`, (cb) => own.client.create(path, Buffer.from("smoke"), zookeeper.CreateMode.PERSISTENT, cb));
        } catch (e) {
            // Another run removed the (then empty) parent in between: once more.
            if (!/: NO_NODE /.test((e as Error).message)) throw e;
            await createParent();
            await step<string>("create", own, `create ${path}`, (cb) => own.client.create(path, Buffer.from("smoke"), zookeeper.CreateMode.PERSISTENT, cb));
        }
    } catch (e) {
        const hint = chroot && /: NO_NODE /.test((e as Error).message) ? ` (the chroot ${chroot} does not exist: create it first)` : "";
        throw new SmokeFailure(`${(e as Error).message}${hint}`);
    }
    for (let k = 0; k < opts.count; k++) {
        const node = `${path}/n${k}`;
        await step<string>("create", own, `create ${node}`, (cb) => own.client.create(node, Buffer.from(`v0-${k}`), zookeeper.CreateMode.PERSISTENT, cb));
        const got = await step<Buffer>("get", own, `get ${node}`, (cb) => own.client.getData(node, cb));
        if (text(got) !== `v0-${k}`) throw new SmokeFailure(`get ${node}: holds ${JSON.stringify(text(got))}, expected ${JSON.stringify(`v0-${k}`)} (${at(own)})`);

        // The watch: registered through the peer, fired by a set through this server.
        let fired: (type: number) => void = () => {};
        const event = new Promise<number>((resolve) => (fired = resolve));
        const watcher = (e: zookeeper.Event) => fired(e.getType());
        let seen: Buffer;
        try {
            seen = await rec.time("get-peer", () => call<Buffer>(`get ${node} with a watch`, t, (cb) => peer.client.getData(node, watcher, cb)));
        } catch (e) {
            if (!(e instanceof ZkOperationError && e.code === "NO_NODE")) throw new SmokeFailure(`${(e as Error).message} (${at(peer)})`);
            // The peer has not applied the create yet: sync it, then it must see the node.
            await timed("sync-peer", peer, () => syncBarrier(peer, path, t));
            seen = await step<Buffer>("get-peer", peer, `get ${node} with a watch (after sync)`, (cb) => peer.client.getData(node, watcher, cb));
        }
        if (text(seen) !== `v0-${k}`) throw new SmokeFailure(`get ${node}: holds ${JSON.stringify(text(seen))}, expected ${JSON.stringify(`v0-${k}`)} (${at(peer)})`);
        const setAt = performance.now();
        await step<zookeeper.Stat>("set", own, `set ${node}`, (cb) => own.client.setData(node, Buffer.from(`v1-${k}`), -1, cb));
        let timer: NodeJS.Timeout | undefined;
        const type = await Promise.race([event, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), t)))]);
        clearTimeout(timer);
        if (type === undefined) {
            throw new SmokeFailure(`watch: the data watch on ${node} set through peer ${peer.server} did not fire within ${t} ms of a set through ${own.server}`);
        }
        if (type !== zookeeper.Event.NODE_DATA_CHANGED) {
            throw new SmokeFailure(`watch: the data watch on ${node} set through peer ${peer.server} fired with event type ${type}, expected NODE_DATA_CHANGED after a set through ${own.server}`);
        }
        rec.add("watch", performance.now() - setAt);
        const after = await step<Buffer>("get", own, `get ${node}`, (cb) => own.client.getData(node, cb));
        if (text(after) !== `v1-${k}`) throw new SmokeFailure(`get ${node}: holds ${JSON.stringify(text(after))} after set, expected ${JSON.stringify(`v1-${k}`)} (${at(own)})`);
        await step<void>("delete", own, `delete ${node}`, (cb) => own.client.remove(node, -1, (err) => cb(err)));
    }

    // An ephemeral node created through this server, seen through the peer after a sync.
    const eph = `${path}/ephemeral`;
    await step<string>("ephemeral", own, `create ephemeral ${eph}`, (cb) => own.client.create(eph, Buffer.from("eph"), zookeeper.CreateMode.EPHEMERAL, cb));
    await timed("sync-peer", peer, () => syncBarrier(peer, path, t));
    const stat = await step<zookeeper.Stat | null>("exists-peer", peer, `exists ${eph}`, (cb) => peer.client.exists(eph, cb));
    if (!stat) throw new SmokeFailure(`ephemeral ${eph} created through ${own.server} is not seen through peer ${peer.server} after sync`);
    const owner = own.client.getSessionId();
    if (!Buffer.from(stat.ephemeralOwner).equals(owner)) {
        throw new SmokeFailure(
            `ephemeral ${eph} seen through peer ${peer.server} is owned by session 0x${Buffer.from(stat.ephemeralOwner).toString("hex")}, not by 0x${owner.toString("hex")} of ${own.server}`,
        );
    }
    await step<void>("delete", own, `delete ${eph}`, (cb) => own.client.remove(eph, -1, (err) => cb(err)));
    await step<void>("delete", own, `delete ${path}`, (cb) => own.client.remove(path, -1, (err) => cb(err)));
}

/** Removes what is left of a server's test znode (children first); NO_NODE is fine. */
async function removeTree(s: Session, path: string, timeoutMs: number): Promise<void> {
    let children: string[];
    try {
        children = await call<string[]>(`list ${path}`, timeoutMs, (cb) => s.client.getChildren(path, cb));
    } catch (e) {
        if (e instanceof ZkOperationError && e.code === "NO_NODE") return;
        throw e;
    }
    for (const c of children) await removeTree(s, `${path}/${c}`, timeoutMs);
    try {
        await call<void>(`delete ${path}`, timeoutMs, (cb) => s.client.remove(path, -1, (err) => cb(err)));
    } catch (e) {
        if (!(e instanceof ZkOperationError && e.code === "NO_NODE")) throw e;
    }
}

/** Runs the smoke test against every server of the connect string. */
export async function runSmoke(connect: ConnectString, opts: SmokeOptions): Promise<SmokeReport> {
    const log = opts.log ?? (() => {});
    const parent = opts.parent ?? "/zkmigrate-smoke";
    const root = `${parent}/${randomBytes(4).toString("hex")}`;
    const chroot = connect.chroot;
    const servers: ServerSmoke[] = connect.servers.map((s, i) => ({
        server: formatServer(s),
        session: false,
        path: `${root}-${i + 1}`,
        ok: false,
        latencies: [],
        failures: [],
    }));
    const recorders = connect.servers.map(() => new Recorder());
    // Servers whose test znode may exist (its create was sent).
    const started = new Set<number>();
    const opened: Session[] = [];
    const sessions: (Session | undefined)[] = await Promise.all(
        connect.servers.map(async (s, i) => {
            try {
                const session = await openSession(s, chroot, opts.timeoutMs);
                opened.push(session);
                servers[i].session = true;
                recorders[i].add("connect", session.connectMs);
                return session;
            } catch (e) {
                // Refused (nothing listens, no route): said at once, no need to ask srvr.
                if (e instanceof ZkOperationError && e.code === "REFUSED") {
                    servers[i].failures.push(`${servers[i].server}: no session: ${e.message.replace(/^no session with \S+: /, "")}`);
                    return undefined;
                }
                const why = await diagnose(s, opts.timeoutMs);
                servers[i].failures.push(`${servers[i].server}: no session within ${opts.timeoutMs} ms: ${why}`);
                return undefined;
            }
        }),
    );
    const cleanup = { ok: true, failures: [] as string[] };
    try {
        for (let i = 0; i < servers.length; i++) {
            const own = sessions[i];
            if (!own) continue;
            // A session that lost its server (a leader election drops clients) may come back.
            if (!own.alive() && !(await waitForLiveSession([own], opts.timeoutMs))) {
                const why = await diagnose(connect.servers[i], opts.timeoutMs);
                servers[i].failures.push(`${servers[i].server}: the session was lost before its checks began and did not come back within ${opts.timeoutMs} ms: ${why}`);
                continue;
            }
            // The peer: the next server (in the connect string's order) with a session; with a
            // single server, a second session to the same server.
            let peer: Session | undefined;
            for (let d = 1; d < servers.length && !peer; d++) {
                const candidate = sessions[(i + d) % servers.length];
                if (candidate?.alive()) peer = candidate;
            }
            if (!peer) {
                try {
                    peer = await openSession(connect.servers[i], chroot, opts.timeoutMs);
                    opened.push(peer);
                } catch (e) {
                    servers[i].failures.push(`${servers[i].server}: no second session for the peer checks: ${(e as Error).message}`);
                    continue;
                }
            }
            servers[i].peer = peer.server;
            log(`smoke: ${servers[i].server} (peer ${peer.server}) ${servers[i].path}`);
            started.add(i);
            try {
                await smokeServer(own, peer, parent, servers[i].path, chroot, recorders[i], opts);
            } catch (e) {
                const msg = e instanceof SmokeFailure || e instanceof ZkOperationError ? e.message : String(e);
                servers[i].failures.push(`${servers[i].server}: ${msg}`);
            }
        }
    } finally {
        // Clean up through the server's own session, or any live one (a session that lost its
        // server, e.g. during a leader election, gets up to one timeout to come back).
        for (let i = 0; i < servers.length; i++) {
            if (!started.has(i)) continue;
            const where = `${servers[i].path}${chroot ? ` under the chroot ${chroot}` : ""}`;
            const own = sessions[i];
            const s = own?.alive() ? own : await waitForLiveSession(opened, opts.timeoutMs);
            if (!s) {
                cleanup.ok = false;
                cleanup.failures.push(`cleanup: no session came back within ${opts.timeoutMs} ms to remove ${where}: remove it by hand`);
                continue;
            }
            try {
                await removeTree(s, servers[i].path, opts.timeoutMs);
            } catch (e) {
                cleanup.ok = false;
                cleanup.failures.push(`cleanup through ${s.server}: ${(e as Error).message}: remove ${where} by hand`);
            }
        }
        // The parent goes when no other run is using it (NOT_EMPTY, NO_NODE: fine).
        const any = opened.find((s) => s.alive());
        if (any) {
            await call<void>(`delete ${parent}`, opts.timeoutMs, (cb) => any.client.remove(parent, -1, (err) => cb(err))).catch(() => undefined);
        }
        await Promise.all(opened.map((s) => closeSession(s)));
    }
    servers.forEach((s, i) => {
        s.latencies = recorders[i].stats();
        s.ok = s.session && s.failures.length === 0;
    });
    const connected = servers.filter((s) => s.session).length;
    const failed = servers.filter((s) => !s.ok).length;
    const ok = failed === 0 && cleanup.ok;
    const exitCode: 0 | 1 | 3 = connected === 0 ? 3 : ok ? 0 : 1;
    const n = servers.length;
    const summary =
        exitCode === 3
            ? `cannot connect: no session with any of the ${n} server${n === 1 ? "" : "s"}`
            : ok
              ? `smoke ok: ${n} server${n === 1 ? "" : "s"}, test znodes ${root}-* removed`
              : `smoke FAILED: ${failed} of ${n} server${n === 1 ? "" : "s"} failed${cleanup.ok ? "" : ", cleanup failed"}`;
    const report: SmokeReport = { connect: formatConnectString(connect), root, servers, cleanup, ok, exitCode, summary };
    if (chroot) report.chroot = chroot;
    return report;
}

function ms(x: number): string {
    return Number.isFinite(x) ? x.toFixed(2) : "-";
}

/** The latency table (a row per server and operation), then the failures, then the summary. */
export function formatSmoke(report: SmokeReport): string {
    const rows: string[][] = [];
    for (const s of report.servers) {
        if (s.latencies.length === 0) {
            rows.push([s.server, s.peer ?? "-", "-", "0", "-", "-", "-", s.ok ? "ok" : "FAILED"]);
            continue;
        }
        s.latencies.forEach((l, j) => {
            rows.push([j === 0 ? s.server : "", j === 0 ? (s.peer ?? "-") : "", l.op, String(l.samples), ms(l.minMs), ms(l.medianMs), ms(l.maxMs), j === 0 ? (s.ok ? "ok" : "FAILED") : ""]);
        });
    }
    const lines = [
        `smoke ${report.connect}${report.chroot ? ` (chroot ${report.chroot})` : ""}, test znodes ${report.root}-N`,
        "",
        formatTable(["SERVER", "PEER", "OP", "N", "MIN ms", "MEDIAN ms", "MAX ms", "RESULT"], rows, ["left", "left", "left", "right", "right", "right", "right", "left"]),
    ];
    const failures = [...report.servers.flatMap((s) => s.failures), ...report.cleanup.failures];
    if (failures.length > 0) {
        lines.push("");
        for (const f of failures) lines.push(`FAILED ${f}`);
    }
    lines.push("", report.summary);
    return lines.join("\n") + "\n";
}
