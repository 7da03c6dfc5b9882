// The split's client fence: before the cut, no target acknowledges anything any more, and every
// target holds everything any target acknowledged.
//
// Why. A target acknowledges a client's write once it applied it (an observer, on the leader's
// INFORM) or once the joint ensemble committed it (a voter). The cut reaches the targets at
// different points of the joint history: one target may have applied and acknowledged zxid z
// while another has not received z yet. When the targets then restart into T, a majority of T
// without the first one can elect the older history, and z is gone for the clients that were told
// it was written. The fence closes that gap:
//   1. fence: this target's client port rejects every connection but loopback's (TCP reset in,
//      and its answers out are rejected too), so from now on it acknowledges nothing;
//   2. barrier: wait until every other running target's client port refuses connections too (a
//      target's fence step fences before it waits, so all of them are fenced when all pass);
//   3. catch up: read the zxid of the source servers (the highest; the leader's once it answers),
//      at least every zxid any target acknowledged before its fence, and wait until this server
//      has applied it (its own srvr, over loopback).
// Only then do the arms cut (every arm waits for every fence step). Every target of T then holds
// every acknowledged write, so whichever majority of T elects, nothing acknowledged is lost.
//
// The fence goes with the target's restart into T (the restart lifts it once the old server is
// stopped: nothing can acknowledge on the old membership after that), or, when the split does not
// happen, at the split's deadline (its own timer, like the dead man's switch), or at once when its
// own step fails. Residual: a write committed more than FENCE_SETTLE_SECONDS after every target
// was fenced, applied by a target but by no source by then (a source applies a commit within
// milliseconds of the target).
import { posix } from "node:path";
import type { Attempt, Fence } from "../steps";
import type { HostSettings } from "../types";
import { firewallChainName, IPT } from "./firewall";
import { LOG, ROOT, ZK } from "./lib";
import { checkAddress, checkInt, checkPath, checkPort, type ParamValue, renderScript, sh } from "./shell";

/** How long a fence step waits for the other targets' fences, and for its own server to catch up. */
export const FENCE_WAIT_SECONDS = 30;
/** Pause between the barrier and reading the sources' zxid: a commit a target applied reaches the sources' apply by then. */
export const FENCE_SETTLE_SECONDS = 0.5;


/** The fence's chains: `<chain>-FI`, `<chain>-FO` (fit iptables' 28 characters). */
export function fenceChains(ensemble: string): { in: string; out: string; tag: string } {
    const c = firewallChainName(ensemble);
    return { in: `${c}-FI`, out: `${c}-FO`, tag: `zkmigrate:${ensemble}:fence` };
}

function fenceDir(host: HostSettings, ensemble: string): string {
    const dir = posix.join(posix.dirname(host.paths.dataDir), `zkmigrate-fence-${firewallChainName(ensemble)}`);
    checkPath("the fence's state directory", dir);
    return dir;
}

/** The params the lift reads: the chains, the tag, the client port, the fence's state directory. */
export function liftParams(host: HostSettings, ensemble: string): [string, ParamValue][] {
    const c = fenceChains(ensemble);
    checkPort("clientPort", host.clientPort);
    return [
        ["FENCE_DIR", fenceDir(host, ensemble)],
        ["FENCE_IN", c.in],
        ["FENCE_OUT", c.out],
        ["FENCE_TAG", c.tag],
        ["CLIENT_PORT", host.clientPort],
    ];
}

