// The split's client fence: before the cut, no target acknowledges anything any more, and every
// target holds everything any target acknowledged.
//
// Why. A target acknowledges a client's write once it applied it (an observer, on the leader's
// INFORM) or once the joint ensemble committed it (a voter). The cut reaches the targets at
// different points of the joint history: one target may have applied and acknowledged zxid z
// while another has not received z yet. When the targets then restart into T, a majority of T
// without the first one can elect the older history, and z is gone for the clients that were told
// it was written. Two steps per running target close that gap:
//   1. split-fence (after every gate): this target's client port rejects every connection but
//      loopback's (TCP reset in, and its answers out are rejected too), so from now on it
//      acknowledges nothing;
//   2. split-catchup (after EVERY fence step, so no target acknowledges any more): read the
//      sources' zxid (the highest of those that answer; every zxid any target acknowledged is at
//      most that) and wait until this server has applied it (its own srvr, over loopback).
// Every arm waits for every catch-up: when the rules go up every target holds every acknowledged
// write, so whichever majority of T elects has them all.
//
// The fence goes with the target's restart into T (the restart lifts it right after the service
// command: the old server no longer runs), or at the split's deadline (its own timer, like the dead
// man's switch) when no restart came, or at once when this host's catch-up fails. The restart
// leaves a marker beside the data it restarted with (version-2/zkmigrate-in-target-<chain>, the
// membership it joined): a later attempt of the same split (a retry after a target was lost in its
// restart) neither fences nor catches up a server that runs T already; a server whose data is
// replaced (a join's wipe) loses the marker with it.
// Residual: clients on the target's own host that connect over loopback are not fenced.
import { posix } from "node:path";
import type { Attempt, Catchup, Fence } from "../steps";
import type { HostSettings, Membership } from "../types";
import { firewallChainName, IPT } from "./firewall";
import { ASK_SRVR, LOG, OWNED, ROOT, ZK } from "./lib";
import { checkAddress, checkInt, checkPath, checkPort, type ParamValue, renderScript, sh } from "./shell";


/** How long a catch-up step waits for its own server to reach the sources' zxid. */
export const FENCE_WAIT_SECONDS = 30;


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

/** lift_fence: removes this ensemble's fence (both families, where present) and stops its timer. Needs LOG, ROOT, IPT (drop_jumps, drop_chain), OWNED. */
export const LIFT = sh`
# fence_family_lift TOOL: removes the jumps and the chains of the fence from TOOL's filter table.
fence_family_lift() {
    local tool="$1"
    command -v "$tool" >/dev/null || return 0
    drop_jumps "$tool" INPUT "$FENCE_IN" "$FENCE_TAG" ! -i lo >/dev/null
    drop_jumps "$tool" OUTPUT "$FENCE_OUT" "$FENCE_TAG" ! -o lo >/dev/null
    drop_chain "$tool" "$FENCE_IN" || true
    drop_chain "$tool" "$FENCE_OUT" || true
}

# stop_fence_timer: stops this fence's timer when one runs, bounded.
stop_fence_timer() {
    stop_script "$(as_root cat -- "$FENCE_DIR/timer.pid" 2>/dev/null || true)" "$FENCE_DIR/timer.sh" || true
    if as_root test -d "$FENCE_DIR"; then
        as_root rm -f -- "$FENCE_DIR/timer.pid"
    fi
}

# lift_fence_rules: the client port answers everyone again (both families, where present).
lift_fence_rules() {
    local tool had=false
    for tool in iptables ip6tables; do
        if command -v "$tool" >/dev/null && chain_exists "$tool" "$FENCE_IN"; then
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
        if ! chain_exists "$tool" "$chain"; then
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
}`;

const ZXID = sh`
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
        functions: [LOG, ROOT, IPT, OWNED, LIFT],
        main: sh`
