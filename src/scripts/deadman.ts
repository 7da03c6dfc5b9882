// The gates of multi-host steps and the split's dead man's switch, on the hosts. Why and when they
// run is in src/procedures/gates.ts; this file only renders the bash.
//
// - gate (read-only): the host is reachable (the script runs), root works, ZooKeeper serves (or,
//   where the split of an earlier attempt is in place, runs cut off), iptables is usable, the
//   switch can be armed (setsid --fork, the clock agrees with the attempt's start).
// - split-arm: arms the switch, then puts the split's rules up (the same rules as the firewall
//   step, which follows it). The switch is a background process in its own session (setsid), so
//   it outlives the SSH session; its state lives in a directory of its own beside ZooKeeper's data
//   dir (`<dirname dataDir>/zkmigrate-split-<chain>`): `state` (armed, committed, kept, lifting,
//   lifted), `attempt`, `deadline`, `commit_by`, `families`, `switch.pid`, `switch.sh`,
//   `switch.log`. At the deadline it keeps the rules if another target serves (the split has
//   taken, or that target is back in the joint ensemble: keeping them is safe either way) and
//   lifts them otherwise, committed or not.
// - the firewall step of an armed host, after every arm and before any restart of the split (each
//   waits for every firewall), commits the split on its host (commit_split): it checks that the
//   switch still runs and has not acted, that the rules are in place and the attempt's commit
//   window is open, and records `committed`; it does not stop the switch (commit_split says why).
//   (Not a line of a restart's script: the rules of the observer join sit on the sources, which do
//   not restart, and a restart's text must not change between the split and the later phases.)
// - the firewall's removal (its delete) also stops the switch and removes the directory.
import { posix } from "node:path";
import type { Attempt, Deadman, GateCheck } from "../steps";
import type { HostSettings } from "../types";
import { APPLY, firewallChainName, firewallParams, IPT } from "./firewall";
import { ASK_SRVR, LOG, OWNED, ROOT, ZK } from "./lib";
import { checkAddress, checkInt, checkPath, checkPort, fail, type ParamValue, renderScript, sh } from "./shell";

/** Clock difference tolerated between the hosts and the machine that runs pulumi (seconds). */
export const CLOCK_MARGIN_SECONDS = 15;

/** The switch's directory on a host: beside ZooKeeper's data dir, one per ensemble's split. */
export function splitStateDir(host: HostSettings, ensemble: string): string {
    return posix.join(posix.dirname(host.paths.dataDir), `zkmigrate-split-${firewallChainName(ensemble)}`);
}

/** The params every split script reads: STATE_DIR, the chains, the tag, the peers. */
function splitParams(host: HostSettings, ensemble: string, peers: string[]): [string, ParamValue][] {
    const dir = splitStateDir(host, ensemble);
    checkPath("the split's state directory", dir);
    return [["STATE_DIR", dir], ...firewallParams({ chain: firewallChainName(ensemble), tag: `zkmigrate:${ensemble}`, peers })];
}

/** The same names, empty, for a gate of a host that gets no firewall (the functions read them). */
function noSplitParams(host: HostSettings, ensemble: string): [string, ParamValue][] {
    return [
        ["STATE_DIR", splitStateDir(host, ensemble)],
        ["CHAIN_IN", ""],
        ["CHAIN_OUT", ""],
        ["TAG", ""],
        ["PEERS_V4", []],
        ["PEERS_V6", []],
    ];
}

/** State files and the switch's process. Reads STATE_DIR, CHAIN_IN, CHAIN_OUT, TAG; needs LOG, ROOT, IPT, OWNED. */
export const SPLIT_STATE = sh`
# put FILE VALUE: writes VALUE into FILE atomically, as root.
put() {
    # shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
    as_root bash -c 'printf "%s\n" "$2" >"$1.tmp" && mv -f -- "$1.tmp" "$1"' put "$1" "$2"
}

# get NAME: the content of STATE_DIR/NAME, empty when there is none.
get() {
    as_root cat -- "$STATE_DIR/$1" 2>/dev/null || true
}

# switch_runs PID: PID is this split's switch and runs (runs_script).
switch_runs() {
    runs_script "$1" "$STATE_DIR/switch.sh"
}

# disarm_switch: stops this split's switch on this host when one runs, bounded.
disarm_switch() {
    local pid
    pid="$(get switch.pid)"
    if stop_script "$pid" "$STATE_DIR/switch.sh"; then
        say "stopped the split's dead man's switch (pid $pid)"
    fi
    as_root rm -f -- "$STATE_DIR/switch.pid"
}

# split_in_place TOOL: INPUT and OUTPUT jump to this split's chains and both chains hold rules.
split_in_place() {
    local tool="$1"
    ipt "$tool" -C INPUT -m comment --comment "$TAG" -j "$CHAIN_IN" 2>/dev/null || return 1
    ipt "$tool" -C OUTPUT -m comment --comment "$TAG" -j "$CHAIN_OUT" 2>/dev/null || return 1
    ipt "$tool" -S "$CHAIN_IN" 2>/dev/null | grep -q '^-A ' || return 1
    ipt "$tool" -S "$CHAIN_OUT" 2>/dev/null | grep -q '^-A '
}`;

