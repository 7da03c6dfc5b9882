// Sessions of the copy: one per source server (reads are spread over them), one to the target,
// and the watchdog that bounds every wait of a run (one timer, not one per call).
import * as zookeeper from "node-zookeeper-client";
import { formatConnectString, formatServer } from "../../format/connect-string";
import { abort, createSingleServerClient, whenEveryServerRefuses } from "../session";
import { type AuthInfo, CopyError, type Endpoint } from "./options";

/** Calls as promises without a timer each; one watchdog per run bounds every wait. */
export class Rpc {
    private readonly pending = new Set<(e: Error) => void>();
    private last = performance.now();
    private readonly timer: NodeJS.Timeout;
    failed?: Error;

    constructor(readonly stallMs: number) {
        this.timer = setInterval(() => {
            if (this.pending.size > 0 && performance.now() - this.last > this.stallMs) {
                this.abort(new CopyError(`ZooKeeper answered none of ${this.pending.size} outstanding requests for ${this.stallMs} ms (connection lost or server overloaded): stopped`, "write"));
            }
        }, 250);
        this.timer.unref();
    }

    abort(e: Error): void {
        this.failed ??= e;
        for (const r of [...this.pending]) r(e);
        this.pending.clear();
    }

    call<A, B = undefined>(f: (cb: (err: unknown, a?: A, b?: B) => void) => void): Promise<[A, B]> {
        if (this.failed) return Promise.reject(this.failed);
        return new Promise((resolve, reject) => {
            const r = (e: Error) => reject(e);
            this.pending.add(r);
            try {
                f((err, a, b) => {
                    if (!this.pending.delete(r)) return;
                    this.last = performance.now();
                    if (err) reject(err);
                    else resolve([a as A, b as B]);
                });
            } catch (e) {
                this.pending.delete(r);
                reject(e);
            }
        });
    }

    /** Bounds a promise by the watchdog (a stall rejects it). */
    track<T>(p: Promise<T>): Promise<T> {
        if (this.failed) return Promise.reject(this.failed);
        return new Promise((resolve, reject) => {
            const r = (e: Error) => reject(e);
            this.pending.add(r);
            p.then(
                (v) => {
                    if (!this.pending.delete(r)) return;
                    this.last = performance.now();
                    resolve(v);
                },
                (e) => {
                    if (!this.pending.delete(r)) return;
                    this.last = performance.now();
                    reject(e);
                },
            );
        });
    }

    close(): void {
        clearInterval(this.timer);
    }
}

/** ZooKeeper's error name of a client exception (NO_NODE, NO_AUTH, ...), else undefined. */
export function codeOf(e: unknown): string | undefined {
    return e && typeof e === "object" && typeof (e as { getName?: unknown }).getName === "function" ? (e as zookeeper.Exception).getName() : undefined;
}



export interface Side {
    name: "source" | "target";
    endpoint: Endpoint;
    clients: zookeeper.Client[];
    /** Servers that could not be reached (they are named in the summary). */
    unreachable: string[];
}

export function connectOne(server: { host: string; port: number }, auth: AuthInfo[], timeoutMs: number, sessionTimeoutMs = 30_000): Promise<zookeeper.Client> {
    const client = createSingleServerClient(server, undefined, sessionTimeoutMs);
    for (const a of auth) client.addAuthInfo(a.scheme, Buffer.from(a.credentials));
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            stopWatching();
            abort(client); // close() alone leaves a reconnect timer behind
            reject(new Error(`no session within ${timeoutMs} ms`));
        }, timeoutMs);
        // A refused connection fails at once (the client alone would retry until the timeout).
        const stopWatching = whenEveryServerRefuses(client, (why) => {
            clearTimeout(timer);
            abort(client);
            reject(new Error(why));
        });
        client.once("authenticationFailed", () => {
            clearTimeout(timer);
            stopWatching();
            abort(client);
            reject(new Error(`authentication failed (${auth.map((a) => a.scheme).join(", ")})`));
        });
        client.once("connected", () => {
            clearTimeout(timer);
            stopWatching();
            resolve(client);
        });
        client.connect();
    });
}

export async function openSide(name: "source" | "target", endpoint: Endpoint, auth: AuthInfo[], timeoutMs: number, all: boolean): Promise<Side> {
    const servers = endpoint.connect.servers;
    const results = await Promise.allSettled(servers.map((s) => connectOne(s, auth, timeoutMs)));
    const clients: zookeeper.Client[] = [];
    const unreachable: string[] = [];
    const reasons: string[] = [];
    results.forEach((r, i) => {
        if (r.status === "fulfilled") clients.push(r.value);
        else {
            unreachable.push(formatServer(servers[i]));
            reasons.push(`${formatServer(servers[i])}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
        }
    });
    if (clients.length === 0) {
        throw new CopyError(`cannot reach the ${name} ensemble ${formatConnectString(endpoint.connect)}: ${reasons.join("; ")}`, "connect");
    }
    if (!all) {
        // One session is enough for the target: close the rest.
        for (const c of clients.slice(1)) c.close();
        clients.length = 1;
    }
    return { name, endpoint, clients, unreachable };
}

export function closeSide(s: Side | undefined): void {
    for (const c of s?.clients ?? []) c.close();
}


async function zookeeperConfig(rpc: Rpc, c: zookeeper.Client): Promise<string | undefined> {
    try {
        const [data] = await rpc.call<Buffer | null, zookeeper.Stat>((cb) => c.getData("/zookeeper/config", cb));
        const text = (data ?? Buffer.alloc(0)).toString("utf8").replace(/^version=.*$/m, "").trim();
        return text === "" ? undefined : text;
    } catch {
        return undefined;
    }
}

/** Same ensemble when a server address is shared or both report the same /zookeeper/config. */
export async function sameEnsemble(rpc: Rpc, src: Side, dst: Side): Promise<boolean> {
    const a = new Set(src.endpoint.connect.servers.map(formatServer));
    if (dst.endpoint.connect.servers.some((s) => a.has(formatServer(s)))) return true;
    const [ca, cb] = await Promise.all([zookeeperConfig(rpc, src.clients[0]), zookeeperConfig(rpc, dst.clients[0])]);
    return ca !== undefined && ca === cb;
}

