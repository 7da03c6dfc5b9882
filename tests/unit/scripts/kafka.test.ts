// renderKafkaBroker against a fake Kafka install (server.properties, the two tools of its bin/
// that the gate runs, a service command that records restarts), run with bash as on a host.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { renderKafkaBroker } from "../../../src/scripts";
import type { ConnectString, KafkaSettings } from "../../../src/types";
import { binDir, runScript, shellcheck, tempDir } from "./harness";

let root: string;
let bin: string;

before(() => {
    root = tempDir("kafka");
    bin = binDir(root);
});
after(() => rmSync(root, { recursive: true, force: true }));

const OLD: ConnectString = { servers: [1, 2, 3].map((id) => ({ id, host: `192.0.2.${id}`, port: 2181 })), chroot: "/kafka" };
const NEW: ConnectString = { servers: [4, 5, 6].map((id) => ({ id, host: `192.0.2.${id}`, port: 2181 })), chroot: "/kafka" };
const OLD_TEXT = "192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka";
const NEW_TEXT = "192.0.2.4:2181,192.0.2.5:2181,192.0.2.6:2181/kafka";

interface Install {
    dir: string;
    props: string;
    settings: KafkaSettings;
    restarts(): number;
    /** The gate's tool calls so far, each `<tool> <args>`. */
    calls(): string[];
    /** Sets what the fake tools answer: the brokers in the cluster metadata and the under-replicated partitions. */
    cluster(o: { brokers?: number[]; urp?: string[]; apiFails?: boolean }): void;
}

let n = 0;
/** A fake broker install; `onRestart` is shell run by the restart command (after recording it). */
function install(properties: string, o: { onRestart?: string; timeout?: number; allowChrootChange?: boolean } = {}): Install {
    const dir = join(root, `broker-${n++}`);
    mkdirSync(join(dir, "bin"), { recursive: true });
    mkdirSync(join(dir, "state"), { recursive: true });
    const props = join(dir, "server.properties");
    writeFileSync(props, properties);
    const state = join(dir, "state");
    const tool = (name: string, body: string) => {
        // Each call's arguments are recorded (state/calls), one line per call.
        writeFileSync(join(dir, "bin", name), `#!/usr/bin/env bash\nS='${state}'\necho "${name} $*" >>"$S/calls"\n${body}\n`);
        chmodSync(join(dir, "bin", name), 0o755);
    };
    tool(
        "kafka-broker-api-versions.sh",
        `[[ -f "$S/api-fails" ]] && { echo "Connection to node -1 (/192.0.2.21:9092) could not be established." >&2; exit 1; }\n` +
            `for id in $(cat "$S/brokers"); do echo "192.0.2.2$id:9092 (id: $id rack: null) -> ("; echo "	Produce(0): 0 to 11 [usable: 11],"; echo ")"; done`,
    );
    tool("kafka-topics.sh", `[[ "$*" == *"--under-replicated-partitions"* ]] || exit 2\ncat "$S/urp"`);
    const i: Install = {
        dir,
        props,
        settings: {
            serverProperties: props,
            binDir: join(dir, "bin"),
            port: 9092,
            service: { restart: `echo restart >>'${state}/restarts'; ${o.onRestart ?? "true"}`, status: "echo 'kafka.service: active (running)'" },
            healthTimeoutSeconds: o.timeout ?? 5,
            spacingSeconds: 0,
            allowChrootChange: o.allowChrootChange ?? false,
        },
        restarts: () => (existsSync(join(state, "restarts")) ? readFileSync(join(state, "restarts"), "utf8").trim().split("\n").length : 0),
        calls: () => (existsSync(join(state, "calls")) ? readFileSync(join(state, "calls"), "utf8").trim().split("\n") : []),
        cluster: (c) => {
            writeFileSync(join(state, "brokers"), (c.brokers ?? [1, 2, 3]).join(" "));
            writeFileSync(join(state, "urp"), (c.urp ?? []).map((l) => `${l}\n`).join(""));
            if (c.apiFails) writeFileSync(join(state, "api-fails"), "");
            else rmSync(join(state, "api-fails"), { force: true });
        },
    };
    i.cluster({});
    return i;
}

const PROPS = `# Kafka broker 1\nbroker.id=1\nlisteners=PLAINTEXT://192.0.2.21:9092\nzookeeper.connect=${OLD_TEXT}\nlog.dirs=/var/lib/kafka\n`;
const URP = "\tTopic: events\tPartition: 0\tLeader: 2\tReplicas: 1,2,3\tIsr: 2,3";

const script = (i: Install, mode: "restart" | "adopt", connect: ConnectString = NEW, brokerId = 1) =>
    renderKafkaBroker({ brokerId, host: "192.0.2.21", kafka: i.settings, connect, mode });

const TEST = { timeout: 30_000 };

