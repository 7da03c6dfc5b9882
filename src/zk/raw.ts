// Lean requests on a node-zookeeper-client session: our own encoding of the few requests the
// copy sends most (getACL, getData, getChildren2 and ZooKeeper 3.6's read-only multi, opcode 22,
// which node-zookeeper-client does not know), and the change journal's (3.6's addWatch, opcode
// 106, and sync, with the watch notifications), queued through the client's connection so that
// xids, session, auth and reconnects stay the client's. The reply frame comes back whole (see
// the frame splitter in session.ts) and is decoded here without the client's generic records.
import type * as zookeeper from "node-zookeeper-client";
import { RAW_NOTIFY, RAW_REPLY } from "./session";

export const OP = { getData: 4, getChildren: 8, getACL: 6, sync: 9, getChildren2: 12, multiRead: 22, addWatch: 106, error: -1 } as const;

/** ZooKeeper error codes the copy tells apart. */
export const ERR = { ok: 0, noNode: -101, noAuth: -102, unimplemented: -6, connectionLoss: -4 } as const;

const ERR_NAMES: Record<number, string> = {
    [-1]: "SYSTEM_ERROR",
    [-2]: "RUNTIME_INCONSISTENCY",
    [-3]: "DATA_INCONSISTENCY",
    [-4]: "CONNECTION_LOSS",
    [-5]: "MARSHALLING_ERROR",
    [-6]: "UNIMPLEMENTED",
    [-7]: "OPERATION_TIMEOUT",
    [-8]: "BAD_ARGUMENTS",
    [-14]: "UNKNOWN_SESSION",
    [-100]: "API_ERROR",
    [-101]: "NO_NODE",
    [-102]: "NO_AUTH",
    [-103]: "BAD_VERSION",
    [-108]: "NO_CHILDREN_FOR_EPHEMERALS",
    [-110]: "NODE_EXISTS",
    [-111]: "NOT_EMPTY",
    [-112]: "SESSION_EXPIRED",
    [-113]: "INVALID_CALLBACK",
    [-114]: "INVALID_ACL",
    [-115]: "AUTH_FAILED",
    [-119]: "NO_WATCHER",
    [-120]: "RECONFIG_DISABLED",
    [-124]: "QUOTA_EXCEEDED",
};

export function errName(code: number): string {
    return ERR_NAMES[code] ?? `error ${code}`;
}

/** A ZooKeeper error answer to a raw request (the name is ZooKeeper's, e.g. NO_NODE). */
export class RawError extends Error {
    constructor(
        readonly code: number,
        what: string,
    ) {
        super(`${what}: ${errName(code)}`);
        this.name = "RawError";
    }
    getName(): string {
        return errName(this.code);
    }
}

export interface RawStat {
    czxid: bigint;
    mzxid: bigint;
    ctime: number;
    mtime: number;
    version: number;
    cversion: number;
    aversion: number;
    ephemeralOwner: bigint;
    dataLength: number;
    numChildren: number;
    pzxid: bigint;
}

export interface RawAcl {
    perms: number;
    scheme: string;
    id: string;
}

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
    private parts: Buffer[] = [];
    int(v: number): this {
        const b = Buffer.allocUnsafe(4);
        b.writeInt32BE(v, 0);
        this.parts.push(b);
        return this;
    }
    bool(v: boolean): this {
        this.parts.push(Buffer.from([v ? 1 : 0]));
        return this;
    }
    str(s: string): this {
        const b = Buffer.from(s, "utf8");
        this.int(b.length);
        this.parts.push(b);
        return this;
    }
    done(): Buffer {
        return Buffer.concat(this.parts);
    }
}

/** A path-and-watch request body (getData, getChildren, getChildren2; watch false). */
function pathRequest(path: string): Buffer {
    return new Writer().str(path).bool(false).done();
}

function getAclRequest(path: string): Buffer {
    return new Writer().str(path).done();
}

function addWatchRequest(path: string, mode: number): Buffer {
    return new Writer().str(path).int(mode).done();
}

export type ReadOp = { op: "getData" | "getChildren"; path: string };