/** lift_fence: removes this ensemble's fence (both families, where present) and stops its timer. Needs LOG, ROOT, IPT. */
export const LIFT = sh`
# fence_timer_runs PID: PID is this fence's timer and runs (its command line names the timer script;
# a zombie's is empty).
fence_timer_runs() {
    [[ "$1" =~ ^[0-9]+$ ]] && as_root grep -qzF -- "$FENCE_DIR/timer.sh" "/proc/$1/cmdline" 2>/dev/null
}

# fence_family_lift TOOL: removes the jumps and the chains of the fence from TOOL's filter table.
fence_family_lift() {
    local tool="$1" parent chain n
    command -v "$tool" >/dev/null || return 0
    for parent in INPUT OUTPUT; do
        chain="$FENCE_IN"
        local iface=(! -i lo)
        if [[ "$parent" == OUTPUT ]]; then
            chain="$FENCE_OUT"
            iface=(! -o lo)
        fi
        n=0
        while ipt "$tool" -C "$parent" "\${iface[@]}" -m comment --comment "$FENCE_TAG" -j "$chain" 2>/dev/null; do
            ipt "$tool" -D "$parent" "\${iface[@]}" -m comment --comment "$FENCE_TAG" -j "$chain"
            n=$((n + 1))
            ((n < 100)) || die "$tool: still a jump from $parent to $chain after deleting 100"
        done
    done
    for chain in "$FENCE_IN" "$FENCE_OUT"; do
        if ipt "$tool" -n -L "$chain" >/dev/null 2>&1; then
            ipt "$tool" -F "$chain"
            ipt "$tool" -X "$chain"
        fi
    done
}

# stop_fence_timer: stops this fence's timer when one runs (only ours; its process group), bounded.
stop_fence_timer() {
    local pid i
    pid="$(as_root cat -- "$FENCE_DIR/timer.pid" 2>/dev/null || true)"
    if fence_timer_runs "$pid"; then
        as_root kill -TERM -- "-$pid" 2>/dev/null || as_root kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            fence_timer_runs "$pid" || break
            sleep 0.05
        done
        if fence_timer_runs "$pid"; then
            as_root kill -KILL -- "-$pid" 2>/dev/null || as_root kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if as_root test -d "$FENCE_DIR"; then
        as_root rm -f -- "$FENCE_DIR/timer.pid"
    fi
}

# lift_fence_rules: the client port answers everyone again (both families, where present).
lift_fence_rules() {
    local tool had=false
    for tool in iptables ip6tables; do
        if command -v "$tool" >/dev/null && ipt "$tool" -n -L "$FENCE_IN" >/dev/null 2>&1; then
            had=true
        fi
        fence_family_lift "$tool"
    done
    if [[ "$had" == true ]]; then
        say "lifted the split's client fence on port $CLIENT_PORT"
    fi
}

# lift_fence: the timer stopped and the rules gone.
lift_fence() {
    stop_fence_timer
    lift_fence_rules
}`;

const FENCE_UP = sh`
# fence_family_up TOOL: the client port rejects all but loopback, in and out (tcp-reset; the resets
# themselves pass, see firewall.ts); chains filled before the jumps go in, so it takes effect whole.
fence_family_up() {
    local tool="$1" chain
    for chain in "$FENCE_IN" "$FENCE_OUT"; do
        if ! ipt "$tool" -n -L "$chain" >/dev/null 2>&1; then
            ipt "$tool" -N "$chain"
        fi
        ipt "$tool" -F "$chain"
    done
    ipt "$tool" -A "$FENCE_IN" -p tcp --dport "$CLIENT_PORT" ! --tcp-flags RST RST -m comment --comment "$FENCE_TAG" -j REJECT --reject-with tcp-reset
    ipt "$tool" -A "$FENCE_OUT" -p tcp --sport "$CLIENT_PORT" ! --tcp-flags RST RST -m comment --comment "$FENCE_TAG" -j REJECT --reject-with tcp-reset
    ipt "$tool" -C INPUT ! -i lo -m comment --comment "$FENCE_TAG" -j "$FENCE_IN" 2>/dev/null ||
        ipt "$tool" -I INPUT 1 ! -i lo -m comment --comment "$FENCE_TAG" -j "$FENCE_IN"
    ipt "$tool" -C OUTPUT ! -o lo -m comment --comment "$FENCE_TAG" -j "$FENCE_OUT" 2>/dev/null ||
        ipt "$tool" -I OUTPUT 1 ! -o lo -m comment --comment "$FENCE_TAG" -j "$FENCE_OUT"
}

# refuses HOST PORT: a connection to HOST:PORT is refused at once (a fence's reset, or nothing listens).
refuses() {
    local rc=0 err
    # shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
    err="$(timeout -k 1 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' refuses "$1" "$2" 2>&1)" || rc=$?
    ((rc != 0)) && [[ "$err" == *"Connection refused"* ]]
}

# ask_srvr HOST PORT: srvr of another server, or the connect error.
ask_srvr() {
    # shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
    timeout -k 1 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf srvr >&3 && cat <&3' ask-srvr "$1" "$2" 2>&1
}

# zxid_of ANSWER: the Zxid of a srvr answer as a decimal number, or nothing.
zxid_of() {
    local z
    z="$(awk '/^Zxid:/ { print $2; exit }' <<<"$1")"
    [[ "$z" =~ ^0x[0-9a-fA-F]{1,16}$ ]] || return 0
    printf '%d' "$z"
}`;