/** The commit of the split on an armed host (its firewall step), before any restart of the split. Needs SPLIT_STATE, APPLY and the peers. */
export const COMMIT = sh`
# commit_split: every host's rules are up (the restarts of the split wait for every commit): check
# that the switch acted on nothing yet, that it still runs, that the attempt's commit window is open
# (restarts that start now end before the deadline), and that the rules are in place; record the
# commit. The switch is NOT stopped: at its deadline it keeps the rules when the target ensemble
# serves and lifts them otherwise. A host that committed and then never restarted holds the joint
# ensemble's history as of the cut; kept cut off, it could later form the target ensemble with an
# empty or another stale target and outvote a target that had been lifted and went on with newer
# writes (a host lost mid-split did exactly that: 1,759 acknowledged writes lost). Lifted, it
# rejoins the joint ensemble and catches up before the next attempt cuts again.
commit_split() {
    local state commit_by now tool
    local -a families=()
    state="$(get state)"
    [[ -n "$state" ]] || die "no split is armed on this host ($STATE_DIR/state is missing): the split-arm step must run before this commit"
    if [[ "$state" == committed ]]; then
        say "the split is committed on this host already (this attempt)"
    fi
    [[ "$state" == armed || "$state" == committed ]] || die "the split on this host is '$state' (see $STATE_DIR/switch.log): its dead man's switch acted, so no restart may follow; run pulumi up again: it puts the split up on every host again before any restart"
    switch_runs "$(get switch.pid)" || die "the split's dead man's switch does not run here (see $STATE_DIR/switch.log): not committing; run pulumi up again"
    now="$(date +%s)"
    commit_by="$(get commit_by)"
    [[ "$commit_by" =~ ^[0-9]+$ ]] || die "$STATE_DIR/commit_by holds '$commit_by', not a time"
    if ((now > commit_by)); then
        die "too late to commit the split: it is $(date -u -d "@$now" +%FT%TZ), the restarts of this attempt could commit until $(date -u -d "@$commit_by" +%FT%TZ) (the switches decide at $(date -u -d "@$(get deadline)" +%FT%TZ)); run pulumi up again"
    fi
    read -r -a families <<<"$(get families)"
    ((\${#families[@]} > 0)) || die "$STATE_DIR/families is empty: no rules were put up here"
    for tool in "\${families[@]}"; do
        split_in_place "$tool" || die "the split's rules are not in place ($tool: $CHAIN_IN/$CHAIN_OUT): not committing"
    done
    # The rules are the ones this step names, one per peer (the plan shows them here).
    if ((\${#PEERS_V4[@]} > 0)); then
        rules_match iptables "\${PEERS_V4[@]}" || die "the split's iptables rules do not cut off exactly \${PEERS_V4[*]}: not committing; run pulumi up again (its arm puts them up again)"
    fi
    if ((\${#PEERS_V6[@]} > 0)); then
        rules_match ip6tables "\${PEERS_V6[@]}" || die "the split's ip6tables rules do not cut off exactly \${PEERS_V6[*]}: not committing; run pulumi up again (its arm puts them up again)"
    fi
    put "$STATE_DIR/state" committed
    say "split committed on this host: the restarts may run; its dead man's switch stays armed and keeps the rules at its deadline only if the target ensemble serves then"
}`;

/** The commit of the split on one armed host: the create of its firewall step (after every arm, before any restart of the split). */
export function renderSplitCommit(a: { host: HostSettings; ensemble: string; peers: string[] }): string {
    return renderScript({
        title: "the split on one armed host: commit it (check the dead man's switch and the rules the arm put up) before the restarts",
        params: splitParams(a.host, a.ensemble, a.peers),
        functions: [LOG, ROOT, ...COMMIT_FUNCTIONS],
        main: sh`
say "commit the split on $(uname -n): the restarts into the target ensemble come next"
need_root
commit_split
`,
    });
}

