// Bash functions shared by the rendered scripts. Each constant is one group; a script includes
// the groups it uses (and declares the parameters those groups read, listed above each group).
import { sh } from "./shell";

/** say / warn / die: every line the scripts print starts with `zkmigrate:`. */
export const LOG = sh`
say() { printf 'zkmigrate: %s\n' "$*"; }
warn() { printf 'zkmigrate: warning: %s\n' "$*" >&2; }
die() {
    printf 'zkmigrate: %s\n' "$*" >&2
    exit 1
}`;

/** Privileged actions: directly when root, else passwordless sudo (-n: fail, never prompt). */
export const ROOT = sh`
as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    else
        sudo -n -- "$@"
    fi
}

need_root() {
    as_root true || die "cannot act as root: $(id -un) needs passwordless sudo (sudo -n) on $(uname -n)"
}`;

/**
 * Service commands are user-configured shell text: run with bash -c, as root, bounded.
 * Reads SERVICE_TIMEOUT.
 */
export const SERVICE = sh`
# service_cmd WHAT COMMAND: returns the command's exit status; a hang is fatal.
service_cmd() {
    local what="$1" cmd="$2" rc=0
    say "service $what: $cmd"
    as_root timeout -k 10 "$SERVICE_TIMEOUT" bash -c "$cmd" || rc=$?
    if ((rc == 124 || rc == 137)); then
        die "service $what did not finish within $SERVICE_TIMEOUT s: $cmd"
    fi
    return "$rc"
}`;

/** Talking to the local server over bash's /dev/tcp (no nc/zkCli needed). Reads CLIENT_PORT. */
export const ZK = sh`
# zk_ask WORD: sends a four-letter word to 127.0.0.1:CLIENT_PORT and prints the answer, or
# bash's connect error (the server closes the connection after answering).
zk_ask() {
    # shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
    timeout -k 1 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s" "$2" >&3 && cat <&3' zk-ask "$CLIENT_PORT" "$1" 2>&1
}

# port_open: whether 127.0.0.1:CLIENT_PORT accepts a TCP connection.
port_open() {
    # shellcheck disable=SC2016 # $1 belongs to the inner bash
    timeout -k 1 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' port-probe "$CLIENT_PORT" 2>/dev/null
}

# explain_answer WORD RC ANSWER: why ANSWER (exit status RC of zk_ask) is not a useful answer.
explain_answer() {
    local word="$1" rc="$2" answer="$3"
    if [[ "$answer" == *"not in the whitelist"* ]]; then
        printf '%s is refused by the server: it is not in the whitelist (the zoo.cfg setting 4lw.commands.whitelist lacks %s; add it, e.g. 4lw.commands.whitelist=srvr,mntr,conf,ruok, and restart)' "$word" "$word"
    elif [[ "$answer" == *"not currently serving requests"* ]]; then
        printf 'the server answers "This ZooKeeper instance is not currently serving requests": it runs but is not part of a serving quorum (no leader elected, or not synced yet)'
    elif [[ "$answer" == *"Connection refused"* ]]; then
        printf 'connection refused on 127.0.0.1:%s: nothing listens there (ZooKeeper is not running, or its clientPort is not %s)' "$CLIENT_PORT" "$CLIENT_PORT"
    elif ((rc == 124 || rc == 137)); then
        printf 'no answer to %s within 2 s from 127.0.0.1:%s' "$word" "$CLIENT_PORT"
    elif [[ -z "$answer" ]]; then
        printf 'the connection to 127.0.0.1:%s closed without an answer to %s (exit status %s)' "$CLIENT_PORT" "$word" "$rc"
    else
        printf 'an answer without a Mode line: %s' "$(tr '\n' ' ' <<<"$answer" | cut -c1-300)"
    fi
}

# await_mode TIMEOUT INTERVAL [ALIVE]: polls srvr on 127.0.0.1:CLIENT_PORT until it answers with a
# Mode (the server has joined a quorum and synced); sets SRVR_MODE, SRVR_ZXID, SRVR_ANSWER and SRVR_RC. Returns
# 1 at the deadline, or at once when the command ALIVE (when given) fails: the server is gone.
# shellcheck disable=SC2034 # the SRVR_* results are read by the callers
await_mode() {
    local deadline=$((SECONDS + $1 + 1)) interval="$2" alive="\${3:-}"
    while :; do
        SRVR_RC=0
        SRVR_ANSWER="$(zk_ask srvr)" || SRVR_RC=$?
        SRVR_MODE="$(awk '/^Mode:/ { print $2; exit }' <<<"$SRVR_ANSWER")"
        if [[ -n "$SRVR_MODE" ]]; then
            SRVR_ZXID="$(awk '/^Zxid:/ { print $2; exit }' <<<"$SRVR_ANSWER")"
            return 0
        fi
        if [[ -n "$alive" ]] && ! "$alive" >/dev/null; then
            return 1
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep "$interval"
    done
}`;