exec >>"$FENCE_DIR/timer.log" 2>&1
printf '%s\n' "$$" >"$FENCE_DIR/timer.pid.tmp" && mv -f -- "$FENCE_DIR/timer.pid.tmp" "$FENCE_DIR/timer.pid"
say "$(date -u +%FT%TZ) fence of the update started at $ATTEMPT: lifts at $(date -u -d "@$DEADLINE" +%FT%TZ) unless a restart lifted it first"
sleep_until "$DEADLINE"
if [[ "$(cat -- "$FENCE_DIR/attempt" 2>/dev/null || true)" != "$ATTEMPT" ]]; then
    say "$(date -u +%FT%TZ) deadline: the fence belongs to another attempt: nothing to do"
    exit 0
fi
lift_fence_rules
say "$(date -u +%FT%TZ) deadline: the fence is lifted (the split did not restart this server in time)"
`,
    });
}

/** `<id>=<address>:<peer>:<election>` of every member, sorted: what the marker of a restart into T holds. */
export function targetFingerprint(m: Membership): string {
    return [...m.members]
        .sort((x, y) => x.id - y.id)
        .map((l) => `${l.id}=${l.address}:${l.peerPort}:${l.electionPort}${l.observer ? ":observer" : ""}`)
        .join(",");
}

/** The marker params: where a restart into T leaves it and what it holds. */
function markerParams(host: HostSettings, ensemble: string, target: string): [string, ParamValue][] {
    if (!/^[\x21-\x7e]{1,2000}$/.test(target)) throw new Error(`zkmigrate scripts: bad target fingerprint ${JSON.stringify(target)}`);
    return [
        ["MARKER", posix.join(host.paths.dataDir, "version-2", `zkmigrate-in-target-${firewallChainName(ensemble)}`)],
        ["TARGET_MEMBERS", target],
    ];
}

const MARKER = sh`
# mark_in_target: this server now runs the target ensemble (a restart of the split): the marker goes
# beside its data, so a later attempt of this split leaves it alone.
mark_in_target() {
    if as_root test -d "$(dirname "$MARKER")"; then
        printf '%s\n' "$TARGET_MEMBERS" | as_root tee -- "$MARKER.tmp" >/dev/null
        as_root mv -f -- "$MARKER.tmp" "$MARKER"
    else
        warn "$(dirname "$MARKER") does not exist: no marker that this server runs the target ensemble (a retry of the split would fence it again)"
    fi
}

# in_target: this server was restarted into the target ensemble by this split already (an earlier
# attempt): the marker beside its data names the membership it joined.
in_target() {
    [[ "$(as_root cat -- "$MARKER" 2>/dev/null || true)" == "$TARGET_MEMBERS" ]]
}`;

/** The fence step of one running target (after every gate; every catch-up waits for every fence). */
export function renderSplitFence(a: { host: HostSettings; ensemble: string; fence: Fence; attempt: Attempt }): string {
    const { host, ensemble, fence, attempt } = a;
    checkInt("the fence's bound", fence.seconds, 1, 86400);
    checkInt("the attempt's start", attempt.startedAt, 0, 2 ** 40);
    const deadline = attempt.startedAt + fence.seconds;
    return renderScript({
        title: "the split on one target: fence its client port (loopback only) until its restart into the target ensemble",
        params: [
            ...liftParams(host, ensemble),
            ...markerParams(host, ensemble, fence.target),
            ["ATTEMPT", attempt.startedAt],
            ["DEADLINE", deadline],
            ["TIMER_SCRIPT_B64", Buffer.from(renderFenceTimer({ host, ensemble, attempt, deadline }), "utf8").toString("base64")],
        ],
        functions: [LOG, ROOT, IPT, OWNED, LIFT, FENCE_UP, MARKER],
        main: sh`
need_root
if in_target; then
    say "$(uname -n) was restarted into the target ensemble by an earlier attempt of this split ($MARKER): nothing to fence"
    exit 0