/** The timer of one fence: lifts it at the deadline unless it is gone already (restarted into T, or lifted). */
export function renderFenceTimer(a: { host: HostSettings; ensemble: string; attempt: Attempt; deadline: number }): string {
    return renderScript({
        title: "the split's client fence: lift it at the split's deadline when no restart lifted it",
        params: [...liftParams(a.host, a.ensemble), ["ATTEMPT", a.attempt.startedAt], ["DEADLINE", a.deadline]],
        functions: [LOG, ROOT, IPT, LIFT],
        main: sh`
exec >>"$FENCE_DIR/timer.log" 2>&1
printf '%s\n' "$$" >"$FENCE_DIR/timer.pid.tmp" && mv -f -- "$FENCE_DIR/timer.pid.tmp" "$FENCE_DIR/timer.pid"
say "$(date -u +%FT%TZ) fence of the update started at $ATTEMPT: lifts at $(date -u -d "@$DEADLINE" +%FT%TZ) unless a restart lifted it first"
while :; do
    now="$(date +%s)"
    if ((now >= DEADLINE)); then
        break
    fi
    left=$((DEADLINE - now))
    sleep "$((left < 5 ? left : 5))"
done
if [[ "$(cat -- "$FENCE_DIR/attempt" 2>/dev/null || true)" != "$ATTEMPT" ]]; then
    say "$(date -u +%FT%TZ) deadline: the fence belongs to another attempt: nothing to do"
    exit 0
fi
lift_fence_rules
say "$(date -u +%FT%TZ) deadline: the fence is lifted (the split did not restart this server in time)"
`,
    });
}

/**
 * The fence step of one target (every arm waits for every fence step): fence the client port,
 * wait for the other targets' fences, catch up with the sources' zxid. Lifts its fence when it fails.
 */
