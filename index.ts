// zkmigrate: read the stack config, check one step per ensemble against what the last update
// applied, plan it quorum-safely, and declare it. Nothing is declared when any check fails.
import * as pulumi from "@pulumi/pulumi";
import { Fleet } from "./components";
import { appliedIssues, checkConfig, ConfigError, configuredNames, currentOf, mergeAdopted, rmCommand, NAMESPACE, parseApplied, rawConfigOf, resolvedHostIssues, serversOf, validateTransitions, type AppliedState, type FleetConfig } from "./src/config";
import { formatConnectString } from "./src/format/connect-string";
import { desiredState, planFleet, UnsafeFleetError } from "./src/model";
import { procedureOf } from "./src/procedures/registry";
import { versionGuard } from "./src/version-guard";
import { reconfigEnsembles, reconfigGuard } from "./src/reconfig-guard";
import { probeReconfig, type ReconfigReading } from "./src/zk/reconfig-probe";
import type { KafkaControllerInfo, LeaderInfo } from "./src/steps";
import { probeKafkaController, probeLeaders } from "./src/zk";

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

/** Each ensemble's leader, read with `srvr`, for the procedures that restart servers. */
async function probe(config: FleetConfig): Promise<Record<string, LeaderInfo>> {
    const out: Record<string, LeaderInfo> = {};
    await Promise.all(
        config.ensembles
            .filter((e) => procedureOf(e).managesServers)
            .map(async (e) => {
                const servers = serversOf(e).map((s) => ({ id: s.id, address: s.host, port: e.ports.client }));
                out[e.name] = await probeLeaders(servers, config.settings.leaderProbeTimeoutMs);
            }),
    );
    return out;
}

/**
 * The Kafka controller of each ensemble with brokers whose controller the config does not name,
 * read from /controller through the connect string the brokers use now, so that it restarts last.
 */
async function probeControllers(config: FleetConfig, applied: AppliedState): Promise<Record<string, KafkaControllerInfo>> {
    const out: Record<string, KafkaControllerInfo> = {};
    if (!config.settings.leaderProbe) return out;
    await Promise.all(
        config.ensembles.map(async (e) => {
            const kafka = desiredState(e, currentOf(e, applied).phase, currentOf(e, applied).cutover).clients.kafka;
            if (!kafka || ("kafka" in e && e.kafka?.controller !== undefined)) return;
            out[e.name] = await probeKafkaController(formatConnectString(kafka.connect), config.settings.leaderProbeTimeoutMs * 2);
        }),
    );
    return out;
}

async function main() {
    try {
        // Every config problem in one pass: the schema, each ensemble's own rules, and the step
        // of every ensemble that parsed against what was applied, before anything is probed.
        const raw = rawConfigOf(pulumi.runtime.allConfig());
        const checked = checkConfig(raw, isSecret);
        // Records rebuilt by `zkmigrate adopt` stand in only where the stack has none of its own.
        const stored = await readApplied();
        const adopted = mergeAdopted(raw.adopted, parseApplied(stored), checked.ensembles);
        const applied = adopted.applied;
        for (const name of adopted.leftovers) {
            pulumi.log.warn(`${NAMESPACE}:adopted.${name} says what the stack's own applied record says: remove it (${rmCommand(name)})`);
        }
        const issues = [...checked.issues, ...appliedIssues(stored), ...adopted.issues, ...validateTransitions(checked.ensembles, applied, configuredNames(raw) ?? Object.keys(applied))];
        if (issues.length > 0 || !checked.config) throw new ConfigError(issues);
        for (const w of checked.warnings) void pulumi.log.warn(w);
        const config = checked.config;
        // A name and an address of one server (or two names of one host) show only where they
        // resolve: with the probe on, each name is looked up once, bounded by the probe timeout.
        if (config.settings.leaderProbe) {
            const resolved = await resolvedHostIssues(config.ensembles, config.settings.leaderProbeTimeoutMs);
            if (resolved.length > 0) throw new ConfigError(resolved);
        }
        const leaders = config.settings.leaderProbe ? await probe(config) : {};
        const kafkaControllers = await probeControllers(config, applied);
        const plans = planFleet(config, applied, leaders, kafkaControllers);
        // Known bugs of rolling membership changes: refused on the releases srvr reported, a
        // warning where the version is unknown (src/version-guard.ts).
        const guard = versionGuard(config.ensembles, plans, config.settings.leaderProbe ? leaders : undefined);
        if (guard.issues.length > 0) throw new ConfigError(guard.issues);
        for (const [name, warnings] of guard.warnings) plans.get(name)?.plan.warnings.push(...warnings);
        // membershipChange reconfig: read from the sources that reconfig is available (src/reconfig-guard.ts).
        const readings: Record<string, ReconfigReading> = {};
        if (config.settings.leaderProbe) {
            for (const e of reconfigEnsembles(config.ensembles)) {
                if (!("source" in e)) continue;
                const servers = e.source.map((s) => ({ id: s.id, address: s.host, port: e.ports.client }));
                readings[e.name] = await probeReconfig(servers, { auth: config.settings.reconfigAuth, timeoutMs: config.settings.leaderProbeTimeoutMs });
            }
        }
        const rguard = reconfigGuard(config.ensembles, plans, config.settings.leaderProbe ? readings : undefined);
        if (rguard.issues.length > 0) throw new ConfigError(rguard.issues);
        for (const [name, warnings] of rguard.warnings) plans.get(name)?.plan.warnings.push(...warnings);
        const fleet = new Fleet("fleet", {
            config,
            plans,
            privateKey: pulumi.secret(config.settings.sshPrivateKey!),
            ...(config.settings.reconfigAuth !== undefined ? { reconfigAuth: pulumi.secret(config.settings.reconfigAuth) } : {}),
        });
        return { applied: fleet.applied, ensembles: fleet.summary };
    } catch (err) {
        // Expected refusals print as they are, without a stack trace.
        if (err instanceof ConfigError || err instanceof UnsafeFleetError) {
            throw new pulumi.RunError(err.message);
        }
        throw err;
    }
}

// The runtime takes this promise only after the module has loaded; a refusal thrown before that
// would count as an unhandled rejection, handled later (Node's PromiseRejectionHandledWarning).
// A handler attached now marks it handled; the runtime still receives the rejection and prints it.
const result = main();
result.catch(() => undefined);
export = result;
