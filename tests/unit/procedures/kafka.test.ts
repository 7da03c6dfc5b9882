// Kafka brokers as clients of a mitosis: the config (clients.kafka, the chroot across the move),
// the desired state per phase, and the restart order (controller last).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig, type MitosisConfig, type RawConfig } from "../../../src/config";
import { formatConnectString as formatConnect } from "../../../src/format/connect-string";
import { kafkaRestartOrder } from "../../../src/procedures/kafka";
import { parseControllerZnode } from "../../../src/zk/kafka";
import { MITOSIS_PHASES, mitosisDesired } from "../../../src/procedures/mitosis";
import { devRawConfig, edited } from "../../fixtures";

function refusal(raw: RawConfig): ConfigError {
    try {
        loadConfig(raw);
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
        return err;
    }
    assert.fail("expected the config to be refused");
}

const mitosis = (raw: RawConfig = devRawConfig()) => loadConfig(raw).ensembles[0] as MitosisConfig;
const kafkaOf = (r: any) => r.ensembles[0].clients.kafka;

describe("clients.kafka config", () => {
    it("Pulumi.dev.yaml: three brokers with the documented defaults", () => {
        const e = mitosis();
        assert.deepEqual(
            e.kafka?.brokers.map((b) => b.id),
            [21, 22, 23],
        );
        assert.deepEqual(e.kafka?.settings, {
            serverProperties: "/etc/kafka/server.properties",
            binDir: "/opt/kafka/bin",
            port: 9092,
            service: { restart: "systemctl restart kafka", status: "systemctl status kafka --no-pager" },
            healthTimeoutSeconds: 300,
            spacingSeconds: 10,
            allowChrootChange: false,
        });
        assert.equal(e.kafka?.controller, undefined);
        assert.equal(e.newChroot, undefined);
    });

    it("commandConfig (SASL/SSL listeners) reaches the brokers' settings", () => {
        const e = mitosis(edited(devRawConfig(), (r) => (kafkaOf(r).commandConfig = "/etc/kafka/admin.properties")));
        assert.equal(e.kafka?.settings.commandConfig, "/etc/kafka/admin.properties");
    });

    it("refuses a new chroot that differs from the old one, with the exact reason", () => {
        const err = refusal(edited(devRawConfig(), (r) => (r.ensembles[0].clients.newChroot = "/kafka-new")));
        assert.deepEqual(err.issues, [
            {
                path: "zkmigrate:ensembles[kafka-main].clients.newChroot",
                reason:
                    "the new connect string's chroot /kafka-new differs from the old one's /kafka: Kafka keeps all its state " +
                    "(brokers, topics, controller, ISR) under its chroot and mitosis moves the tree as it is, so brokers on another " +
                    "chroot would find an empty cluster; set clients.allowChrootChange: true only when that tree exists at the new chroot",
            },
        ]);
    });

    it("refuses dropping the chroot on the new connect string too, names (none)", () => {
        // A chroot is required to be a path: dropping it is only possible when the old one had none.
        const err = refusal(
            edited(devRawConfig(), (r) => {
                delete r.ensembles[0].clients.chroot;
                r.ensembles[0].clients.newChroot = "/kafka";
            }),
        );
        assert.match(err.message, /clients\.newChroot: the new connect string's chroot \/kafka differs from the old one's \(none\)/);
    });

    it("accepts a chroot change when allowChrootChange is set; the new connect string carries it", () => {
        const e = mitosis(
            edited(devRawConfig(), (r) => {
                r.ensembles[0].clients.newChroot = "/kafka-new";
                r.ensembles[0].clients.allowChrootChange = true;
            }),
        );
        const d = mitosisDesired(e, "clients");
        assert.equal(formatConnect(d.clients.old), "192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka");
        assert.equal(formatConnect(d.clients.next), "192.0.2.4:2181,192.0.2.5:2181,192.0.2.6:2181/kafka-new");
        assert.equal(e.kafka?.settings.allowChrootChange, true);
    });

    const refusals: { name: string; edit: (k: any) => void; path: string; reason: RegExp }[] = [
        { name: "a broker.id twice", edit: (k) => (k.brokers[2].id = 21), path: ".clients.kafka.brokers[2].id", reason: /broker\.id 21 is used twice \(also clients\.kafka\.brokers\[0\]\)/ },
        { name: "a host twice", edit: (k) => (k.brokers[1].host = "192.0.2.21"), path: ".clients.kafka.brokers[1].host", reason: /host 192\.0\.2\.21 is listed twice/ },
        { name: "a negative broker.id", edit: (k) => (k.brokers[0].id = -1), path: ".clients.kafka.brokers[0].id", reason: /a broker\.id is 0 or more/ },
        { name: "no brokers", edit: (k) => (k.brokers = []), path: ".clients.kafka.brokers", reason: /at least one broker/ },
        { name: "a controller that is no broker", edit: (k) => (k.controller = 7), path: ".clients.kafka.controller", reason: /broker\.id 7 is not one of clients\.kafka\.brokers/ },
        { name: "a relative serverProperties", edit: (k) => (k.serverProperties = "server.properties"), path: ".clients.kafka.serverProperties", reason: /an absolute path/ },
        { name: "a relative commandConfig", edit: (k) => (k.commandConfig = "admin.properties"), path: ".clients.kafka.commandConfig", reason: /an absolute path/ },
        { name: "a commandConfig that is no string", edit: (k) => (k.commandConfig = true), path: ".clients.kafka.commandConfig", reason: /string/ },
        { name: "an unknown key", edit: (k) => (k.restart = "always"), path: ".clients.kafka", reason: /restart/ },
        { name: "a bad host", edit: (k) => (k.brokers[0].host = "not a host"), path: ".clients.kafka.brokers[0].host", reason: /not an IP address or host name/ },
    ];
    for (const c of refusals) {
        it(`refuses ${c.name} with the path`, () => {
            const err = refusal(edited(devRawConfig(), (r) => c.edit(kafkaOf(r))));
            const issue = err.issues.find((i) => i.path === `zkmigrate:ensembles[kafka-main]${c.path}`);
            assert.ok(issue, `no issue at ${c.path}: ${err.message}`);
            assert.match(issue.reason, c.reason);
        });
    }

    it("is a mitosis key: a kubernetes ensemble refuses clients.kafka", () => {
        const err = refusal(edited(devRawConfig(), (r) => (r.ensembles[1].clients = { kafka: { brokers: [{ id: 1, host: "192.0.2.21" }] } })));
        assert.match(err.message, /zkmigrate:ensembles\[shared\]\.clients: .*kafka/);
    });
});

