// ZooKeeper clients for the integration tests (node-zookeeper-client, every call bounded). The
// write load (sequence-numbered znodes, gaps, the loss check) is rehearsal/stress.ts.
import * as zookeeper from "node-zookeeper-client";
import { call, connectClient } from "../../../src/zk/session";

export interface Client {
    client: zookeeper.Client;
    connect: string;
    close(): void;
}

/** A session to any server of `connect` (host:port,...), resolved once connected. */
export async function openClient(connect: string, o: { timeoutMs?: number; sessionTimeoutMs?: number } = {}): Promise<Client> {
    const client = await connectClient(connect, o.timeoutMs ?? 20_000, o.sessionTimeoutMs ?? 10_000);
    return { client, connect, close: () => client.close() };
}

export function create(c: Client, path: string, data: string, timeoutMs = 10_000): Promise<string> {
    return call<string>(`create ${path}`, timeoutMs, (cb) => c.client.create(path, Buffer.from(data), zookeeper.CreateMode.PERSISTENT, cb));
}

export function mkdirp(c: Client, path: string, timeoutMs = 10_000): Promise<string> {
    return call<string>(`mkdirp ${path}`, timeoutMs, (cb) => c.client.mkdirp(path, cb));
}

export function getChildren(c: Client, path: string, timeoutMs = 20_000): Promise<string[]> {
    return call<string[]>(`getChildren ${path}`, timeoutMs, (cb) => c.client.getChildren(path, (err, children) => cb(err, children)));
}

export async function getData(c: Client, path: string, timeoutMs = 10_000): Promise<string> {
    const b = await call<Buffer>(`getData ${path}`, timeoutMs, (cb) => c.client.getData(path, (err, data) => cb(err, data)));
    return b ? b.toString() : "";
}

/** A write barrier (multi with a check of an existing node): later reads see every earlier ack. */
export function barrier(c: Client, existingPath: string, timeoutMs = 10_000): Promise<void> {
    return call<void>(`barrier ${existingPath}`, timeoutMs, (cb) =>
        c.client
            .transaction()
            .check(existingPath)
            .commit((err) => cb(err)),
    );
}

/** Creates `count` znodes `<base>/d<i>` holding `v<i>`, 100 per multi; returns their names. */
export async function writeData(c: Client, base: string, count: number): Promise<string[]> {
    await mkdirp(c, base);
    const names: string[] = [];
    for (let i = 0; i < count; i += 100) {
        const tx = c.client.transaction();
        for (let j = i; j < Math.min(count, i + 100); j++) {
            const name = `d${String(j).padStart(5, "0")}`;
            tx.create(`${base}/${name}`, Buffer.from(`v${j}`), zookeeper.CreateMode.PERSISTENT);
            names.push(name);
        }
        await call<void>(`multi create under ${base}`, 20_000, (cb) => tx.commit((err) => cb(err)));
    }
    return names;
}