export function renderSplitFence(a: { host: HostSettings; ensemble: string; fence: Fence; attempt: Attempt }): string {
    const { host, ensemble, fence, attempt } = a;
    checkInt("the fence's bound", fence.seconds, 1, 86400);
    checkInt("the fence's wait", fence.waitSeconds ?? FENCE_WAIT_SECONDS, 1, 600);
    checkInt("the attempt's start", attempt.startedAt, 0, 2 ** 40);
    const check = (what: string) => (p: { address: string; port: number }, i: number) => {
        checkAddress(`${what}[${i}].address`, p.address);
        checkPort(`${what}[${i}].port`, p.port);
    };
    fence.barrier.forEach(check("barrier"));
    fence.sources.forEach(check("sources"));
    if (fence.sources.length === 0) throw new Error("zkmigrate scripts: a fence needs the sources to catch up with");
    const deadline = attempt.startedAt + fence.seconds;
    return renderScript({
        title: "the split on one target: fence its client port, wait for the other targets' fences, catch up with the sources",
        params: [
            ...liftParams(host, ensemble),
            ["ATTEMPT", attempt.startedAt],
            ["DEADLINE", deadline],
            ["WAIT_SECONDS", fence.waitSeconds ?? FENCE_WAIT_SECONDS],
            ["SETTLE_SECONDS", String(FENCE_SETTLE_SECONDS)],
            ["BARRIER_HOSTS", fence.barrier.map((p) => p.address)],
            ["BARRIER_PORTS", fence.barrier.map((p) => String(p.port))],
            ["SOURCE_HOSTS", fence.sources.map((p) => p.address)],
            ["SOURCE_PORTS", fence.sources.map((p) => String(p.port))],
            ["TIMER_SCRIPT_B64", Buffer.from(renderFenceTimer({ host, ensemble, attempt, deadline }), "utf8").toString("base64")],
        ],
        functions: [LOG, ROOT, ZK, IPT, LIFT, FENCE_UP],
        main: sh`
say "fence the client port $CLIENT_PORT on $(uname -n): from now on this target acknowledges nothing until it runs the target ensemble"
need_root
command -v iptables >/dev/null || die "iptables not found: the client port cannot be fenced"
now="$(date +%s)"
((now < DEADLINE)) || die "too late to fence: the split's deadline passed; run pulumi up again"
as_root mkdir -p -- "$FENCE_DIR"
lift_fence
printf '%s\n' "$ATTEMPT" | as_root tee -- "$FENCE_DIR/attempt" >/dev/null
printf '%s' "$TIMER_SCRIPT_B64" | base64 -d | as_root tee -- "$FENCE_DIR/timer.sh" >/dev/null
fenced=false
on_exit() {
    local rc=$?
    if ((rc != 0)) && [[ "$fenced" == true ]]; then
        warn "the fence step failed: lifting this target's fence (the split does not go on)"
        lift_fence || true
    fi
}
trap on_exit EXIT
as_root setsid -f bash "$FENCE_DIR/timer.sh" </dev/null >/dev/null 2>&1
pid=""
for ((i = 0; i < 250; i++)); do
    pid="$(as_root cat -- "$FENCE_DIR/timer.pid" 2>/dev/null || true)"
    if fence_timer_runs "$pid"; then
        break
    fi
    pid=""
    sleep 0.02
done
[[ -n "$pid" ]] || die "the fence's timer did not start within 5 s (see $FENCE_DIR/timer.log): not fencing"
fenced=true
fence_family_up iptables
if command -v ip6tables >/dev/null && ipt ip6tables -n -L INPUT >/dev/null 2>&1; then
    fence_family_up ip6tables
else
    say "ip6tables is not usable here: the fence covers IPv4 only"
fi
say "fenced: port $CLIENT_PORT answers loopback only (the timer, pid $pid, lifts it at $(date -u -d "@$DEADLINE" +%FT%TZ) unless the restart does)"

# The barrier: every other running target refuses connections (fenced) before the sources are read.
end=$((SECONDS + WAIT_SECONDS))
for i in "\${!BARRIER_HOSTS[@]}"; do
    until refuses "\${BARRIER_HOSTS[$i]}" "\${BARRIER_PORTS[$i]}"; do
        ((SECONDS < end)) || die "target \${BARRIER_HOSTS[$i]}:\${BARRIER_PORTS[$i]} still accepts connections after $WAIT_SECONDS s: its fence did not go up, so it may still acknowledge writes"
        sleep 0.1
    done
done
((\${#BARRIER_HOSTS[@]} == 0)) || say "every other target is fenced: \${BARRIER_HOSTS[*]}"
sleep "$SETTLE_SECONDS"

# Catch up: at least the highest zxid of the sources (every zxid a target acknowledged is there).
want=""
leader=""
for i in "\${!SOURCE_HOSTS[@]}"; do
    answer="$(ask_srvr "\${SOURCE_HOSTS[$i]}" "\${SOURCE_PORTS[$i]}")" || true
    z="$(zxid_of "$answer")"
    mode="$(awk '/^Mode:/ { print $2; exit }' <<<"$answer")"
    [[ -n "$z" && -n "$mode" ]] || continue
    if [[ "$mode" == leader ]]; then
        leader="\${SOURCE_HOSTS[$i]}"
    fi
    if [[ -z "$want" ]] || ((z > want)); then
        want="$z"
    fi
done
[[ -n "$want" ]] || die "no source server answered srvr with a Mode and a Zxid (\${SOURCE_HOSTS[*]}): cannot tell what this target must hold before the cut"
want_hex="$(printf '0x%x' "$want")"
# A zxid whose counter is 0 is a leader's epoch start, no transaction: every transaction before it
# is what a server synced from that leader when it began to follow; a server that serves has it.
epoch_start=false
if (((want & 0xffffffff) == 0)); then
    epoch_start=true
fi
say "the sources are at zxid $want_hex\${leader:+ (leader $leader)}: waiting until this server applied it"
have=""
catchup_end=$((SECONDS + WAIT_SECONDS))
while :; do
    answer="$(zk_ask srvr)" || true
    have="$(zxid_of "$answer")"
    mode="$(awk '/^Mode:/ { print $2; exit }' <<<"$answer")"
    if [[ -n "$have" && -n "$mode" ]] && { ((have >= want)) || [[ "$epoch_start" == true ]]; }; then
        break
    fi
    ((SECONDS < catchup_end)) || die "this server did not reach zxid $want_hex within $WAIT_SECONDS s (it has $(printf '0x%x' "\${have:-0}")): it would enter the target ensemble without writes a target acknowledged"
    sleep 0.05
done
if ((have >= want)); then
    say "caught up: this server has zxid $(printf '0x%x' "$have") >= $want_hex; it stays fenced until its restart into the target ensemble"
else
    say "caught up: no transaction since the leader's epoch began ($want_hex), and this server serves in it (zxid $(printf '0x%x' "$have"), Mode: $mode); it stays fenced until its restart into the target ensemble"
fi
`,
    });
}

/** The lift a fenced target's restart runs once its old server stopped (the script reads liftParams). */
export const LIFT_FUNCTIONS = [IPT, LIFT];