function multiReadRequest(ops: ReadOp[]): Buffer {
    const w = new Writer();
    for (const o of ops) {
        w.int(o.op === "getData" ? OP.getData : OP.getChildren).bool(false).int(-1);
        w.str(o.path).bool(false);
    }
    return w.int(-1).bool(true).int(-1).done();
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Reader {
    at = 0;
    constructor(readonly b: Buffer) {}
    int(): number {
        const v = this.b.readInt32BE(this.at);
        this.at += 4;
        return v;
    }
    long(): bigint {
        const v = this.b.readBigInt64BE(this.at);
        this.at += 8;
        return v;
    }
    bool(): boolean {
        return this.b[this.at++] !== 0;
    }
    buffer(): Buffer {
        const n = this.int();
        if (n < 0) return Buffer.alloc(0);
        const v = this.b.subarray(this.at, this.at + n);
        this.at += n;
        return v;
    }
    str(): string {
        const n = this.int();
        if (n < 0) return "";
        const v = this.b.toString("utf8", this.at, this.at + n);
        this.at += n;
        return v;
    }
    stat(): RawStat {
        return {
            czxid: this.long(),
            mzxid: this.long(),
            ctime: Number(this.long()),
            mtime: Number(this.long()),
            version: this.int(),
            cversion: this.int(),
            aversion: this.int(),
            ephemeralOwner: this.long(),
            dataLength: this.int(),
            numChildren: this.int(),
            pzxid: this.long(),
        };
    }
    strings(): string[] {
        const n = this.int();
        const out: string[] = new Array(Math.max(0, n));
        for (let i = 0; i < n; i++) out[i] = this.str();
        return out;
    }
    acls(): RawAcl[] {
        const n = this.int();
        const out: RawAcl[] = [];
        for (let i = 0; i < n; i++) out.push({ perms: this.int(), scheme: this.str(), id: this.str() });
        return out;
    }
}

// ---------------------------------------------------------------------------------------------
// Sending

interface Reply {
    err: number;
    zxid: bigint;
    body: Reader;
}

interface ConnectionManagerQueue {
    queue(request: unknown, callback: (err: unknown, frame?: Buffer) => void): void;
}

/** Sends one request (opcode `type`, encoded `body`) on the client's connection; resolves with the reply's error code and zxid. */
export async function rawSend(client: zookeeper.Client, type: number, body: Buffer): Promise<{ err: number; zxid: bigint }> {
    const r = await send(client, type, body);
    return { err: r.err, zxid: r.zxid };
}

/** Sends one request on the client's connection; resolves with the decoded reply header. */
function send(client: zookeeper.Client, type: number, body: Buffer): Promise<Reply> {
    const cm = (client as unknown as { connectionManager: ConnectionManagerQueue }).connectionManager;
    const header = { xid: 0, type };
    const request = {
        header,
        payload: null,
        [RAW_REPLY]: true,
        toBuffer(): Buffer {
            const b = Buffer.allocUnsafe(12 + body.length);
            b.writeInt32BE(8 + body.length, 0);
            b.writeInt32BE(header.xid, 4);
            b.writeInt32BE(type, 8);
            body.copy(b, 12);
            return b;
        },
    };
    return new Promise((resolve, reject) => {
        cm.queue(request, (err, frame) => {
            if (err || !frame) {
                reject(err ?? new Error("no reply"));
                return;
            }
            const r = new Reader(frame);
            r.at = 4; // length
            r.int(); // xid
            const zxid = r.long();
            const code = r.int();
            resolve({ err: code, zxid, body: r });
        });
    });
}

export async function rawGetAcl(client: zookeeper.Client, path: string): Promise<{ acl: RawAcl[]; stat: RawStat }> {
    const r = await send(client, OP.getACL, getAclRequest(path));
    if (r.err !== 0) throw new RawError(r.err, `getACL ${path}`);
    return { acl: r.body.acls(), stat: r.body.stat() };
}

export async function rawGetData(client: zookeeper.Client, path: string): Promise<{ data: Buffer; stat: RawStat }> {
    const r = await send(client, OP.getData, pathRequest(path));
    if (r.err !== 0) throw new RawError(r.err, `getData ${path}`);
    return { data: r.body.buffer(), stat: r.body.stat() };
}

export async function rawGetChildren(client: zookeeper.Client, path: string): Promise<{ children: string[]; stat: RawStat }> {
    const r = await send(client, OP.getChildren2, pathRequest(path));
    if (r.err !== 0) throw new RawError(r.err, `getChildren ${path}`);
    return { children: r.body.strings(), stat: r.body.stat() };
}

export type ReadResult = { ok: true; data?: Buffer; stat?: RawStat; children?: string[] } | { ok: false; err: number };

/**
 * ZooKeeper 3.6+'s read-only multi: each op answered on its own (a missing node is an error
 * result, the others still answer). Throws RawError UNIMPLEMENTED on older servers.
 */
export async function rawMultiRead(client: zookeeper.Client, ops: ReadOp[]): Promise<ReadResult[]> {
    const r = await send(client, OP.multiRead, multiReadRequest(ops));
    if (r.err !== 0) throw new RawError(r.err, `multi read of ${ops.length} (from ${ops[0]?.path})`);
    const out: ReadResult[] = [];
    for (;;) {
        const type = r.body.int();
        const done = r.body.bool();
        const err = r.body.int();
        if (done) break;
        if (type === OP.getData) out.push({ ok: true, data: r.body.buffer(), stat: r.body.stat() });
        else if (type === OP.getChildren) out.push({ ok: true, children: r.body.strings() });
        else if (type === OP.error) out.push({ ok: false, err: r.body.int() || err });
        else throw new Error(`multi read: unexpected result type ${type}`);
    }
    if (out.length !== ops.length) throw new Error(`multi read: ${out.length} results for ${ops.length} operations`);
    return out;
}

/** The zxid of the last reply the client had (the server's last processed zxid then). */
export function lastZxidOf(client: zookeeper.Client): bigint {
    const cm = (client as unknown as { connectionManager?: { zxid?: Buffer } }).connectionManager;
    return cm?.zxid && cm.zxid.length === 8 ? cm.zxid.readBigInt64BE(0) : 0n;
}

/** addWatch modes (ZooKeeper 3.6+). */
export const WATCH_MODE = { persistent: 0, persistentRecursive: 1 } as const;

/**
 * ZooKeeper 3.6+'s addWatch: a watch that stays (persistent), on the node and every descendant
 * (recursive). Its events come as notifications (see onNotification). Throws RawError
 * UNIMPLEMENTED on older servers (which then drop the connection). Resolves with the server's
 * last zxid at the time the watch was set.
 */
export async function rawAddWatch(client: zookeeper.Client, path: string, mode: number): Promise<bigint> {
    const r = await send(client, OP.addWatch, addWatchRequest(path, mode));
    if (r.err !== 0) throw new RawError(r.err, `addWatch ${path}`);
    return r.zxid;
}

/**
 * sync: the server answers once it has applied everything the leader committed before it, and
 * the notifications of those changes go out on the connection before the answer.
 */
export async function rawSync(client: zookeeper.Client, path: string): Promise<bigint> {
    const r = await send(client, OP.sync, getAclRequest(path));
    if (r.err !== 0) throw new RawError(r.err, `sync ${path}`);
    return r.zxid;
}

/** Watch event types on the wire. */
export const EVENT = { none: -1, created: 1, deleted: 2, dataChanged: 3, childrenChanged: 4 } as const;

export interface Notification {
    type: number;
    state: number;
    path: string;
    /** The zxid of the change when the server sends it (0 or -1 when it does not). */
    zxid: bigint;
}

/**
 * Calls `f` with every watch notification of the client's connection (decoded from the frame
 * before node-zookeeper-client sees it). Returns a function that stops it.
 */
export function onNotification(client: zookeeper.Client, f: (n: Notification) => void): () => void {
    const cm = (client as unknown as { connectionManager: Record<string, unknown> }).connectionManager;
    cm[RAW_NOTIFY] = (frame: Buffer) => {
        const r = new Reader(frame);
        r.at = 8; // length, xid
        const zxid = r.long();
        r.int(); // err
        f({ type: r.int(), state: r.int(), path: r.str(), zxid });
    };
    return () => {
        delete cm[RAW_NOTIFY];
    };
}
