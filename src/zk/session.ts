// Sessions of node-zookeeper-client (the one ZooKeeper client library of the project) as
// promises, every call bounded by a timeout.
import { isIPv6 } from "node:net";
import * as zookeeper from "node-zookeeper-client";
import { formatServer, singleServerConnectString, type ZkServerAddress } from "../format/connect-string";

/**
 * node-zookeeper-client 1.1.3 parses one reply per call of its socket handler and carries the
 * rest of the chunk over with Buffer.concat, then calls itself again: a socket chunk holding k
 * replies costs k copies of what is left of it (quadratic in replies per chunk), which made
 * pipelined reads of 2 KB znodes crawl (3,200 nodes/s). This wrapper cuts the stream into whole
 * frames first and hands the client one frame at a time, so nothing is copied twice.
 */
/** Marks a request whose reply frame goes to its callback as it is (see raw.ts). */
export const RAW_REPLY = "__zkmigrateRawReply";
/** The connection manager's field holding a listener of watch notifications' frames (see raw.ts). */
export const RAW_NOTIFY = "__zkmigrateRawNotify";

interface PendingPacket {
    request: { header: { xid: number } | null; [RAW_REPLY]?: boolean };
    callback?: (err: unknown, frame?: Buffer) => void;
}

function installFrameSplitter(): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const CM = require("node-zookeeper-client/lib/ConnectionManager.js") as { prototype: Record<string, unknown> };
    const proto = CM.prototype as { onSocketData: (b: Buffer) => void; __zkmigrateFrames?: boolean };
    if (proto.__zkmigrateFrames) return;
    const original = proto.onSocketData;
    proto.onSocketData = function (this: { pendingBuffer: Buffer | null; __frameRest?: Buffer; pendingQueue: PendingPacket[]; zxid: Buffer; state: number }, chunk: Buffer) {
        const buf = this.__frameRest && this.__frameRest.length > 0 ? Buffer.concat([this.__frameRest, chunk]) : chunk;
        let at = 0;
        while (buf.length - at >= 4) {
            const size = buf.readInt32BE(at);
            if (size < 0 || buf.length - at < size + 4) break;
            const frame = buf.subarray(at, at + size + 4);
            const head = this.pendingQueue[0];
            // A watch notification (xid -1), for a raw listener (the change journal) when one is set.
            const notify = (this as unknown as Record<string, unknown>)[RAW_NOTIFY] as ((f: Buffer) => void) | undefined;
            if (notify && this.state !== 1 && size >= 16 && frame.readInt32BE(4) === -1) notify(frame);
            // A raw request's reply (never during connect: the first frame is the connect reply).
            if (this.state !== 1 && head?.request[RAW_REPLY] && size >= 16 && frame.readInt32BE(4) === head.request.header?.xid) {
                this.pendingQueue.shift();
                if (frame.readBigInt64BE(8) > 0n) this.zxid = Buffer.from(frame.subarray(8, 16));
                head.callback?.(null, frame);
            } else {
                this.pendingBuffer = null;
                original.call(this, frame);
            }
            at += size + 4;
        }
        this.__frameRest = at === buf.length ? undefined : Buffer.from(buf.subarray(at));
    };
    // A partial frame of a closed socket must not prefix the next socket's stream.
    const p = CM.prototype as { onSocketClosed: (hadError: boolean) => void };
    const closed = p.onSocketClosed;
    p.onSocketClosed = function (this: { __frameRest?: Buffer }, hadError: boolean) {
        this.__frameRest = undefined;
        return closed.call(this, hadError);
    };
    // Corking: the client writes each request with its own socket.write (a syscall and often a
    // TCP segment each); many queued in one tick (hundreds of pipelined reads) go out together.
    const q = CM.prototype as { onPacketQueueReadable: () => void };
    const readable = q.onPacketQueueReadable;
    q.onPacketQueueReadable = function (this: { socket?: { cork(): void; uncork(): void; writable?: boolean }; __corked?: boolean }) {
        const socket = this.socket;
        if (socket && !this.__corked && socket.writable !== false) {
            this.__corked = true;
            socket.cork();
            process.nextTick(() => {
                this.__corked = false;
                socket.uncork();
            });
        }
        return readable.call(this);
    };
    proto.__zkmigrateFrames = true;
}
installFrameSplitter();

export class ZkOperationError extends Error {
    constructor(
        message: string,
        /** ZooKeeper's error name (NO_NODE, CONNECTION_LOSS, ...) or `TIMEOUT`. */
        readonly code: string,
    ) {
        super(message);
        this.name = "ZkOperationError";
    }
}

/** The error name of a node-zookeeper-client exception (`NO_NODE`), or the error text. */
export function zkErrorName(e: unknown): string {
    if (e && typeof e === "object" && typeof (e as { getName?: unknown }).getName === "function") {
        return (e as zookeeper.Exception).getName();
    }
    return e instanceof Error ? e.message : String(e);
}

export interface Session {
    /** `host:port` of the one server this session talks to. */
    server: string;
    client: zookeeper.Client;
    /** Milliseconds from connect() to the session being established. */
    connectMs: number;
    /** False once the session is lost (disconnected, expired) or closed. */
    alive(): boolean;
}