/** The functions of commit_split. */
export const COMMIT_FUNCTIONS = [IPT, APPLY, OWNED, SPLIT_STATE, COMMIT];

function checkDeadman(d: Deadman, attempt: Attempt): void {
    checkInt("splitDeadmanSeconds", d.seconds, 1, 86400);
    checkInt("the split's commit window", d.commitBySeconds, 1, d.seconds - 1);
    checkInt("the switch's probe", d.probeSeconds, 1, 600);
    checkInt("the attempt's start", attempt.startedAt, 0, 2 ** 40);
    d.partners.forEach((p, i) => {
        checkAddress(`partner[${i}].address`, p.address);
        checkPort(`partner[${i}].port`, p.port);
    });
}

/**
 * The gate of one host: read-only, every check bounded; exits 1 naming the first check that
 * failed. A multi-host step's changes wait for the gates of all its hosts.
 */
export function renderGate(a: { host: HostSettings; ensemble: string; gate: GateCheck; attempt: Attempt }): string {
    const { host, ensemble, gate, attempt } = a;
    checkPort("clientPort", host.clientPort);
    checkInt("healthTimeoutSeconds", host.healthTimeoutSeconds, 1, 86400);
    if (gate.deadman) checkDeadman(gate.deadman, attempt);
    if (!/^[\x20-\x7e]{1,200}$/.test(gate.guards)) fail(`gate description ${JSON.stringify(gate.guards)} must be 1..200 printable characters`);
    const peers = gate.firewallPeers ?? [];
    const params: [string, ParamValue][] = [
        ["GUARDS", gate.guards],
        ["SERVING", gate.serving ? "true" : "false"],
        ["FIREWALL", peers.length > 0 ? "true" : "false"],
        ["DEADMAN", gate.deadman ? "true" : "false"],
        ["CLIENT_PORT", host.clientPort],
        // A health gate's wait: a target whose switch lifted its rules rejoins the joint ensemble
        // at its next election round, up to 60 s later (FastLeaderElection's backoff while cut off).
        ["GATE_TIMEOUT", host.healthTimeoutSeconds],
        ["ATTEMPT_STARTED", attempt.startedAt],
        ["COMMIT_BY_SECONDS", gate.deadman?.commitBySeconds ?? 0],
        ["CLOCK_MARGIN", CLOCK_MARGIN_SECONDS],
        ...(peers.length > 0 ? splitParams(host, ensemble, peers) : noSplitParams(host, ensemble)),
    ];
    return renderScript({
        title: "gate of a multi-host step: this host is reachable and ready (read-only)",
        params,
        functions: [LOG, ROOT, ZK, IPT, OWNED, SPLIT_STATE],
        main: sh`
say "gate on $(uname -n) for $GUARDS: no host changes until every host of the step passed its gate"
need_root
split_here=false
if [[ "$FIREWALL" == true ]]; then
    split_here=true
    for tool in iptables ip6tables; do
        if [[ "$tool" == iptables ]] && ((\${#PEERS_V4[@]} == 0)); then continue; fi
        if [[ "$tool" == ip6tables ]] && ((\${#PEERS_V6[@]} == 0)); then continue; fi
        command -v "$tool" >/dev/null || die "gate: $tool not found: the split's firewall cannot go up here"
        ipt "$tool" -n -L INPUT >/dev/null || die "gate: $tool cannot list the filter table (no permission, or the xtables lock is held for more than 10 s)"
        say "ok: $tool is usable"
        split_in_place "$tool" || split_here=false
    done
fi
if [[ "$SERVING" == true ]]; then
    if [[ "$split_here" == true ]]; then
        # An earlier attempt left the split in place here: the server runs cut off from the source.
        port_open || die "gate: the split of an earlier attempt is in place here, and ZooKeeper does not run (nothing accepts connections on 127.0.0.1:$CLIENT_PORT)"
        say "ok: the split of an earlier attempt is in place; ZooKeeper runs"
    elif await_mode "$GATE_TIMEOUT" 0.5; then
        say "ok: ZooKeeper serves, Mode: $SRVR_MODE"
    else
        die "gate: ZooKeeper does not serve here within $GATE_TIMEOUT s: $(explain_answer srvr "$SRVR_RC" "$SRVR_ANSWER")"
    fi
fi
if [[ "$DEADMAN" == true ]]; then
    command -v setsid >/dev/null || die "gate: setsid not found (util-linux): the split's dead man's switch cannot be armed"
    setsid --help 2>&1 | grep -q -- '--fork' || die "gate: this setsid has no --fork (util-linux older than 2.31): the split's dead man's switch cannot be armed"
    as_root test -d "$(dirname "$STATE_DIR")" || die "gate: $(dirname "$STATE_DIR") does not exist: no place for the switch's state"
    now="$(date +%s)"
    if ((now + CLOCK_MARGIN < ATTEMPT_STARTED)); then
        die "gate: this host's clock ($(date -u +%FT%TZ)) is more than $CLOCK_MARGIN s behind the machine that runs pulumi (the update started at $(date -u -d "@$ATTEMPT_STARTED" +%FT%TZ)): the switch's deadline would be wrong"
    fi
    if ((now >= ATTEMPT_STARTED + COMMIT_BY_SECONDS)); then
        die "gate: it is $((now - ATTEMPT_STARTED)) s since this update started, past the split's commit window ($COMMIT_BY_SECONDS s), or this host's clock is ahead: run pulumi up again"
    fi
    say "ok: the split's dead man's switch can be armed (clock within the window)"
fi
say "gate passed"
`,
    });
}

