// renderKafkaBroker: moves one Kafka broker (ZooKeeper mode) to another ZooKeeper connect string,
// the client side of mitosis (seed 003): rewrite `zookeeper.connect` in server.properties, restart
// the broker, and gate on the cluster being whole again before the next broker goes.
//
// The gate asks Kafka itself, with the tools every broker install ships in its bin directory:
//  - kafka-broker-api-versions.sh --bootstrap-server <this broker>: the broker answers, and the
//    cluster metadata it serves lists its id (brokers enter that list only once registered in
//    ZooKeeper's /brokers/ids and announced by the controller);
//  - kafka-topics.sh --describe --under-replicated-partitions: empty once every replica of every
//    partition (internal topics included) is back in its ISR.
// Both are bounded (each call and the whole wait), so a broker that does not come back stops
// `pulumi up` at this broker with the tools' last answer and the service status. A broker whose
// listener needs SASL/SSL gets its client properties file (kafka.commandConfig) through both
// tools' --command-config.
import { formatConnectString as formatConnect } from "../format/connect-string";
import type { ConnectString, KafkaSettings } from "../types";
import { REPLACE_FILE } from "./config";
import { LOG, ROOT, SERVICE } from "./lib";
import { checkAddress, checkInt, checkPath, checkPort, checkText, fail, renderScript, sh } from "./shell";

/** A Kafka broker id: broker.id is a non-negative int (Kafka's reserved.broker.max.id defaults to 1000). */
export function checkBrokerId(id: number): void {
    checkInt("broker id", id, 0, 2147483647);
}

function checkKafka(k: KafkaSettings): void {
    checkPath("kafka.serverProperties", k.serverProperties);
    checkPath("kafka.binDir", k.binDir);
    checkPort("kafka.port", k.port);
    checkInt("kafka.healthTimeoutSeconds", k.healthTimeoutSeconds, 1, 86400);
    checkInt("kafka.spacingSeconds", k.spacingSeconds, 0, 3600);
    checkText("kafka.service.restart", k.service.restart);
    checkText("kafka.service.status", k.service.status);
    if (k.commandConfig !== undefined) checkPath("kafka.commandConfig", k.commandConfig);
}

/** The chroot of a connect string as the script compares it: "" when there is none. */
export function chrootOf(c: ConnectString): string {
    return c.chroot ?? "";
}

/** Kafka's CLI tools, bounded per call. Reads BIN_DIR, TOOL_TIMEOUT, COMMAND_CONFIG, BOOTSTRAP, BROKER_ID; sets LAST. */
const KAFKA_GATE = sh`
# kafka_tool TOOL ARGS...: runs a tool of BIN_DIR, at most TOOL_TIMEOUT s; prints stdout and stderr.
# With COMMAND_CONFIG (a SASL/SSL listener's client properties), the tool gets --command-config.
kafka_tool() {
    local tool="$BIN_DIR/$1"
    shift
    if [[ -n "$COMMAND_CONFIG" ]]; then
        set -- "$@" --command-config "$COMMAND_CONFIG"
    fi
    timeout -k 5 "$TOOL_TIMEOUT" "$tool" "$@" 2>&1
}

# broker_listed: the broker answers on BOOTSTRAP and the cluster metadata lists BROKER_ID.
broker_listed() {
    local out rc=0
    out="$(kafka_tool kafka-broker-api-versions.sh --bootstrap-server "$BOOTSTRAP")" || rc=$?
    if ((rc != 0)); then
        LAST="kafka-broker-api-versions.sh --bootstrap-server $BOOTSTRAP exited $rc: $(grep -v '^[[:space:]]*at ' <<<"$out" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
        return 1
    fi
    if ! grep -q "(id: $BROKER_ID rack" <<<"$out"; then
        LAST="the cluster metadata served by $BOOTSTRAP does not list broker $BROKER_ID (listed: $(grep -o '(id: [0-9]*' <<<"$out" | tr -d '(' | tr '\n' ' '))"
        return 1
    fi
}

# under_replicated: succeeds when the cluster has no under-replicated partition; else sets LAST.
under_replicated_none() {
    local out rc=0 count
    out="$(kafka_tool kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --describe --under-replicated-partitions)" || rc=$?
    if ((rc != 0)); then
        LAST="kafka-topics.sh --describe --under-replicated-partitions exited $rc: $(grep -v '^[[:space:]]*at ' <<<"$out" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
        return 1
    fi
    count="$(grep -c 'Partition:' <<<"$out" || true)"
    if ((count > 0)); then
        LAST="$count under-replicated partition(s), e.g.: $(grep 'Partition:' <<<"$out" | head -n 3 | tr -s '[:space:]' ' ' | sed 's/^ //' | cut -c1-400)"
        return 1
    fi
}

# kafka_gate WHEN: waits until the broker is back in the cluster and no partition is
# under-replicated, at most HEALTH_TIMEOUT s; otherwise fails with the last answer and the status.
kafka_gate() {
    local deadline=$((SECONDS + HEALTH_TIMEOUT + 1)) status="" status_rc=0
    LAST="no answer yet"
    say "broker gate ($1): up to $HEALTH_TIMEOUT s until broker $BROKER_ID is in the cluster ($BOOTSTRAP) and no partition is under-replicated"
    while :; do
        if broker_listed && under_replicated_none; then
            say "broker gate ($1): broker $BROKER_ID is in the cluster, no under-replicated partitions"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            break
        fi
        sleep 1
    done
    status="$(as_root timeout -k 5 30 bash -c "$SERVICE_STATUS" 2>&1)" || status_rc=$?
    {
        printf 'zkmigrate: broker gate (%s) failed: broker %s not back in a fully replicated cluster within %s s\n' "$1" "$BROKER_ID" "$HEALTH_TIMEOUT"
        printf 'zkmigrate: last answer: %s\n' "$LAST"
        printf 'zkmigrate: service status (%s) exited %s:\n' "$SERVICE_STATUS" "$status_rc"
        printf '%s\n' "$status" | tail -n 20 | sed 's/^/    /'
    } >&2
    exit 1
}`;