fi
say "fence the client port $CLIENT_PORT on $(uname -n): from now on this target acknowledges nothing until it runs the target ensemble"
command -v iptables >/dev/null || die "iptables not found: the client port cannot be fenced"
now="$(date +%s)"
((now < DEADLINE)) || die "too late to fence: the split's deadline passed; run pulumi up again"
as_root mkdir -p -- "$FENCE_DIR"
lift_fence
printf '%s\n' "$ATTEMPT" | as_root tee -- "$FENCE_DIR/attempt" >/dev/null
printf '%s' "$TIMER_SCRIPT_B64" | base64 -d | as_root tee -- "$FENCE_DIR/timer.sh" >/dev/null
pid="$(start_script "$FENCE_DIR/timer.sh" "$FENCE_DIR/timer.pid")" || die "the fence's timer did not start within 5 s (see $FENCE_DIR/timer.log): not fencing"
fence_family_up iptables
if command -v ip6tables >/dev/null && ipt ip6tables -n -L INPUT >/dev/null 2>&1; then
    fence_family_up ip6tables
else
    say "ip6tables is not usable here: the fence covers IPv4 only"
fi
say "fenced: port $CLIENT_PORT answers loopback only (the timer, pid $pid, lifts it at $(date -u -d "@$DEADLINE" +%FT%TZ) unless the restart does)"
`,
    });
}

/**
 * The catch-up step of one fenced target (after every fence step, before any arm): wait until
 * this server has applied the sources' zxid. Lifts this host's fence when it fails.
 */
export function renderSplitCatchup(a: { host: HostSettings; ensemble: string; catchup: Catchup }): string {
    const { host, ensemble, catchup } = a;
    catchup.sources.forEach((p, i) => {
        checkAddress(`sources[${i}].address`, p.address);
        checkPort(`sources[${i}].port`, p.port);
    });
    if (catchup.sources.length === 0) throw new Error("zkmigrate scripts: a catch-up needs the sources");
    checkInt("the catch-up's wait", catchup.waitSeconds ?? FENCE_WAIT_SECONDS, 1, 600);
    return renderScript({
        title: "the split on one fenced target: catch up with the sources' zxid before any rule goes up",
        params: [
            ...liftParams(host, ensemble),
            ...markerParams(host, ensemble, catchup.target),
            ["WAIT_SECONDS", catchup.waitSeconds ?? FENCE_WAIT_SECONDS],
            ["SOURCE_HOSTS", catchup.sources.map((p) => p.address)],
            ["SOURCE_PORTS", catchup.sources.map((p) => String(p.port))],
        ],
        functions: [LOG, ROOT, ZK, ASK_SRVR, IPT, OWNED, LIFT, ZXID, MARKER],
        main: sh`
need_root
if in_target; then
    say "$(uname -n) was restarted into the target ensemble by an earlier attempt of this split ($MARKER): nothing to catch up"
    exit 0
fi
on_exit() {
    local rc=$?
    if ((rc != 0)); then
        warn "the catch-up failed: lifting this target's fence (the split does not go on)"
        lift_fence || true
    fi
}
trap on_exit EXIT
# Every target is fenced (this step waits for every fence step): every zxid a target acknowledged
# is at most the highest the sources report now.
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

/** What a fenced target's restart runs once its old server stopped: `lift_fence` and `mark_in_target` (params: unfenceParams). */
export const UNFENCE_FUNCTIONS = [IPT, OWNED, LIFT, MARKER];

export function unfenceParams(host: HostSettings, u: { ensemble: string; target: string }): [string, ParamValue][] {
    return [...liftParams(host, u.ensemble), ...markerParams(host, u.ensemble, u.target)];
}

/** The lines of a restart that lift the fence (after the service command). */
export const UNFENCE = "# The old server is stopped: the split's client fence goes (src/scripts/fence.ts).\nlift_fence\nmark_in_target\n";
