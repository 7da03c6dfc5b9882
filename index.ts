// zkmigrate: read the stack config, check one step per ensemble against what the last update
// applied, plan it quorum-safely, and declare it. Nothing is declared when any check fails.
import * as pulumi from "@pulumi/pulumi";
import { Fleet } from "./components";
import { ConfigError, currentOf, loadConfig, NAMESPACE, parseApplied, serversOf, type AppliedState, type FleetConfig, type RawConfig } from "./src/config";
import { desiredState, planFleet, UnsafeFleetError } from "./src/model";
import { formatConnect } from "./src/procedures/common";
import type { KafkaControllerInfo } from "./src/procedures/kafka";
import type { LeaderInfo } from "./src/plan";
import { probeKafkaController, probeLeaders } from "./src/zk";

/** Settings that arrive as strings from the config but are numbers or booleans. */
const JSON_KEYS = new Set(["sshPort", "leaderProbe", "leaderProbeTimeoutMs", "defaults", "ensembles"]);

function readRawConfig(): RawConfig {
    const raw: RawConfig = {};
    for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (!key.startsWith(`${NAMESPACE}:`)) continue;
        const k = key.slice(NAMESPACE.length + 1);
        try {
            raw[k] = JSON_KEYS.has(k) ? JSON.parse(value) : value;
        } catch {
            raw[k] = value; // the schema names the key and what it expected
        }
    }
    return raw;
}

function isSecret(key: string): boolean {
    const rt = pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean };
    return rt.isConfigSecret ? rt.isConfigSecret(key) : true;
}

/** The `applied` output of this very stack, written by the last successful update. */
async function readApplied(): Promise<unknown> {
    const self = new pulumi.StackReference(`${NAMESPACE}-applied`, {
        name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
    });
    return (await self.getOutputDetails("applied")).value;
}

async function probe(config: FleetConfig): Promise<Record<string, LeaderInfo>> {
    const out: Record<string, LeaderInfo> = {};
    await Promise.all(
        config.ensembles.map(async (e) => {
            const servers = serversOf(e).map((s) => ({ id: s.id, address: s.host, port: e.ports.client }));
            out[e.name] = await probeLeaders(servers, config.settings.leaderProbeTimeoutMs);
        }),
    );
    return out;
}

/**
 * The Kafka controller of each ensemble with brokers, so that they restart with the controller
 * last: as configured, else read from /controller through the connect string the brokers use now.
 */
async function probeControllers(config: FleetConfig, applied: AppliedState): Promise<Record<string, KafkaControllerInfo>> {
    const out: Record<string, KafkaControllerInfo> = {};
    await Promise.all(
        config.ensembles.map(async (e) => {
            if (e.procedure !== "mitosis" || !e.kafka) return;
            if (e.kafka.controller !== undefined) {
                out[e.name] = { controller: e.kafka.controller, detail: "clients.kafka.controller" };
            } else if (config.settings.leaderProbe) {
                const now = desiredState(e, currentOf(e, applied).phase).clients.current;
                out[e.name] = await probeKafkaController(formatConnect(now), config.settings.leaderProbeTimeoutMs * 2);
            }
        }),
    );
    return out;
}

async function main() {
    try {
        const config = loadConfig(readRawConfig(), isSecret);
        const applied = parseApplied(await readApplied());
        const leaders = config.settings.leaderProbe ? await probe(config) : {};
        const plans = planFleet(config, applied, leaders);
        const kafkaControllers = await probeControllers(config, applied);
        const fleet = new Fleet("fleet", { config, plans, privateKey: pulumi.secret(config.settings.sshPrivateKey!), kafkaControllers });
        return { applied: fleet.applied, ensembles: fleet.summary };
    } catch (err) {
        // Expected refusals print as they are, without a stack trace.
        if (err instanceof ConfigError || err instanceof UnsafeFleetError) {
            throw new pulumi.RunError(err.message);
        }
        throw err;
    }
}

export = main();
