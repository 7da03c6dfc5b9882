// The one service script of a fleet host (rehearsal/fleet/service-script.ts), as ZooKeeper's
// zk-service and Kafka's kafka-service: shellcheck-clean, and run against a stand-in JVM (a
// `java` that sleeps with the mark on its command line): start, status, stop, restart, disable.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { renderServiceScript, type ServiceScriptSpec } from "../../../rehearsal/fleet/service-script";
import { kafkaService } from "../../../rehearsal/kafka";
import { shellcheck } from "../../unit/scripts/harness";

const tmp = mkdtempSync(join(tmpdir(), "zkmigrate-service-script-"));
after(() => {
    // Whatever a failed case left running: the stand-in JVMs by their pid files.
    for (const name of ["zk", "kafka"]) {
        for (const pidFile of [join(tmp, name, "run", "zookeeper.pid"), join(tmp, name, "run", "kafka.pid")]) {
            try {
                process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGKILL");
            } catch {
                /* none */
            }
        }
    }
    rmSync(tmp, { recursive: true, force: true });
});

/** A `java` that ignores its arguments and waits (bounded, ends on SIGTERM): its command line carries the mark. */
function fakeJava(): string {
    const java = join(tmp, "java");
    writeFileSync(java, '#!/bin/bash\nsleep 120 &\ntrap \'kill "$!"; exit 0\' TERM\nwait\n');
    chmodSync(java, 0o755);
    return java;
}

function zk(home: string): ServiceScriptSpec {
    return {
        command: "zk-service",
        product: "ZooKeeper",
        version: "3.9.5",
        fleet: "t",
        host: "zk-1",
        home,
        java: fakeJava(),
        mark: `-Dzkmigrate.server=t/zk-1-${process.pid}`,
        jvmOptions: ["-Xmx64m", "-Done=it's quoted"],
        classpath: "/nonexistent/a.jar:/nonexistent/b.jar",
        mainClass: "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        configFile: "conf/zoo.cfg",
        pidFile: "run/zookeeper.pid",
        logFile: "logs/zookeeper.log",
        stopTimeoutSeconds: 20,
        disable: true,
    };
}

function install(spec: ServiceScriptSpec): string {
    mkdirSync(spec.home, { recursive: true });
    const script = join(spec.home, spec.command);
    writeFileSync(script, renderServiceScript(spec), { mode: 0o755 });
    return script;
}

function service(script: string, verb: string): { code: number | null; out: string } {
    const r = spawnSync(script, [verb], { encoding: "utf8", timeout: 60_000 });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("the fleet's service script", () => {
    it("is shellcheck-clean for ZooKeeper and for Kafka", () => {
        assert.equal(shellcheck(renderServiceScript(zk("/srv/host"))), "");
        const k = kafkaService({ fleet: "t", host: "kafka-1", version: "3.9.2", java: "/usr/bin/java", classpath: "/a.jar", home: "/srv/host", mark: "-Dzkmigrate.server=t/kafka-1" });
        assert.equal(shellcheck(renderServiceScript(k)), "");
    });

    it("Kafka's has no disable (a broker host is never replaced by a pod), and a 60 s stop timeout", () => {
        const k = renderServiceScript(kafkaService({ fleet: "t", host: "kafka-1", version: "3.9.2", java: "/usr/bin/java", classpath: "/a.jar", home: "/srv/host", mark: "m" }));
        assert.match(k, /^# kafka-service: Kafka 3\.9\.2 \(ZooKeeper mode\) on host kafka-1 of the zkmigrate fleet t\.$/m);
        assert.match(k, /usage: \$0 start\|stop\|restart\|status" >&2/);
        assert.doesNotMatch(k, /^disable\)/m);
        assert.match(k, /^readonly STOP_TIMEOUT=60$/m);
        assert.match(k, / kafka\.Kafka "\$CONFIG"/);
    });

    it("starts, reports, stops, restarts and disables the server by its pid file and mark", () => {
        const spec = zk(join(tmp, "zk"));
        const script = install(spec);
        assert.equal(service(script, "status").code, 3, "not running yet");
        const started = service(script, "start");
        assert.equal(started.code, 0, started.out);
        assert.match(started.out, /zk-service: started ZooKeeper 3\.9\.5 on zk-1 \(pid \d+\)/);
        const pid = Number(readFileSync(join(spec.home, "run", "zookeeper.pid"), "utf8"));
        const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        assert.ok(argv.includes(spec.mark) && argv.includes("-Done=it's quoted") && argv.includes(join(spec.home, "conf/zoo.cfg")), argv.join(" "));
        assert.match(service(script, "start").out, /already runs on zk-1/);
        assert.equal(service(script, "status").code, 0);
        const restarted = service(script, "restart");
        assert.equal(restarted.code, 0, restarted.out);
        assert.notEqual(Number(readFileSync(join(spec.home, "run", "zookeeper.pid"), "utf8")), pid, "a new process");
        assert.equal(service(script, "stop").code, 0);
        assert.equal(service(script, "status").code, 3);
        assert.equal(service(script, "disable").code, 0);
        const refused = service(script, "start");
        assert.notEqual(refused.code, 0);
        assert.match(refused.out, /disabled .*'zk-service enable' undoes that/);
        assert.equal(service(script, "enable").code, 0);
        assert.equal(service(script, "start").code, 0);
        assert.equal(service(script, "stop").code, 0);
        assert.match(readFileSync(join(spec.home, "logs", "zookeeper.log"), "utf8"), /zk-service: stopping ZooKeeper \(pid \d+\)/);
        assert.equal(service(script, "bogus").code, 2);
    });

    it("leaves a process without the mark alone (a pid file pointing at another process)", () => {
        const spec = { ...zk(join(tmp, "kafka")), command: "kafka-service", pidFile: "run/kafka.pid", logFile: "logs/kafka.log" };
        const script = install(spec);
        mkdirSync(join(spec.home, "run"), { recursive: true });
        writeFileSync(join(spec.home, "run", "kafka.pid"), `${process.pid}\n`);
        const r = service(script, "stop");
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /is not running/);
        assert.ok(process.kill(process.pid, 0), "this process lives");
    });
});