/** The switch itself: rendered whole and written to the host by the arm script; runs as root. */
export function renderSwitch(a: { host: HostSettings; ensemble: string; peers: string[]; deadman: Deadman; attempt: Attempt }): string {
    const { host, ensemble, peers, deadman, attempt } = a;
    checkDeadman(deadman, attempt);
    return renderScript({
        title: "the split's dead man's switch: at the deadline keeps the split if another target serves, and lifts it otherwise",
        params: [
            ...splitParams(host, ensemble, peers),
            ["ATTEMPT", attempt.startedAt],
            ["DEADLINE", attempt.startedAt + deadman.seconds],
            ["PROBE_SECONDS", deadman.probeSeconds],
            ["PARTNER_HOSTS", deadman.partners.map((p) => p.address)],
            ["PARTNER_PORTS", deadman.partners.map((p) => String(p.port))],
        ],
        functions: [LOG, ROOT, IPT, OWNED, SPLIT_STATE, ASK_SRVR],
        main: sh`
exec >>"$STATE_DIR/switch.log" 2>&1
put "$STATE_DIR/switch.pid" "$$"
say "$(date -u +%FT%TZ) armed for the update started at $ATTEMPT: decides at $(date -u -d "@$DEADLINE" +%FT%TZ): the rules stay only if another target serves then"
sleep_until "$DEADLINE"
state="$(get state)"
if [[ ( "$state" != armed && "$state" != committed ) || "$(get attempt)" != "$ATTEMPT" ]]; then
    say "$(date -u +%FT%TZ) deadline: the split is '$(get state)' (attempt $(get attempt)): nothing to do"
    exit 0
fi
say "$(date -u +%FT%TZ) deadline ($state): asking the other targets for $PROBE_SECONDS s whether the target ensemble serves"
end=$((SECONDS + PROBE_SECONDS))
while ((SECONDS < end)); do
    for i in "\${!PARTNER_HOSTS[@]}"; do
        answer="$(ask_srvr "\${PARTNER_HOSTS[$i]}" "\${PARTNER_PORTS[$i]}")" || true
        mode="$(awk '/^Mode:/ { print $2; exit }' <<<"$answer")"
        if [[ -n "$mode" ]]; then
            put "$STATE_DIR/state" kept
            say "$(date -u +%FT%TZ) \${PARTNER_HOSTS[$i]} serves (Mode: $mode): the target ensemble may have formed, so the rules stay (kept)"
            exit 0
        fi
    done
    sleep 1
done
put "$STATE_DIR/state" lifting
if ((\${#PEERS_V4[@]} > 0)); then
    remove_family iptables
fi
if ((\${#PEERS_V6[@]} > 0)); then
    remove_family ip6tables
fi
put "$STATE_DIR/state" lifted
say "$(date -u +%FT%TZ) no other target serves: the split is lifted, this server rejoins the source as the joint member it still is"
`,
    });
}

/**
 * Arms the switch of one target, then puts the split's rules up. Idempotent per attempt: a new
 * attempt replaces the old switch; a host whose restart committed the split keeps its rules and
 * gets no switch (nothing would disarm it).
 */
