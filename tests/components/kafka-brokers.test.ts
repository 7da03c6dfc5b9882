// The KafkaBrokers component under Pulumi mocks, through every mitosis phase: one command per
// broker, whose update (the restart) changes exactly once, at `clients`; the rolling order puts
// the controller last; each command is a child of the brokers component of its ensemble.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FleetConfig } from "../../src/config";
import { MITOSIS_PHASES } from "../../src/procedures/mitosis";
import type { KafkaControllerInfo } from "../../src/procedures/kafka";
import { devFleet, devRawConfig, edited } from "../fixtures";
import { loadConfig } from "../../src/config";
import { appliedAfter, runFleet, type FleetRun } from "./harness";

const BROKERS = [21, 22, 23];
const NEW = "192.0.2.4:2181,192.0.2.5:2181,192.0.2.6:2181/kafka";
const OLD = "192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka";
const leaders = { "kafka-main": { leaders: [3], known: true } };

async function walk(controller: number | undefined, configOf: (phase: string) => FleetConfig = (phase) => devFleet({ "kafka-main": phase })) {
    const runs: { phase: string; run: FleetRun }[] = [];
    let prev: FleetConfig | undefined;
    for (const phase of MITOSIS_PHASES) {
        const config = configOf(phase);
        const controllers: Record<string, KafkaControllerInfo> = controller === undefined ? {} : { "kafka-main": { controller, detail: "test" } };
        runs.push({ phase, run: await runFleet(config, prev ? appliedAfter(prev) : {}, leaders, controllers) });
        prev = config;
    }
    return runs;
}

const brokerCmd = (run: FleetRun, id: number) => run.byName.get(`kafka-main-kafka-broker-${id}`)!;

describe("KafkaBrokers (mocks), Pulumi.dev.yaml through every phase", () => {
    let runs: { phase: string; run: FleetRun }[];

    it("declares one command per broker in every phase, on the broker's host", async () => {
        runs = await walk(21);
        for (const { phase, run } of runs) {
            for (const id of BROKERS) {
                const cmd = brokerCmd(run, id);
                assert.ok(cmd, `${phase}: broker ${id}`);
                assert.equal((cmd.inputs.connection.value ?? cmd.inputs.connection).host, `192.0.2.${id}`);
            }
        }
    });

    it("restarts the brokers only in `clients`: the restart text changes there and nowhere else", () => {
        const changed = (i: number, id: number) => {
            const a = brokerCmd(runs[i - 1].run, id).inputs;
            const b = brokerCmd(runs[i].run, id).inputs;
            return a.create !== b.create || a.update !== b.update;
        };
        for (let i = 1; i < runs.length; i++) {
            for (const id of BROKERS) {
                assert.equal(changed(i, id), runs[i].phase === "clients", `${runs[i].phase}: broker ${id}`);
            }
        }
        const clients = runs.find((r) => r.phase === "clients")!.run;
        for (const id of BROKERS) {
            const { create, update } = brokerCmd(clients, id).inputs;
            assert.match(update, /readonly MODE='restart'/);
            assert.match(update, new RegExp(`readonly CONNECT='${NEW}'`));
            assert.match(update, new RegExp(`readonly BROKER_ID='${id}'`));
            assert.match(update, new RegExp(`readonly BOOTSTRAP='192\\.0\\.2\\.${id}:9092'`));
            // A broker first declared in this phase is adopted: restarted only if its file changes.
            assert.match(create, /readonly MODE='adopt'/);
            assert.match(create, new RegExp(`readonly CONNECT='${NEW}'`));
        }
        const separate = runs[0].run;
        assert.match(brokerCmd(separate, 21).inputs.create, new RegExp(`readonly CONNECT='${OLD}'`));
    });

    it("rolls one broker at a time with the controller last", () => {
        for (const { phase, run } of runs) {
            const child = run.fleet.ensembles.get("kafka-main")!;
            assert.ok("kafka" in child && child.kafka, phase);
            assert.deepEqual(
                child.kafka.order.ids,
                [22, 23, 21],
                phase,
            );
            assert.deepEqual(run.outputs["kafka-main"].kafkaRestartOrder, ["broker 22", "broker 23", "broker 21", "(controller 21 last (test))"]);
        }
    });

    it("parents each broker command to the ensemble's brokers component (URN segments)", async () => {
        const c = runs[2].run.fleet.ensembles.get("kafka-main")!;
        const brokersUrn = "kafka" in c && c.kafka ? await new Promise<string>((res) => c.kafka!.urn.apply((u) => res(u))) : "";
        const run = runs[2].run;
        for (const id of BROKERS) {
            const urn = run.urns.get(`kafka-main-kafka-broker-${id}`);
            assert.ok(urn, `urn of broker ${id}`);
            assert.match(urn, /::zkmigrate:kafka:Brokers\$command:remote:Command::kafka-main-kafka-broker-\d+$/);
        }
        const child = run.fleet.ensembles.get("kafka-main")!;
        assert.ok("kafka" in child && child.kafka);
        assert.equal(brokersUrn, "urn:pulumi:dev::zkmigrate::zkmigrate:mitosis:Ensemble$zkmigrate:kafka:Brokers::kafka-main-kafka");
    });

    it("without a known controller: config order and a warning in the order's reason", async () => {
        const r = await runFleet(devFleet({ "kafka-main": "separate" }), {}, leaders, {});
        const child = r.fleet.ensembles.get("kafka-main")!;
        assert.ok("kafka" in child && child.kafka);
        assert.deepEqual(
            child.kafka.order.ids,
            BROKERS,
        );
        assert.match(child.kafka.order.warning ?? "", /Kafka controller unknown \(not probed\): brokers restart in config order/);
    });

    it("reaches a broker through sshHost when given, pinned to its hostKey, and declares nothing for an ensemble without brokers", async () => {
        const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHy2nwLKKsvoLXAX2HkyOK/qm9VfZaDevXgkqKvx+ws";
        const raw = edited(devRawConfig(), (x) => Object.assign(x.ensembles[0].clients.kafka.brokers[0], { sshHost: "jump-21.example", hostKey: `${key} root@jump-21` }));
        const r = await runFleet(loadConfig(raw), {}, leaders, {});
        const connection = brokerCmd(r, 21).inputs.connection.value ?? brokerCmd(r, 21).inputs.connection;
        assert.equal(connection.host, "jump-21.example");
        assert.equal(connection.hostKey, key, "the broker's own hostKey, without its comment");
        const none = await runFleet(loadConfig(edited(devRawConfig(), (x) => delete x.ensembles[0].clients.kafka)), {}, leaders, {});
        assert.equal(none.resources.filter((x) => x.name.includes("-kafka-broker-")).length, 0);
        assert.equal(none.outputs["kafka-main"].kafkaRestartOrder, undefined);
    });
});