/** Reading server.properties. Reads PROPERTIES. */
const PROPERTIES_READ = sh`
# property KEY: the value of KEY in PROPERTIES (key=value, key: value or key value), or nothing.
property() {
    as_root cat -- "$PROPERTIES" | awk -v key="$1" '
        {
            line = $0
            sub(/^[ \t]+/, "", line)
            if (substr(line, 1, length(key)) != key) next
            rest = substr(line, length(key) + 1)
            if (rest !~ /^[ \t]*[=:]/ && rest !~ /^[ \t]+[^ \t]/) next
            sub(/^[ \t]*[=: \t][ \t]*/, "", rest)
            sub(/[ \t\r]+$/, "", rest)
            value = rest
        }
        END { printf "%s", value }'
}

# property_count KEY: how many lines set KEY.
property_count() {
    as_root cat -- "$PROPERTIES" | awk -v key="$1" '
        {
            line = $0
            sub(/^[ \t]+/, "", line)
            if (substr(line, 1, length(key)) != key) next
            rest = substr(line, length(key) + 1)
            if (rest ~ /^[ \t]*[=:]/ || rest ~ /^[ \t]+[^ \t]/) n++
        }
        END { print n + 0 }'
}

# chroot_of CONNECT: the chroot of a ZooKeeper connect string ("" when it has none).
chroot_of() {
    if [[ "$1" == */* ]]; then
        printf '/%s' "\${1#*/}"
    fi
}`;

export interface KafkaBrokerScriptArgs {
    /** broker.id of the broker this script runs on. */
    brokerId: number;
    /** Where the gate reaches the broker (its listener host). */
    host: string;
    kafka: KafkaSettings;
    /** The zookeeper.connect the broker must run with after this step. */
    connect: ConnectString;
    /**
     * `restart`: restart the broker (its connect string changed in this phase). `adopt`: restart
     * only when server.properties had to change (a broker first declared in a later phase), else
     * only the gate.
     */
    mode: "restart" | "adopt";
}

