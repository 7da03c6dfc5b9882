// Reading Kafka's controller from ZooKeeper (`/controller` under the brokers' chroot), so that the
// rolling restart of the brokers can put the controller last.
import type { Buffer } from "node:buffer";
import { parseControllerZnode, type KafkaControllerInfo } from "../procedures/kafka";
import { call, connectClient, zkErrorName } from "./session";

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