describe("the brokers per phase", () => {
    it("run with the old connect string before `clients`, the new one from `clients` on", () => {
        const e = mitosis();
        for (const phase of MITOSIS_PHASES) {
            const k = mitosisDesired(e, phase).clients.kafka;
            assert.ok(k, phase);
            const moved = MITOSIS_PHASES.indexOf(phase) >= MITOSIS_PHASES.indexOf("clients");
            assert.equal(formatConnect(k.connect), moved ? "192.0.2.4:2181,192.0.2.5:2181,192.0.2.6:2181/kafka" : "192.0.2.1:2181,192.0.2.2:2181,192.0.2.3:2181/kafka", phase);
        }
    });

    it("are absent from the desired state without clients.kafka", () => {
        const e = mitosis(edited(devRawConfig(), (r) => delete r.ensembles[0].clients.kafka));
        assert.equal(mitosisDesired(e, "clients").clients.kafka, undefined);
    });
});

describe("kafkaRestartOrder", () => {
    const brokers = [21, 22, 23].map((id) => ({ id, host: `192.0.2.${id}` }));
    const table: { name: string; controller?: number; order: number[]; warning: boolean }[] = [
        { name: "controller first in config goes last", controller: 21, order: [22, 23, 21], warning: false },
        { name: "controller in the middle goes last", controller: 22, order: [21, 23, 22], warning: false },
        { name: "controller already last", controller: 23, order: [21, 22, 23], warning: false },
        { name: "unknown controller: config order, warned", order: [21, 22, 23], warning: true },
        { name: "a controller outside the list: config order, warned", controller: 5, order: [21, 22, 23], warning: true },
    ];
    for (const c of table) {
        it(c.name, () => {
            const o = kafkaRestartOrder(brokers, { controller: c.controller, detail: "test" });
            assert.deepEqual(
                o.brokers.map((b) => b.id),
                c.order,
            );
            assert.equal(o.warning !== undefined, c.warning);
        });
    }

    it("parses /controller of ZooKeeper-mode Kafka", () => {
        assert.equal(parseControllerZnode('{"version":2,"brokerid":3,"timestamp":"1700000000000","kraftControllerEpoch":-1}'), 3);
        assert.equal(parseControllerZnode('{"version":1,"brokerid":0,"timestamp":"1"}'), 0);
        assert.equal(parseControllerZnode("not json"), undefined);
        assert.equal(parseControllerZnode('{"version":2}'), undefined);
    });
});