export function renderKafkaBroker(a: KafkaBrokerScriptArgs): string {
    const { brokerId, host, kafka: k, connect, mode } = a;
    checkBrokerId(brokerId);
    checkAddress("broker host", host);
    checkKafka(k);
    if (mode !== "restart" && mode !== "adopt") fail(`mode must be restart or adopt, got ${String(mode)}`);
    if (connect.servers.length === 0) fail("zookeeper.connect needs at least one server");
    for (const s of connect.servers) {
        checkAddress("zookeeper.connect server", s.host);
        checkPort("zookeeper.connect port", s.port);
    }
    const value = formatConnect(connect);
    if (/[\s\\'"]/.test(value)) fail(`zookeeper.connect ${JSON.stringify(value)} has spaces, quotes or backslashes`);
    const bootstrap = host.includes(":") ? `[${host}]:${k.port}` : `${host}:${k.port}`;

    const main = sh`
say "Kafka broker $BROKER_ID on $(uname -n): zookeeper.connect=$CONNECT ($MODE)"
need_root
as_root test -f "$PROPERTIES" || die "$PROPERTIES does not exist (is Kafka installed on $(uname -n), and kafka.serverProperties right?)"

# Refuse before touching anything: no tools for the gate, another broker's file, a KRaft broker,
# an ambiguous file.
for tool in kafka-broker-api-versions.sh kafka-topics.sh; do
    [[ -x "$BIN_DIR/$tool" ]] || die "$BIN_DIR/$tool is not an executable (kafka.binDir must hold Kafka's bin/ scripts)"
done
# The tools run as this user (not through sudo): it must be able to read the client properties.
if [[ -n "$COMMAND_CONFIG" ]] && ! [[ -f "$COMMAND_CONFIG" && -r "$COMMAND_CONFIG" ]]; then
    die "$COMMAND_CONFIG (kafka.commandConfig) is not a file $(id -un) can read: the gate's tools run as $(id -un) with --command-config"
fi
id="$(property broker.id)"
if [[ -n "$id" && "$id" != "$BROKER_ID" ]]; then
    die "$PROPERTIES says broker.id=$id, expected $BROKER_ID: refusing (wrong host for this broker?)"
fi
n="$(property_count zookeeper.connect)"
if ((n == 0)); then
    die "$PROPERTIES has no zookeeper.connect line: refusing (a KRaft broker has no ZooKeeper to move)"
elif ((n > 1)); then
    die "$PROPERTIES sets zookeeper.connect $n times: refusing to guess which one Kafka uses"
fi
current="$(property zookeeper.connect)"
say "current zookeeper.connect=$current"
# Kafka keeps all its state under the chroot: a broker pointed at another chroot finds an empty
# cluster (and registers into it). The config check refuses that already; this is its twin on the host.
if [[ "$(chroot_of "$current")" != "$(chroot_of "$CONNECT")" && "$ALLOW_CHROOT_CHANGE" != true ]]; then
    die "the chroot of the current zookeeper.connect ($(chroot_of "$current")) differs from the new one ($(chroot_of "$CONNECT")): refusing (clients.allowChrootChange allows it)"
fi

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$(mktemp -d)"
TEMPS=()
trap cleanup EXIT

changed=false
if [[ "$current" != "$CONNECT" ]]; then
    changed=true
fi
if [[ "$MODE" == restart || "$changed" == true ]]; then
    # A broker restarted while partitions are under-replicated could take the last in-sync
    # replica of a partition with it: the cluster must be whole before this broker goes.
    kafka_gate "before the restart"
fi
as_root cat -- "$PROPERTIES" | awk -v line="zookeeper.connect=$CONNECT" '
    {
        probe = $0
        sub(/^[ \t]+/, "", probe)
        if (probe ~ /^zookeeper\.connect([ \t]*[=:]|[ \t]+[^ \t])/) { print line; next }
        print
    }' >"$WORK/server.properties.new"
replace_file "$PROPERTIES" "$WORK/server.properties.new"

if [[ "$MODE" == restart || "$changed" == true ]]; then
    service_cmd restart "$SERVICE_RESTART" || die "service restart failed (exit $?)"
    kafka_gate "after the restart"
    if ((SPACING_SECONDS > 0)); then
        say "waiting $SPACING_SECONDS s before the next broker"
        sleep "$SPACING_SECONDS"
    fi
    say "done: broker $BROKER_ID restarted with zookeeper.connect=$CONNECT"
else
    kafka_gate "adopted, not restarted"
    say "done: broker $BROKER_ID already runs with zookeeper.connect=$CONNECT"
fi
`;
    return renderScript({
        title: `Kafka broker ${brokerId}: zookeeper.connect=${value}, ${mode === "restart" ? "restart" : "adopt"}, then the broker gate`,
        params: [
            ["BROKER_ID", brokerId],
            ["BOOTSTRAP", bootstrap],
            ["PROPERTIES", k.serverProperties],
            ["BIN_DIR", k.binDir],
            ["COMMAND_CONFIG", k.commandConfig ?? ""],
            ["CONNECT", value],
            ["MODE", mode],
            ["ALLOW_CHROOT_CHANGE", k.allowChrootChange ? "true" : "false"],
            ["SERVICE_RESTART", k.service.restart],
            ["SERVICE_STATUS", k.service.status],
            ["SERVICE_TIMEOUT", Math.max(120, k.healthTimeoutSeconds)],
            ["HEALTH_TIMEOUT", k.healthTimeoutSeconds],
            ["TOOL_TIMEOUT", 60],
            ["SPACING_SECONDS", k.spacingSeconds],
        ],
        functions: [LOG, ROOT, SERVICE, REPLACE_FILE, PROPERTIES_READ, KAFKA_GATE],
        main,
    });
}
