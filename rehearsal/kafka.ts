// Kafka for the local fleet: broker jars from Maven Central through Maven (rehearsal/kafka-pom.xml),
// cached outside the repo like ZooKeeper's, and the files of a broker host: server.properties
// (ZooKeeper mode), what its kafka-service script runs (fleet/service-script.ts renders it), and the two Kafka tools the
// broker gate runs (bin/kafka-topics.sh, bin/kafka-broker-api-versions.sh), as a Kafka install has.
import { join } from "node:path";
import { shellQuote as q } from "../src/scripts";
import type { ServiceScriptSpec } from "./fleet/service-script";
import { mavenClasspath, requireCommand } from "./zookeeper";

/** 3.9 is the last Kafka line with ZooKeeper mode (4.0 removed it); 3.9.2 is its newest release on Maven Central. */
export const DEFAULT_KAFKA_VERSION = "3.9.2";

export const KAFKA_POM = join(__dirname, "kafka-pom.xml");

/** The broker's JVM: a small heap (the fleet's machine has 2 CPUs and runs 6 ZooKeeper servers too). */
export const KAFKA_JVM_OPTIONS: readonly string[] = [
    "-Xms64m",
    "-Xmx384m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.net.preferIPv4Stack=true",
    "-Djava.awt.headless=true",
];

/** The tools' JVM (each gate poll starts one). */
export const KAFKA_TOOL_JVM_OPTIONS: readonly string[] = ["-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.net.preferIPv4Stack=true"];

export const KAFKA_PORT = 9092;

const resolving = new Map<string, Promise<{ version: string; classpath: string }>>();

/** The classpath of a Kafka release (jars in `<cacheDir>/m2`), resolved through Maven once, then cached. */
export function ensureKafka(version: string = DEFAULT_KAFKA_VERSION): Promise<{ version: string; classpath: string }> {
    if (!/^3\.\d+\.\d+$/.test(version)) {
        return Promise.reject(new Error(`Kafka version ${JSON.stringify(version)}: expected 3.x.y (ZooKeeper mode ends with 3.9; 4.0 has none)`));
    }
    const pending = resolving.get(version);
    if (pending) return pending;
    const p = resolve(version);
    resolving.set(version, p);
    p.catch(() => resolving.delete(version));
    return p;
}

async function resolve(version: string): Promise<{ version: string; classpath: string }> {
    requireCommand("java", "to run Kafka");
    const classpath = await mavenClasspath({
        pom: KAFKA_POM,
        name: "kafka",
        artifact: "org.apache.kafka:kafka_2.13",
        property: "kafka.version",
        version,
        mainJar: /\/kafka_2\.13-[^/]*\.jar$/,
    });
    return { version, classpath };
}

// ---------------------------------------------------------------------------------------------
// A broker host's files (paths as the host sees them: its directory is mounted at `home`)

/** server.properties of a broker: 3 brokers, replication factor 3 everywhere, small and quick. */
export function serverProperties(o: { brokerId: number; address: string; zookeeperConnect: string; home: string }): string {
    const settings: [string, string][] = [
        ["broker.id", String(o.brokerId)],
        ["listeners", `PLAINTEXT://${o.address}:${KAFKA_PORT}`],
        ["advertised.listeners", `PLAINTEXT://${o.address}:${KAFKA_PORT}`],
        ["zookeeper.connect", o.zookeeperConnect],
        ["zookeeper.session.timeout.ms", "18000"],
        ["log.dirs", `${o.home}/data/kafka-logs`],
        ["num.partitions", "3"],
        ["default.replication.factor", "3"],
        ["min.insync.replicas", "2"],
        ["auto.create.topics.enable", "false"],
        // Internal topics with 3 replicas too: the consumer group's offsets and the producer
        // state survive every broker restart.
        ["offsets.topic.replication.factor", "3"],
        ["offsets.topic.num.partitions", "3"],
        ["transaction.state.log.replication.factor", "3"],
        ["transaction.state.log.min.isr", "2"],
        ["transaction.state.log.num.partitions", "3"],
        ["group.initial.rebalance.delay.ms", "0"],
        ["controlled.shutdown.enable", "true"],
        // Small: 2 CPUs for the whole fleet.
        ["num.network.threads", "2"],
        ["num.io.threads", "2"],
        ["background.threads", "2"],
        ["num.recovery.threads.per.data.dir", "1"],
        ["num.replica.fetchers", "1"],
        ["log.cleaner.threads", "1"],
        ["log.cleaner.dedupe.buffer.size", "2097152"],
        ["log.segment.bytes", "16777216"],
    ];
    return `# Kafka broker ${o.brokerId} of a zkmigrate fleet (ZooKeeper mode)\n${settings.map(([k, v]) => `${k}=${v}\n`).join("")}`;
}

/** log4j 1 (reload4j) config: the broker logs to its log file; the tools only warn, to stderr. */
export function log4jProperties(o: { tools: boolean }): string {
    return o.tools
        ? "log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        : [
              "log4j.rootLogger=INFO, stdout",
              "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
              "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
              "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
              "log4j.logger.kafka.request.logger=WARN",
              "log4j.logger.org.apache.zookeeper=WARN",
              "log4j.logger.kafka.log.LogCleaner=WARN",
              "",
          ].join("\n");
}


/** A Kafka tool as bin/<name>.sh of a Kafka install: `java ... <main class> "$@"`. */
export function toolScript(o: { java: string; classpath: string; home: string; mainClass: string }): string {
    return `#!/usr/bin/env bash
# A Kafka tool of the zkmigrate fleet (as in Kafka's bin/): ${o.mainClass}
exec ${q(o.java)} ${KAFKA_TOOL_JVM_OPTIONS.map(q).join(" ")} ${q(`-Dlog4j.configuration=file:${o.home}/conf/tools-log4j.properties`)} -cp ${q(o.classpath)} ${o.mainClass} "$@"
`;
}

/** The tools the broker gate runs, by their names in Kafka's bin/. */
export const KAFKA_TOOLS: Record<string, string> = {
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
    "kafka-broker-api-versions.sh": "kafka.admin.BrokerApiVersionsCommand",
};

/** kafka-service start|stop|restart|status of a broker host (rendered by fleet/service-script.ts). */
export function kafkaService(o: { fleet: string; host: string; version: string; java: string; classpath: string; home: string; mark: string }): ServiceScriptSpec {
    return {
        command: "kafka-service",
        product: "Kafka",
        version: o.version,
        edition: " (ZooKeeper mode)",
        fleet: o.fleet,
        host: o.host,
        home: o.home,
        java: o.java,
        mark: o.mark,
        jvmOptions: [...KAFKA_JVM_OPTIONS, `-Dlog4j.configuration=file:${o.home}/conf/log4j.properties`, `-Dkafka.logs.dir=${o.home}/logs`],
        classpath: o.classpath,
        mainClass: "kafka.Kafka",
        configFile: "conf/server.properties",
        pidFile: "run/kafka.pid",
        logFile: "logs/kafka.log",
        stopTimeoutSeconds: 60,
        stopNote: "a controlled shutdown moves its leaderships away",
        disable: false,
    };
}