/**
 * A client of exactly one server (a connect string of just that server, with the chroot), not
 * yet connected.
 */
export function createSingleServerClient(server: ZkServerAddress, chroot: string | undefined, sessionTimeoutMs: number): zookeeper.Client {
    // node-zookeeper-client splits hosts on ":", which breaks bracketed IPv6 literals: give it
    // a placeholder host with the right chroot, then the real address before it connects.
    const connectString = isIPv6(server.host) ? `localhost:${server.port}${chroot ?? ""}` : singleServerConnectString(server, chroot);
    const client = zookeeper.createClient(connectString, {
        // The server negotiates this into [2, 20] x tickTime; the session only lives as long as the run.
        sessionTimeout: sessionTimeoutMs,
        spinDelay: 200,
        retries: 0,
    });
    if (isIPv6(server.host)) {
        (client as unknown as { connectionManager: { servers: { host: string; port: number }[] } }).connectionManager.servers = [
            { host: server.host, port: server.port },
        ];
    }
    return client;
}

/**
 * Socket errors that a retry within seconds does not cure: nothing listens on the port, no route
 * to the host, no such host name (or none that resolves now).
 */
export const REFUSAL_CODES: ReadonlySet<string> = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EADDRNOTAVAIL"]);

/** The text of a socket error; Node's happy-eyeballs connect (a name with several addresses) throws an AggregateError without one. */
function socketErrorText(e: Error & { code?: string; errors?: Error[] }): string {
    if (e.message) return e.message;
    const inner = (e.errors ?? []).map((x) => x.message).filter(Boolean);
    return inner.length > 0 ? inner.join(", ") : (e.code ?? String(e));
}

/**
 * Calls `onRefused` once every server of the client's list has refused its latest connection
 * attempt (see REFUSAL_CODES), with the servers and their socket errors. node-zookeeper-client
 * retries a refused connection forever (every `spinDelay` ms, its `retries` option does not
 * bound it), so without this a session to servers that are all down ends only at the caller's
 * timeout. A server that accepted a connection (even one that then went silent) is not refusing:
 * the caller's timeout decides then. Returns a function that stops watching.
 */
export function whenEveryServerRefuses(client: zookeeper.Client, onRefused: (why: string) => void): () => void {
    const cm = (client as unknown as { connectionManager?: ConnectionHooks }).connectionManager;
    if (!cm) return () => {};
    const refused = new Map<string, string>();
    let current: { host: string; port: number | string } | undefined;
    let watching = true;
    const key = (s: { host: string; port: number | string }) => formatServer({ host: s.host, port: Number(s.port) });
    const find = cm.findNextServer;
    const error = cm.onSocketError;
    const connected = cm.onSocketConnected;
    cm.findNextServer = function (this: ConnectionHooks, cb: (server: { host: string; port: number | string }) => void) {
        return find.call(this, (server) => {
            current = server;
            cb(server);
        });
    };
    cm.onSocketError = function (this: ConnectionHooks, e: Error & { code?: string }) {
        if (watching && current) {
            if (e.code !== undefined && REFUSAL_CODES.has(e.code)) refused.set(key(current), socketErrorText(e));
            else refused.delete(key(current));
            const all = cm.servers.map(key);
            if (all.length > 0 && all.every((k) => refused.has(k))) {
                watching = false;
                const names = [...new Set(all)];
                onRefused(names.length === 1 ? refused.get(names[0])! : names.map((k) => `${k}: ${refused.get(k)}`).join("; "));
            }
        }
        return error.call(this, e);
    };
    cm.onSocketConnected = function (this: ConnectionHooks) {
        if (current) refused.delete(key(current));
        return connected.call(this);
    };
    return () => {
        watching = false;
    };
}

interface ConnectionHooks {
    servers: { host: string; port: number | string }[];
    findNextServer(cb: (server: { host: string; port: number | string }) => void): void;
    onSocketError(e: Error): void;
    onSocketConnected(): void;
}

/**
 * Opens a session to exactly one server, resolving once it is connected, rejecting after
 * `timeoutMs`, or at once (code REFUSED) when the server refuses the connection.
 */
export function openSession(server: ZkServerAddress, chroot: string | undefined, timeoutMs: number): Promise<Session> {
    const name = formatServer(server);
    const client = createSingleServerClient(server, chroot, Math.max(4000, timeoutMs));
    let alive = false;
    return new Promise((resolve, reject) => {
        const started = performance.now();
        const timer = setTimeout(() => {
            stopWatching();
            abort(client);
            reject(new ZkOperationError(`no session with ${name} within ${timeoutMs} ms`, "TIMEOUT"));
        }, timeoutMs);
        const stopWatching = whenEveryServerRefuses(client, (why) => {
            clearTimeout(timer);
            abort(client);
            reject(new ZkOperationError(`no session with ${name}: ${why}`, "REFUSED"));
        });
        client.on("state", (state: zookeeper.State) => {
            if (state === zookeeper.State.SYNC_CONNECTED) {
                alive = true;
            } else if (state === zookeeper.State.DISCONNECTED || state === zookeeper.State.EXPIRED || state === zookeeper.State.AUTH_FAILED) {
                alive = false;
            }
        });
        client.once("connected", () => {
            clearTimeout(timer);
            stopWatching();
            resolve({ server: name, client, connectMs: performance.now() - started, alive: () => alive });
        });
        client.connect();
    });
}

