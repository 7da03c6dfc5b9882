// The four-letter-word client and the leader probe, against a fake server on 127.0.0.1.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import { fourLetterWord, parseMode, probeLeaders } from "../../../src/zk";

function fake(answer: (word: string) => string | undefined): Promise<{ server: Server; port: number }> {
    return new Promise((resolve) => {
        // allowHalfOpen: a silent server must not close just because the client finished sending.
        const server = createServer({ allowHalfOpen: true }, (sock) => {
            sock.once("data", (d) => {
                const a = answer(d.toString());
                if (a === undefined) return; // never answers: the client's timeout must fire
                sock.end(a);
            });
        });
        server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port }));
    });
}

describe("four-letter words", () => {
    const servers: Server[] = [];
    let leader = 0;
    let follower = 0;
    let refusing = 0;
    let silent = 0;
    before(async () => {
        const mk = async (a: (w: string) => string | undefined) => {
            const f = await fake(a);
            servers.push(f.server);
            return f.port;
        };
        leader = await mk(() => "Zookeeper version: 3.9.3\nZxid: 0x200000004\nMode: leader\nNode count: 7\n");
        follower = await mk(() => "Zookeeper version: 3.9.3\nZxid: 0x200000004\nMode: follower\nNode count: 7\n");
        refusing = await mk((w) => `${w} is not executed because it is not in the whitelist.\n`);
        silent = await mk(() => undefined);
    });
    after(() => {
        for (const s of servers) {
            s.close();
            // Connections the silent server holds open would keep close() waiting.
            (s as unknown as { unref(): void }).unref();
        }
    });

    it("reads srvr and its Mode", async () => {
        const text = await fourLetterWord("127.0.0.1", leader, "srvr", 2000);
        assert.equal(parseMode(text), "leader");
        assert.equal(parseMode("This ZooKeeper instance is not currently serving requests\n"), undefined);
    });

    it("names the whitelist when the server refuses a word", async () => {
        await assert.rejects(fourLetterWord("127.0.0.1", refusing, "mntr", 2000), /mntr on 127\.0\.0\.1:\d+: refused by the server's 4lw\.commands\.whitelist \(add mntr to it\)/);
    });

    it("times out on a server that does not answer", async () => {
        await assert.rejects(fourLetterWord("127.0.0.1", silent, "srvr", 300), /no answer within 300 ms/);
    });

    it("probes the leader among the servers, and says why when it cannot", async () => {
        const info = await probeLeaders(
            [
                { id: 1, address: "127.0.0.1", port: follower },
                { id: 2, address: "127.0.0.1", port: leader },
            ],
            2000,
        );
        // The release each server answered with, for the version guard.
        assert.deepEqual(info, { leaders: [2], known: true, versions: { 1: "3.9.3", 2: "3.9.3" } });
        const none = await probeLeaders([{ id: 1, address: "127.0.0.1", port: refusing }], 2000);
        assert.equal(none.known, false);
        assert.deepEqual(none.versions, {}, "a server that refused srvr has no version");
        assert.match(none.detail!, /whitelist/);
    });
});
