// The one service script of a fleet host (no systemd, no Docker): `bin/zk-service` on a ZooKeeper
// host and `bin/kafka-service` on a broker host are both rendered here. Each runs one JVM with a
// pid file and a log, in a session of its own; before a kill it checks the process is the host's
// own (its command line carries the host's mark, see processes.ts).
//   start    starts the server unless it runs (refused when disabled)
//   stop     SIGTERM, SIGKILL after the stop timeout, and waits
//   restart  stop, then start (starts a stopped server)
//   status   exit 0 when it runs; otherwise exit 3 and the last lines of its log
//   disable  (when the service has it) marks it so that start refuses; enable undoes that
import { shellQuote } from "../../src/scripts";

/** What differs between the services: the product, its JVM, its files and its stop timeout. */
export interface ServiceScriptSpec {
    /** The script's name as installed in bin/ ("zk-service", "kafka-service"). */
    command: string;
    /** The product as messages name it ("ZooKeeper", "Kafka"). */
    product: string;
    /** Its version, and what the header line adds after it (e.g. " (ZooKeeper mode)"). */
    version: string;
    edition?: string;
    fleet: string;
    host: string;
    /** The host's directory as the host sees it (mounted at the same path on every host). */
    home: string;
    java: string;
    /** The JVM property that marks the host's own process (checked before any kill). */
    mark: string;
    /** JVM options, in order. */
    jvmOptions: readonly string[];
    classpath: string;
    mainClass: string;
    /** The main class's argument: the config file, relative to home. */
    configFile: string;
    /** Relative to home. */
    pidFile: string;
    logFile: string;
    stopTimeoutSeconds: number;
    /** Why SIGTERM (for the header), e.g. "a controlled shutdown moves its leaderships away". */
    stopNote?: string;
    /** Whether `disable`/`enable` exist (a host replaced by a pod is stopped and disabled). */
    disable: boolean;
}

/** The bash text of a host's service script. */
export function renderServiceScript(o: ServiceScriptSpec): string {
    const q = shellQuote;
    const me = o.command;
    const verbs = o.disable ? "start|stop|restart|status|disable|enable" : "start|stop|restart|status";
    return `#!/usr/bin/env bash
# ${me}: ${o.product} ${o.version}${o.edition ?? ""} on host ${o.host} of the zkmigrate fleet ${o.fleet}.
# A stand-in for systemd on a local fleet host:  ${me} ${verbs}
#   start    starts ${o.product} unless it runs${o.disable ? " (refused when disabled)" : ""}
#   stop     stops it (SIGTERM${o.stopNote ? `: ${o.stopNote}` : ""}; SIGKILL after ${o.stopTimeoutSeconds} s) and waits
#   restart  stop, then start (starts a stopped server)
#   status   exit 0 when it runs; otherwise exit 3 and the last lines of its log${o.disable ? "\n#   disable  marks it so that start refuses (enable undoes that); does not stop it" : ""}
set -uo pipefail
export LC_ALL=C
readonly HOST_NAME=${q(o.host)}
readonly VERSION=${q(o.version)}
readonly HOME_DIR=${q(o.home)}
readonly CONFIG="$HOME_DIR/"${q(o.configFile)}
readonly PID_FILE="$HOME_DIR/"${q(o.pidFile)}
readonly LOG_FILE="$HOME_DIR/"${q(o.logFile)}
readonly DISABLED="$HOME_DIR/run/disabled"
readonly JAVA=${q(o.java)}
readonly MARK=${q(o.mark)}
readonly -a JVM=(${o.jvmOptions.map(q).join(" ")})
readonly CLASSPATH_=${q(o.classpath)}
readonly STOP_TIMEOUT=${o.stopTimeoutSeconds}

log() { printf '%s ${me}: %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*" >>"$LOG_FILE"; }

# server_pid: prints the pid of this host's server when it runs (the pid file's process, if it
# is ours and not a zombie).
server_pid() {
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
    printf '${me}: last lines of %s:\\n' "$LOG_FILE"
    if [[ -f "$LOG_FILE" ]]; then
        # -a and tr: a log may hold binary bytes (ZooKeeper quotes a corrupt file's content).
        grep -av '^[[:space:]]*at ' "$LOG_FILE" | tail -n "\${1:-15}" | tr -c '[:print:]\\t\\n' '?' | cut -c1-400 | sed 's/^/    /'
    fi
}

start() {
    local pid
    if [[ -e "$DISABLED" ]]; then
        echo "${me}: ${o.product} on $HOST_NAME is disabled ($DISABLED exists): not starting it ('${me} enable' undoes that)" >&2
        return 1
    fi
    if pid="$(server_pid)"; then
        echo "${me}: ${o.product} $VERSION already runs on $HOST_NAME (pid $pid)"
        return 0
    fi
    mkdir -p -- "$(dirname -- "$PID_FILE")" "$(dirname -- "$LOG_FILE")"
    log "starting ${o.product} $VERSION"
    # setsid: its own session, so nothing of the caller (an SSH session, timeout) holds or kills it.
    setsid "$JAVA" "$MARK" "\${JVM[@]}" -cp "$CLASSPATH_" ${o.mainClass} "$CONFIG" >>"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    printf '%s\\n' "$pid" >"$PID_FILE.tmp"
    mv -f -- "$PID_FILE.tmp" "$PID_FILE"
    # A server that cannot start (bad config, port taken) often exits within a second.
    sleep 1
    if ! server_pid >/dev/null; then
        echo "${me}: ${o.product} $VERSION on $HOST_NAME exited right after it started" >&2
        last_log 20 >&2
        return 1
    fi
    echo "${me}: started ${o.product} $VERSION on $HOST_NAME (pid $pid), log $LOG_FILE"
}

stop() {
    local pid i
    if ! pid="$(server_pid)"; then
        rm -f -- "$PID_FILE"
        echo "${me}: ${o.product} is not running on $HOST_NAME"
        return 0
    fi
    log "stopping ${o.product} (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        server_pid >/dev/null || break
        sleep 0.1
    done
    if server_pid >/dev/null; then
        log "${o.product} (pid $pid) ignored SIGTERM for $STOP_TIMEOUT s: SIGKILL"
        echo "${me}: ${o.product} (pid $pid) ignored SIGTERM for $STOP_TIMEOUT s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            server_pid >/dev/null || break
            sleep 0.1
        done
    fi
    if server_pid >/dev/null; then
        echo "${me}: ${o.product} (pid $pid) on $HOST_NAME survived SIGKILL" >&2
        return 1
    fi
    rm -f -- "$PID_FILE"
    echo "${me}: stopped ${o.product} on $HOST_NAME (was pid $pid)"
}

status() {
    local pid
    if pid="$(server_pid)"; then
        echo "${me}: ${o.product} $VERSION runs on $HOST_NAME (pid $pid)"
        return 0
    fi
    if [[ -e "$DISABLED" ]]; then
        echo "${me}: ${o.product} $VERSION is not running on $HOST_NAME (disabled)"
    else
        echo "${me}: ${o.product} $VERSION is not running on $HOST_NAME"
    fi
    last_log 15
    return 3
}

case "\${1:-}" in
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) status ;;
${
    o.disable
        ? `disable)
    touch -- "$DISABLED"
    echo "${me}: ${o.product} on $HOST_NAME disabled (start refuses until '${me} enable')"
    ;;
enable)
    rm -f -- "$DISABLED"
    echo "${me}: ${o.product} on $HOST_NAME enabled"
    ;;
`
        : ""
}*)
    echo "usage: $0 ${verbs}" >&2
    exit 2
    ;;
esac
`;
}