/**
 * A client of a whole connect string (`host:port,...[/chroot]`), resolved once its session is
 * established. On timeout the client is stopped for good (no reconnect timer left behind).
 */
export function connectClient(connect: string, timeoutMs: number, sessionTimeoutMs = 10_000): Promise<zookeeper.Client> {
    const client = zookeeper.createClient(connect, { sessionTimeout: sessionTimeoutMs, spinDelay: 100, retries: 0 });
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            abort(client);
            reject(new ZkOperationError(`no ZooKeeper session with ${connect} within ${timeoutMs} ms`, "TIMEOUT"));
        }, timeoutMs);
        client.once("connected", () => {
            clearTimeout(timer);
            resolve(client);
        });
        client.connect();
    });
}

/** The first of the sessions that is (or becomes, within `timeoutMs`) connected; undefined if none. */
export function waitForLiveSession(sessions: Session[], timeoutMs: number): Promise<Session | undefined> {
    const live = sessions.find((s) => s.alive());
    if (live || sessions.length === 0) return Promise.resolve(live);
    return new Promise((resolve) => {
        let done = false;
        const listeners: [Session, () => void][] = [];
        const finish = (s: Session | undefined) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            for (const [x, f] of listeners) x.client.removeListener("connected", f);
            resolve(s);
        };
        const timer = setTimeout(() => finish(undefined), timeoutMs);
        for (const s of sessions) {
            const f = () => finish(s);
            listeners.push([s, f]);
            s.client.on("connected", f);
        }
    });
}

interface ConnectionManagerInternals {
    state: number;
    socket?: { destroy(): void };
    onSocketConnected: () => void;
    on(ev: "state", f: (st: number) => void): void;
}

// ConnectionManager.STATES.CLOSED of node-zookeeper-client 1.1.3.
const CM_CLOSED = -2;

function internals(client: zookeeper.Client): ConnectionManagerInternals | undefined {
    return (client as unknown as { connectionManager?: ConnectionManagerInternals }).connectionManager;
}

/**
 * Stops a client for good, also one still (re)connecting: close() alone leaves a reconnect
 * timer that may open a new socket later. Any socket that connects from now on is dropped, and
 * with the manager in its closing state a dropped socket ends it (CLOSED) instead of retrying.
 */
export function abort(client: zookeeper.Client): void {
    client.close();
    const cm = internals(client);
    if (!cm) return;
    cm.onSocketConnected = function (this: ConnectionManagerInternals) {
        this.socket?.destroy();
    };
    cm.socket?.destroy();
}

/** Closes the session: waits (bounded) for the server to end it, then drops the connection. */
export function closeSession(s: Session, timeoutMs = 1000): Promise<void> {
    return new Promise((resolve) => {
        const cm = internals(s.client);
        if (!cm || cm.state === CM_CLOSED) {
            resolve();
            return;
        }
        const timer = setTimeout(() => {
            abort(s.client);
            resolve();
        }, timeoutMs);
        cm.on("state", (st: number) => {
            if (st === CM_CLOSED) {
                clearTimeout(timer);
                resolve();
            }
        });
        if (s.alive()) s.client.close();
        else {
            clearTimeout(timer);
            abort(s.client);
            resolve();
        }
    });
}

/** Runs one callback-style call of the client, bounded by `timeoutMs`. */
export function call<T>(what: string, timeoutMs: number, f: (cb: (err: unknown, value?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
        let done = false;
        const timer = setTimeout(() => {
            done = true;
            reject(new ZkOperationError(`${what}: no answer within ${timeoutMs} ms`, "TIMEOUT"));
        }, timeoutMs);
        try {
            f((err, value) => {
                if (done) return;
                done = true;
                clearTimeout(timer);
                if (err) reject(new ZkOperationError(`${what}: ${zkErrorName(err)}`, zkErrorName(err)));
                else resolve(value as T);
            });
        } catch (e) {
            // node-zookeeper-client asserts its arguments synchronously (e.g. an invalid path).
            done = true;
            clearTimeout(timer);
            reject(new ZkOperationError(`${what}: ${e instanceof Error ? e.message : String(e)}`, "BAD_ARGUMENTS"));
        }
    });
}

/**
 * A write barrier with the effect of `sync` (which node-zookeeper-client 1.1.3 does not offer):
 * a multi of one `check` of an existing node. Like sync it goes through the leader, and the
 * server answers it only after applying every transaction committed before it, so reads that
 * follow on this session see everything acknowledged to any client before the barrier.
 */
export function syncBarrier(s: Session, existingPath: string, timeoutMs: number): Promise<void> {
    return call<void>(`sync (multi check ${existingPath}) through ${s.server}`, timeoutMs, (cb) =>
        s.client
            .transaction()
            .check(existingPath)
            .commit((err) => cb(err)),
    );
}
