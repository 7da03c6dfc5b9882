// Reading Kafka's controller from ZooKeeper (`/controller` under the brokers' chroot), so that the
// rolling restart of the brokers can put the controller last.
import type { Buffer } from "node:buffer";
import { call, connectClient, zkErrorName } from "./session";

/** The controller as read (broker.id), or why it could not be. */
export interface KafkaControllerInfo {
    controller?: number;
    /** Where it came from, or why it is unknown. */
    detail: string;
}

/** The broker id in the data of Kafka's /controller znode (`{"version":1|2,"brokerid":N,...}`). */
export function parseControllerZnode(data: string): number | undefined {
    try {
        const v = (JSON.parse(data) as { brokerid?: unknown }).brokerid;
        return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined;
    } catch {
        return undefined;
    }
}

/** The controller as /controller names it, read through `connect` (with the brokers' chroot). Never throws. */
export async function probeKafkaController(connect: string, timeoutMs: number): Promise<KafkaControllerInfo> {
    let client: Awaited<ReturnType<typeof connectClient>> | undefined;
    try {
        client = await connectClient(connect, timeoutMs);
        const c = client;
        const data = await call<Buffer>("get /controller", timeoutMs, (cb) => c.getData("/controller", (err, d) => cb(err, d)));
        const id = parseControllerZnode(data ? data.toString("utf8") : "");
        return id === undefined ? { detail: `/controller on ${connect} holds no broker id` } : { controller: id, detail: `read from /controller on ${connect}` };
    } catch (e) {
        return { detail: `cannot read /controller on ${connect}: ${zkErrorName(e)}` };
    } finally {
        client?.close();
    }
}