/** Stopping: until the server no longer listens. Reads SERVICE_STOP, CLIENT_PORT, HEALTH_TIMEOUT; needs SERVICE, ZK. */
export const STOP = sh`
# wait_port_closed: until nothing accepts connections on the client port, at most HEALTH_TIMEOUT s.
# SECONDS counts whole seconds: +1 makes every wait last at least the full timeout.
wait_port_closed() {
    local deadline=$((SECONDS + HEALTH_TIMEOUT + 1))
    while port_open; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

# stop_and_wait: the stop command, then wait until the port is closed. A failing stop command is
# fine when nothing listens (some fail when there is nothing to stop); a listening server is not.
stop_and_wait() {
    local rc=0
    service_cmd stop "$SERVICE_STOP" || rc=$?
    if ((rc != 0)); then
        if port_open; then
            die "service stop failed (exit $rc) and 127.0.0.1:$CLIENT_PORT still accepts connections"
        fi
        warn "service stop exited $rc, but nothing listens on 127.0.0.1:$CLIENT_PORT: ZooKeeper is stopped"
    fi
    wait_port_closed || die "127.0.0.1:$CLIENT_PORT still accepts connections $HEALTH_TIMEOUT s after stop"
    say "stopped: 127.0.0.1:$CLIENT_PORT no longer accepts connections"
}`;

/**
 * The health gate: srvr answers with a `Mode:` line only once the server serves (it has joined a
 * quorum and synced). Reads CLIENT_PORT, HEALTH_TIMEOUT and SERVICE_STATUS; needs LOG, ROOT, ZK.
 */
export const HEALTH = sh`
health_gate() {
    local status="" status_rc=0
    say "health gate: waiting up to $HEALTH_TIMEOUT s for srvr on 127.0.0.1:$CLIENT_PORT to report a Mode (serving, synced)"
    if await_mode "$HEALTH_TIMEOUT" 0.5; then
        say "healthy: 127.0.0.1:$CLIENT_PORT serves, Mode: $SRVR_MODE, Zxid: \${SRVR_ZXID:-unknown}"
        return 0
    fi
    status="$(as_root timeout -k 5 30 bash -c "$SERVICE_STATUS" 2>&1)" || status_rc=$?
    {
        printf 'zkmigrate: health gate failed: 127.0.0.1:%s did not answer srvr with a Mode within %s s\n' "$CLIENT_PORT" "$HEALTH_TIMEOUT"
        printf 'zkmigrate: last answer: %s\n' "$(explain_answer srvr "$SRVR_RC" "$SRVR_ANSWER")"
        printf 'zkmigrate: service status (%s) exited %s:\n' "$SERVICE_STATUS" "$status_rc"
        printf '%s\n' "$status" | sed 's/^/    /'
    } >&2
    exit 1
}`;

/** Background processes of ours (the split's switch, the fence's timer): needs LOG, ROOT. */
export const OWNED = sh`
# runs_script PID SCRIPT: PID runs SCRIPT (its command line names it). An exited process that init
# has not reaped yet (a zombie) has an empty command line, so it does not count: kill -0 would still
# succeed on it.
runs_script() {
    [[ "$1" =~ ^[0-9]+$ ]] && as_root grep -qzF -- "$2" "/proc/$1/cmdline" 2>/dev/null
}

# stop_script PID SCRIPT: stops PID when it runs SCRIPT (only ours; its whole process group, so no
# sleep is left behind), bounded: TERM, up to 5 s, then KILL. Returns 1 when nothing ran.
stop_script() {
    local pid="$1" script="$2" i
    runs_script "$pid" "$script" || return 1
    as_root kill -TERM -- "-$pid" 2>/dev/null || as_root kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        runs_script "$pid" "$script" || return 0
        sleep 0.05
    done
    as_root kill -KILL -- "-$pid" 2>/dev/null || as_root kill -KILL "$pid" 2>/dev/null || true
}

# start_script SCRIPT PIDFILE: starts bash SCRIPT as root in a session of its own (it outlives the
# SSH session; the script writes its own pid into PIDFILE) and prints that pid once the process runs
# SCRIPT, within 5 s; returns 1 otherwise.
start_script() {
    local pid i
    as_root setsid -f bash "$1" </dev/null >/dev/null 2>&1
    for ((i = 0; i < 250; i++)); do
        pid="$(as_root cat -- "$2" 2>/dev/null || true)"
        if runs_script "$pid" "$1"; then
            printf '%s\n' "$pid"
            return 0
        fi
        sleep 0.02
    done
    return 1
}

# sleep_until EPOCH: sleeps, 5 s at a time at most, until the clock reaches EPOCH.
sleep_until() {
    local now left
    while :; do
        now="$(date +%s)"
        ((now < $1)) || return 0
        left=$(($1 - now))
        sleep "$((left < 5 ? left : 5))"
    done
}`;

/** ask_srvr HOST PORT: srvr of another server (bounded, 2 s), or the connect error. */
export const ASK_SRVR = sh`
ask_srvr() {
    # shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
    timeout -k 1 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf srvr >&3 && cat <&3' ask-srvr "$1" "$2" 2>&1
}`;
