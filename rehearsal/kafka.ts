// Kafka for the local fleet: broker jars from Maven Central through Maven (rehearsal/kafka-pom.xml),
// cached outside the repo like ZooKeeper's, and the files of a broker host: server.properties
// (ZooKeeper mode), a kafka-service script (a stand-in for systemd), and the two Kafka tools the
// broker gate runs (bin/kafka-topics.sh, bin/kafka-broker-api-versions.sh), as a Kafka install has.
import { join } from "node:path";
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

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

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

/** kafka-service start|stop|restart|status: a stand-in for systemd on a broker host. */
export function kafkaServiceScript(o: { fleet: string; host: string; version: string; java: string; classpath: string; home: string; mark: string }): string {
    return `#!/usr/bin/env bash
# kafka-service: Kafka ${o.version} (ZooKeeper mode) on host ${o.host} of the zkmigrate fleet ${o.fleet}.
#   start    starts the broker unless it runs
#   stop     stops it (SIGTERM: a controlled shutdown moves its leaderships away; SIGKILL after 60 s)
#   restart  stop, then start
#   status   exit 0 when it runs; otherwise exit 3 and the last lines of its log
set -uo pipefail
export LC_ALL=C
readonly HOST_NAME=${q(o.host)}
readonly VERSION=${q(o.version)}
readonly HOME_DIR=${q(o.home)}
readonly PROPERTIES="$HOME_DIR/conf/server.properties"
readonly PID_FILE="$HOME_DIR/run/kafka.pid"
readonly LOG_FILE="$HOME_DIR/logs/kafka.log"
readonly JAVA=${q(o.java)}
readonly MARK=${q(o.mark)}
readonly -a JVM=(${KAFKA_JVM_OPTIONS.map(q).join(" ")} "-Dlog4j.configuration=file:$HOME_DIR/conf/log4j.properties" "-Dkafka.logs.dir=$HOME_DIR/logs")
readonly CLASSPATH_=${q(o.classpath)}
readonly STOP_TIMEOUT=60

kafka_pid() {
    local pid state
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(<"$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    state="$(awk '{ sub(/^.*\\) /, ""); print substr($0, 1, 1) }' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]] || return 1
    # Not grep -q: it would exit at the mark, and tr, still writing the long command line (the
    # classpath), would die of SIGPIPE and fail the pipeline (pipefail) now and then.
    tr '\\0' '\\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -xF -- "$MARK" >/dev/null || return 1
    printf '%s\\n' "$pid"
}

last_log() {
    printf 'kafka-service: last lines of %s:\\n' "$LOG_FILE"
    [[ -f "$LOG_FILE" ]] && grep -av '^[[:space:]]*at ' "$LOG_FILE" | tail -n "\${1:-15}" | cut -c1-300 | sed 's/^/    /'
}

start() {
    local pid
    if pid="$(kafka_pid)"; then
        echo "kafka-service: Kafka $VERSION already runs on $HOST_NAME (pid $pid)"
        return 0
    fi
    mkdir -p -- "$HOME_DIR/run" "$HOME_DIR/logs"
    setsid "$JAVA" "$MARK" "\${JVM[@]}" -cp "$CLASSPATH_" kafka.Kafka "$PROPERTIES" >>"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    printf '%s\\n' "$pid" >"$PID_FILE.tmp"
    mv -f -- "$PID_FILE.tmp" "$PID_FILE"
    sleep 1
    if ! kafka_pid >/dev/null; then
        echo "kafka-service: Kafka $VERSION on $HOST_NAME exited right after it started" >&2
        last_log 20 >&2
        return 1
    fi
    echo "kafka-service: started Kafka $VERSION on $HOST_NAME (pid $pid), log $LOG_FILE"
}

stop() {
    local pid i
    if ! pid="$(kafka_pid)"; then
        rm -f -- "$PID_FILE"
        echo "kafka-service: Kafka is not running on $HOST_NAME"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kafka_pid >/dev/null || break
        sleep 0.1
    done
    if kafka_pid >/dev/null; then
        echo "kafka-service: Kafka (pid $pid) ignored SIGTERM for $STOP_TIMEOUT s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kafka_pid >/dev/null || break
            sleep 0.1
        done
    fi
    if kafka_pid >/dev/null; then
        echo "kafka-service: Kafka (pid $pid) on $HOST_NAME survived SIGKILL" >&2
        return 1
    fi
    rm -f -- "$PID_FILE"
    echo "kafka-service: stopped Kafka on $HOST_NAME (was pid $pid)"
}

status() {
    local pid
    if pid="$(kafka_pid)"; then
        echo "kafka-service: Kafka $VERSION runs on $HOST_NAME (pid $pid)"
        return 0
    fi
    echo "kafka-service: Kafka $VERSION is not running on $HOST_NAME"
    last_log 15
    return 3
}

case "\${1:-}" in
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) status ;;
*)
    echo "usage: $0 start|stop|restart|status" >&2
    exit 2
    ;;
esac
`;
}