export function renderSplitArm(a: { host: HostSettings; ensemble: string; peers: string[]; deadman: Deadman; attempt: Attempt }): string {
    const { host, ensemble, peers, deadman, attempt } = a;
    const switchScript = renderSwitch(a);
    const families = [...new Set(peers.map((p) => (p.includes(":") ? "ip6tables" : "iptables")))].sort((x, y) => (x === "iptables" ? -1 : y === "iptables" ? 1 : 0));
    return renderScript({
        title: "the split on one target: arm the dead man's switch, then put the rules up",
        params: [
            ...splitParams(host, ensemble, peers),
            ["ATTEMPT_STARTED", attempt.startedAt],
            ["DEADMAN_SECONDS", deadman.seconds],
            ["COMMIT_BY_SECONDS", deadman.commitBySeconds],
            ["CLOCK_MARGIN", CLOCK_MARGIN_SECONDS],
            ["FAMILIES", families.join(" ")],
            // base64: the switch's text is a whole script of its own (coreutils base64 decodes it).
            ["SWITCH_SCRIPT_B64", Buffer.from(switchScript, "utf8").toString("base64")],
        ],
        functions: [LOG, ROOT, IPT, APPLY, OWNED, SPLIT_STATE],
        main: sh`
say "split on $(uname -n): arm the dead man's switch ($DEADMAN_SECONDS s from the update's start), then cut off \${PEERS_V4[*]-} \${PEERS_V6[*]-}"
need_root
as_root mkdir -p -- "$STATE_DIR"
disarm_switch
# Every attempt arms again, whatever an earlier one left (armed, committed, kept, lifted): a commit
# promises nothing beyond its attempt (see commit_split), so a host that committed but did not
# restart is armed like the others.
now="$(date +%s)"
if ((now + CLOCK_MARGIN < ATTEMPT_STARTED)); then
    die "this host's clock ($(date -u +%FT%TZ)) is more than $CLOCK_MARGIN s behind the machine that runs pulumi: not arming"
fi
if ((now >= ATTEMPT_STARTED + COMMIT_BY_SECONDS)); then
    die "too late to arm: $((now - ATTEMPT_STARTED)) s since this update started, past the commit window of $COMMIT_BY_SECONDS s; run pulumi up again"
fi
put "$STATE_DIR/attempt" "$ATTEMPT_STARTED"
put "$STATE_DIR/deadline" "$((ATTEMPT_STARTED + DEADMAN_SECONDS))"
put "$STATE_DIR/commit_by" "$((ATTEMPT_STARTED + COMMIT_BY_SECONDS))"
put "$STATE_DIR/families" "$FAMILIES"
put "$STATE_DIR/state" armed
printf '%s' "$SWITCH_SCRIPT_B64" | base64 -d | as_root tee -- "$STATE_DIR/switch.sh" >/dev/null
pid="$(start_script "$STATE_DIR/switch.sh" "$STATE_DIR/switch.pid")" || die "the dead man's switch did not start within 5 s (see $STATE_DIR/switch.log): not putting the split up"
say "armed: pid $pid decides at $(date -u -d "@$((ATTEMPT_STARTED + DEADMAN_SECONDS))" +%FT%TZ) (the rules stay only if the target ensemble serves then); the split may commit until $(date -u -d "@$((ATTEMPT_STARTED + COMMIT_BY_SECONDS))" +%FT%TZ)"
if ((\${#PEERS_V4[@]} > 0)); then
    apply_family iptables "\${PEERS_V4[@]}"
fi
if ((\${#PEERS_V6[@]} > 0)); then
    apply_family ip6tables "\${PEERS_V6[@]}"
fi
say "split up on $(uname -n)"
`,
    });
}

/** What the firewall's removal adds: it stops a switch still armed and removes the split's directory. */
export function forgetSplit(host: HostSettings, ensemble: string): { params: [string, ParamValue][]; functions: string[]; first: string } {
    const dir = splitStateDir(host, ensemble);
    checkPath("the split's state directory", dir);
    return { params: [["STATE_DIR", dir]], functions: [OWNED, SPLIT_STATE, FORGET], first: "forget_split" };
}

const FORGET = sh`
# forget_split: no switch of this split runs any more, and its directory is gone.
forget_split() {
    if as_root test -d "$STATE_DIR"; then
        disarm_switch
        as_root rm -rf -- "$STATE_DIR"
        say "removed the split's state $STATE_DIR"
    fi
}`;