describe("renderKafkaBroker", () => {
    it("rewrites only zookeeper.connect (backup, other lines kept), restarts once and passes the gate", TEST, async () => {
        const i = install(PROPS);
        const r = await runScript(script(i, "restart"), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(readFileSync(i.props, "utf8"), PROPS.replace(OLD_TEXT, NEW_TEXT));
        const backups = readdirSync(i.dir).filter((f) => f.startsWith("server.properties.zkmigrate-"));
        assert.equal(backups.length, 1);
        assert.equal(readFileSync(join(i.dir, backups[0]), "utf8"), PROPS);
        assert.equal(i.restarts(), 1);
        assert.match(r.stdout, /current zookeeper.connect=192\.0\.2\.1:2181,.*\/kafka/);
        assert.match(r.stdout, /broker gate \(before the restart\): broker 1 is in the cluster, no under-replicated partitions/);
        assert.match(r.stdout, /broker gate \(after the restart\): broker 1 is in the cluster, no under-replicated partitions/);
        assert.match(r.stdout, /done: broker 1 restarted with zookeeper.connect=192\.0\.2\.4:2181,192\.0\.2\.5:2181,192\.0\.2\.6:2181\/kafka/);
    });

    it("adopt: a broker already on the connect string is gated, not restarted, its file untouched", TEST, async () => {
        const i = install(PROPS);
        const r = await runScript(script(i, "adopt", OLD), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(i.restarts(), 0);
        assert.equal(readFileSync(i.props, "utf8"), PROPS);
        assert.match(r.stdout, /unchanged/);
        assert.match(r.stdout, /done: broker 1 already runs with/);
    });

    it("adopt: a broker whose file still has the old connect string is rewritten and restarted", TEST, async () => {
        const i = install(PROPS.replace("zookeeper.connect=", "zookeeper.connect = "));
        const r = await runScript(script(i, "adopt"), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(i.restarts(), 1);
        assert.match(readFileSync(i.props, "utf8"), new RegExp(`^zookeeper\\.connect=${NEW_TEXT.replace(/\./g, "\\.")}$`, "m"));
    });

    it("refuses another chroot unless allowChrootChange, before touching anything", TEST, async () => {
        const i = install(PROPS);
        const other = { ...NEW, chroot: "/kafka-new" };
        const r = await runScript(script(i, "restart", other), { binDir: bin });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /the chroot of the current zookeeper.connect \(\/kafka\) differs from the new one \(\/kafka-new\): refusing \(clients.allowChrootChange allows it\)/);
        assert.equal(readFileSync(i.props, "utf8"), PROPS);
        assert.equal(i.restarts(), 0);
        const allowed = install(PROPS, { allowChrootChange: true });
        const r2 = await runScript(script(allowed, "restart", other), { binDir: bin });
        assert.equal(r2.code, 0, r2.stderr);
        assert.equal(allowed.restarts(), 1);
    });

    for (const [name, props, reason] of [
        ["another broker's file", PROPS.replace("broker.id=1", "broker.id=2"), /says broker\.id=2, expected 1: refusing/],
        ["a KRaft broker (no zookeeper.connect)", PROPS.replace(/^zookeeper\.connect=.*\n/m, ""), /has no zookeeper\.connect line: refusing/],
        ["zookeeper.connect twice", `${PROPS}zookeeper.connect=${OLD_TEXT}\n`, /sets zookeeper\.connect 2 times: refusing/],
    ] as const) {
        it(`refuses ${name}`, TEST, async () => {
            const i = install(props);
            const r = await runScript(script(i, "restart"), { binDir: bin });
            assert.equal(r.code, 1);
            assert.match(r.stderr, reason);
            assert.equal(readFileSync(i.props, "utf8"), props);
            assert.equal(i.restarts(), 0);
        });
    }

    it("does not restart a broker while partitions are under-replicated (bounded wait, then the reason)", TEST, async () => {
        const i = install(PROPS, { timeout: 2 });
        i.cluster({ urp: [URP] });
        const r = await runScript(script(i, "restart"), { binDir: bin });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /broker gate \(before the restart\) failed: broker 1 not back in a fully replicated cluster within 2 s/);
        assert.match(r.stderr, /last answer: 1 under-replicated partition\(s\), e\.g\.: Topic: events Partition: 0/);
        assert.match(r.stderr, /kafka\.service: active \(running\)/);
        assert.equal(i.restarts(), 0);
        assert.equal(readFileSync(i.props, "utf8"), PROPS);
        assert.ok(r.ms < 15_000, `bounded: ${r.ms} ms`);
    });

    it("fails when the broker does not come back into the cluster after its restart", TEST, async () => {
        const i = install(PROPS, { timeout: 2 });
        // The restart takes the broker out of the metadata for good.
        i.settings.service.restart += `; echo 2 3 >'${join(i.dir, "state", "brokers")}'`;
        const r = await runScript(script(i, "restart"), { binDir: bin });
        assert.equal(r.code, 1);
        assert.equal(i.restarts(), 1);
        assert.match(r.stderr, /broker gate \(after the restart\) failed/);
        assert.match(r.stderr, /does not list broker 1 \(listed: id: 2 id: 3 \)/);
    });

    it("fails when the broker does not answer, with the tool's error", TEST, async () => {
        const i = install(PROPS, { timeout: 2 });
        i.settings.service.restart += `; touch '${join(i.dir, "state", "api-fails")}'`;
        const r = await runScript(script(i, "restart"), { binDir: bin });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /kafka-broker-api-versions\.sh --bootstrap-server 192\.0\.2\.21:9092 exited 1: Connection to node -1/);
    });

    it("fails when the tools are not where binDir says", TEST, async () => {
        const i = install(PROPS);
        i.settings.binDir = join(i.dir, "nowhere");
        const r = await runScript(script(i, "restart"), { binDir: bin });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /nowhere\/kafka-broker-api-versions\.sh is not an executable \(kafka\.binDir must hold Kafka's bin\/ scripts\)/);
        assert.equal(i.restarts(), 0);
    });

    it("without commandConfig the tools get no --command-config", TEST, async () => {
        const i = install(PROPS);
        const r = await runScript(script(i, "restart"), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.ok(i.calls().length >= 4, i.calls().join("\n"));
        for (const c of i.calls()) assert.doesNotMatch(c, /--command-config/);
    });

    it("commandConfig (a SASL/SSL listener): both tools of the gate get --command-config <file>, on every call", TEST, async () => {
        const i = install(PROPS);
        const file = join(i.dir, "client ssl.properties");
        writeFileSync(file, "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n");
        i.settings.commandConfig = file;
        const r = await runScript(script(i, "restart"), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        const calls = i.calls();
        assert.deepEqual(
            [...new Set(calls.map((c) => c.split(" ")[0]))].sort(),
            ["kafka-broker-api-versions.sh", "kafka-topics.sh"],
        );
        for (const c of calls) assert.ok(c.endsWith(` --command-config ${file}`), c);
        assert.ok(calls.includes(`kafka-broker-api-versions.sh --bootstrap-server 192.0.2.21:9092 --command-config ${file}`), calls.join("\n"));
        assert.ok(calls.includes(`kafka-topics.sh --bootstrap-server 192.0.2.21:9092 --describe --under-replicated-partitions --command-config ${file}`), calls.join("\n"));
    });

    it("refuses a commandConfig that is not there, before touching anything", TEST, async () => {
        const i = install(PROPS);
        i.settings.commandConfig = join(i.dir, "missing.properties");
        const r = await runScript(script(i, "restart"), { binDir: bin });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /missing\.properties \(kafka\.commandConfig\) is not a file \S+ can read: the gate's tools run as \S+ with --command-config/);
        assert.deepEqual(i.calls(), []);
        assert.equal(i.restarts(), 0);
        assert.equal(readFileSync(i.props, "utf8"), PROPS);
    });

    it("is shellcheck-clean in both modes, with and without chroot, IPv6, odd paths and a commandConfig", () => {
        const i = install(PROPS);
        const v6: ConnectString = { servers: [{ id: 4, host: "2001:db8::4", port: 2181 }] };
        for (const mode of ["restart", "adopt"] as const) {
            for (const c of [NEW, v6]) {
                for (const commandConfig of [undefined, "/etc/kafka/admin client.properties"]) {
                    const kafka = { ...i.settings, serverProperties: "/etc/kafka dir/server.properties", ...(commandConfig ? { commandConfig } : {}) };
                    const s = renderKafkaBroker({ brokerId: 7, host: "2001:db8::21", kafka, connect: c, mode });
                    assert.equal(shellcheck(s), "", `${mode} ${JSON.stringify(c)} ${commandConfig}`);
                }
            }
        }
    });

    it("refuses bad input at render time", () => {
        const i = install(PROPS);
        assert.throws(() => renderKafkaBroker({ brokerId: -1, host: "h", kafka: i.settings, connect: NEW, mode: "restart" }), /broker id must be an integer/);
        assert.throws(() => renderKafkaBroker({ brokerId: 1, host: "h", kafka: { ...i.settings, binDir: "bin" }, connect: NEW, mode: "restart" }), /kafka\.binDir must be an absolute path/);
        assert.throws(() => renderKafkaBroker({ brokerId: 1, host: "h", kafka: i.settings, connect: { servers: [] }, mode: "restart" }), /at least one server/);
        assert.throws(() => renderKafkaBroker({ brokerId: 1, host: "h", kafka: { ...i.settings, commandConfig: "admin.properties" }, connect: NEW, mode: "restart" }), /kafka\.commandConfig must be an absolute path/);
    });
});
