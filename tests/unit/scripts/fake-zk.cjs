// A fake ZooKeeper for the script tests: answers four-letter words on 127.0.0.1 like ZooKeeper
// 3.9 does, and nothing else. Started and stopped by the test's "service commands".
//
//   node fake-zk.cjs --port P --pidfile F [--serving yes|no] [--allow srvr,mntr]
//                    [--serve-after-ms N] [--stop-delay-ms N] [--znodes N] [--mode follower] [--version 3.9.3]
"use strict";
const net = require("node:net");
const fs = require("node:fs");

const opts = { serving: "yes", allow: "srvr,mntr,ruok,conf,stat", "serve-after-ms": "0", "stop-delay-ms": "0", znodes: "5", mode: "follower", version: "3.9.3" };
for (let i = 2; i < process.argv.length; i += 2) opts[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const port = Number(opts.port);
const allowed = new Set(opts.allow.split(",").filter(Boolean));
const started = Date.now();

function answer(word) {
    // ZooKeeper checks the whitelist first, then whether the server serves.
    if (!allowed.has(word)) return `${word} is not executed because it is not in the whitelist.\n`;
    if (word === "ruok") return "imok";
    const serving = opts.serving === "yes" && Date.now() - started >= Number(opts["serve-after-ms"]);
    if (!serving) return "This ZooKeeper instance is not currently serving requests\n";
    if (word === "srvr" || word === "stat") {
        return [
            `Zookeeper version: ${opts.version}-fake, built on 2024-10-17 23:21 UTC`,
            "Latency min/avg/max: 0/0.0/0",
            "Received: 1",
            "Sent: 0",
            "Connections: 1",
            "Outstanding: 0",
            "Zxid: 0x100000002",
            `Mode: ${opts.mode}`,
            `Node count: ${opts.znodes}`,
            "",
        ].join("\n");
    }
    if (word === "mntr") {
        return `zk_version\t${opts.version}-fake\nzk_server_state\t${opts.mode}\nzk_znode_count\t${opts.znodes}\n`;
    }
    return "";
}

const server = net.createServer((socket) => {
    let buf = "";
    socket.setTimeout(5000, () => socket.destroy());
    socket.on("error", () => {});
    socket.on("data", (d) => {
        buf += d.toString("utf8");
        if (buf.length >= 4) socket.end(answer(buf.slice(0, 4)));
    });
});

server.listen(port, "127.0.0.1", () => fs.writeFileSync(opts.pidfile, `${process.pid}\n`));
server.on("error", (err) => {
    console.error(`fake-zk: ${err.message}`);
    process.exit(1);
});

// Like a JVM that takes a while to shut down: keeps listening for stop-delay-ms after SIGTERM.
process.on("SIGTERM", () => {
    setTimeout(() => {
        server.close();
        try {
            fs.unlinkSync(opts.pidfile);
        } catch {}
        process.exit(0);
    }, Number(opts["stop-delay-ms"]));
});
// Never outlive a test run by much, whatever happens to the test.
setTimeout(() => process.exit(0), 120_000).unref();
