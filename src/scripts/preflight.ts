// renderPreflight: read-only checks before anything is written; reports every failure, then exits 1.
import type { HostSettings } from "../types";
import { bugText, ROLLING_MEMBERSHIP_BUG } from "../versions";
import { checkHostPaths, OBSERVERS } from "./config";
import { LOG, ROOT, ZK } from "./lib";
import { checkAddress, checkInt, checkPort, fail, type ParamValue, renderScript, sh } from "./shell";

export interface PreflightArgs {
    host: HostSettings;
    /**
     * Addresses that must accept a TCP connection within 3 s (peers, Services). With
     * `listening: false` (a server that does not run yet, such as an empty target) a refused
     * connection passes too: the host answered, so the path is open; only a timeout fails.
     */
    reach: { address: string; port: number; listening?: boolean }[];
    /** Commands that must be on PATH. */
    requireCommands: string[];
    /** A firewall chain base name that must not exist yet (a leftover split from an earlier run). */
    noLeftoverChain?: string;
    /** The local server must be empty: at most maxZnodes znodes, or no snapshot when it does not answer. */
    emptyTarget?: { maxZnodes: number };
    /** Names that must resolve (getent hosts). */
    resolveNames?: string[];
    /**
     * Refuse a local server (when it answers srvr) on a release with a known bug of rolling
     * membership changes (src/versions.ts); a version that cannot be read is a warning.
     */
    versionGuard?: boolean;
    /** The observers the plan declares (their lines pass the observer check), and whether this server is one. */
    observers?: { ids: number[]; observer: boolean };
    /**
     * Before the checks, wait up to this many seconds until every name resolves and every address
     * answers (default 0): Kubernetes Services created moments before reach the cluster's DNS and
     * kube-proxy a little later.
     */
    settleSeconds?: number;
}

const CHECKS = sh`
FAILURES=0
failed() {
    printf 'zkmigrate: FAILED: %s\n' "$*" >&2
    FAILURES=$((FAILURES + 1))
}
ok() { say "ok: $*"; }

check_root() {
    if [[ "$(id -u)" == 0 ]]; then
        ok "running as root"
    elif sudo -n true 2>/dev/null; then
        ok "passwordless sudo works for $(id -un)"
    else
        failed "$(id -un) cannot use passwordless sudo (sudo -n): the migration scripts need root for the config, the service and the firewall"
    fi
}

check_config() {
    if [[ -f "$ZOO_CFG" && -r "$ZOO_CFG" ]]; then
        ok "zoo.cfg $ZOO_CFG exists and is readable"
    elif as_root test -f "$ZOO_CFG" 2>/dev/null; then
        ok "zoo.cfg $ZOO_CFG exists (readable as root)"
    elif [[ -e "$ZOO_CFG" ]]; then
        failed "zoo.cfg $ZOO_CFG is not a readable file"
    else
        failed "zoo.cfg $ZOO_CFG does not exist"
    fi
}

check_no_observers() {
    local observers
    observers="$(observer_lines "$ZOO_CFG" "$DYNAMIC_CFG")"
    if [[ -n "$observers" ]]; then
        failed "observers in the config that the plan does not declare, which zkmigrate would write as voters: $(tr '\n' ' ' <<<"$observers")"
    elif [[ -n "\${ALLOWED_OBSERVERS[*]-}" ]]; then
        ok "no observer in the config but the planned ones (\${ALLOWED_OBSERVERS[*]})"
    else
        ok "no observer in the config"
    fi
}

check_commands() {
    local c
    for c in \${REQUIRE_COMMANDS[@]+"\${REQUIRE_COMMANDS[@]}"}; do
        if command -v "$c" >/dev/null; then
            ok "command $c: $(command -v "$c")"
        else
            failed "command $c is not installed (not found on PATH $PATH)"
        fi
    done
}

check_reach() {
    local target address port listening err rc
    for target in \${REACH[@]+"\${REACH[@]}"}; do
        read -r address port listening <<<"$target"
        rc=0
        # shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
        err="$(timeout -k 1 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' reach "$address" "$port" 2>&1)" || rc=$?
        if ((rc == 0)); then
            ok "$address:$port accepts TCP connections"
        elif ((rc == 124 || rc == 137)); then
            failed "$address:$port does not accept a TCP connection within 3 s (filtered, or the host is down)"
        elif [[ "$listening" == no && "$err" == *"Connection refused"* ]]; then
            ok "$address:$port is reachable (refused: its server does not run yet)"
        else
            # bash reports "reach: line 1: /dev/tcp/...: Connection refused": keep the reason.
            err="\${err%$'\n'}"
            failed "$address:$port does not accept TCP connections: \${err##*: }"
        fi
    done
}

# settle: waits (bounded by SETTLE_SECONDS) until every name resolves and every address answers.
settle() {
    local deadline=$((SECONDS + SETTLE_SECONDS)) pending name target address port listening err rc
    while :; do
        pending=0
        for name in \${RESOLVE_NAMES[@]+"\${RESOLVE_NAMES[@]}"}; do
            timeout -k 1 5 getent hosts "$name" >/dev/null || pending=$((pending + 1))
        done
        if ((pending == 0)); then
            for target in \${REACH[@]+"\${REACH[@]}"}; do
                read -r address port listening <<<"$target"
                rc=0
                # shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
                err="$(timeout -k 1 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' reach "$address" "$port" 2>&1)" || rc=$?
                if ((rc != 0)) && ! [[ "$listening" == no && "$err" == *"Connection refused"* ]]; then
                    pending=$((pending + 1))
                fi
            done
        fi
        if ((pending == 0)); then
            ok "every name resolves and every address answers (waited $((SECONDS + SETTLE_SECONDS - deadline)) s)"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            say "$pending name(s) or address(es) still not answering after $SETTLE_SECONDS s: the checks below say which"
            return 0
        fi
        sleep 1
    done
}

check_names() {
    local name addresses
    for name in \${RESOLVE_NAMES[@]+"\${RESOLVE_NAMES[@]}"}; do
        if addresses="$(timeout -k 1 10 getent hosts "$name")"; then
            ok "$name resolves: $(awk '{ print $1 }' <<<"$addresses" | tr '\n' ' ')"
        else
            failed "$name does not resolve (getent hosts $name)"
        fi
    done
}

check_no_leftover_chain() {
    local tool rules chain
    for tool in iptables ip6tables; do
        if ! command -v "$tool" >/dev/null; then
            if [[ "$tool" == iptables ]]; then
                failed "iptables is not installed: cannot check for a leftover firewall split $LEFTOVER_CHAIN-IN/-OUT"
            fi
            continue
        fi
        if ! rules="$(as_root "$tool" -w 10 -S 2>&1)"; then
            failed "$tool cannot list the filter table: $(tr '\n' ' ' <<<"$rules")"
            continue
        fi
        for chain in "$LEFTOVER_CHAIN-IN" "$LEFTOVER_CHAIN-OUT"; do
            if grep -qxF -- "-N $chain" <<<"$rules"; then
                failed "$tool chain $chain exists: a leftover firewall split from an earlier run (remove it first)"
            else
                ok "$tool has no chain $chain"
            fi
        done
    done
}

# version_number X.Y.Z: one comparable number (10#: a part with a leading 0 is decimal here).
version_number() {
    local major minor patch
    IFS=. read -r major minor patch <<<"$1"
    printf '%s\n' "$((10#$major * 1000000 + 10#$minor * 1000 + 10#$patch))"
}

# check_version: the local server's release, read with srvr, must not be one of AFFECTED_VERSIONS
# ("first last" ranges, inclusive) when this procedure changes the membership by rolling restart.
check_version() {
    local answer rc=0 text version n range first last
    answer="$(zk_ask srvr)" || rc=$?
    text="$(awk '/^Zookeeper version:/ { sub(/^Zookeeper version: */, ""); print; exit }' <<<"$answer")"
    if [[ ! "$text" =~ ^([0-9]+\.[0-9]+\.[0-9]+) ]]; then
        warn "the ZooKeeper version could not be read ($(explain_answer srvr "$rc" "$answer")): $VERSION_BUG"
        return 0
    fi
    version="\${BASH_REMATCH[1]}"
    n="$(version_number "$version")"
    for range in "\${AFFECTED_VERSIONS[@]}"; do
        read -r first last <<<"$range"
        if ((n >= $(version_number "$first") && n <= $(version_number "$last"))); then
            failed "ZooKeeper $version runs here: $VERSION_BUG"
            return 0
        fi
    done
    ok "ZooKeeper $version is not affected by $VERSION_TICKETS"
}

# check_empty_target: a target joining the source must hold no data of its own.
check_empty_target() {
    local answer rc=0 count="" reason snapshots
    answer="$(zk_ask mntr)" || rc=$?
    count="$(awk '$1 == "zk_znode_count" { print $2; exit }' <<<"$answer")"
    if [[ -z "$count" ]]; then
        rc=0
        answer="$(zk_ask srvr)" || rc=$?
        count="$(awk -F': *' '$1 == "Node count" { print $2; exit }' <<<"$answer")"
    fi
    if [[ "$count" =~ ^[0-9]+$ ]]; then
        if ((count > MAX_ZNODES)); then
            failed "target is not empty: $count znodes (at most $MAX_ZNODES expected on an empty server)"
        else
            ok "target is empty: $count znodes (at most $MAX_ZNODES)"
        fi
        return 0
    fi
    reason="$(explain_answer srvr "$rc" "$answer")"
    # shellcheck disable=SC2016 # $1 belongs to the inner bash
    if ! snapshots="$(as_root bash -c 'shopt -s nullglob; for f in "$1"/version-2/snapshot.*; do printf "%s\n" "$f"; done' snapshots "$DATA_DIR")"; then
        failed "the local server does not answer ($reason) and $DATA_DIR cannot be inspected"
    elif [[ -n "$snapshots" ]]; then
        failed "target is not empty: the local server does not answer ($reason) and $DATA_DIR/version-2 holds snapshots: $(tr '\n' ' ' <<<"$snapshots")"
    else
        ok "target is empty: the local server does not answer and $DATA_DIR/version-2 holds no snapshot"
    fi
}`;

export function renderPreflight(a: PreflightArgs): string {
    const { host } = a;
    checkHostPaths(host);
    checkPort("clientPort", host.clientPort);
    for (const r of a.reach) {
        checkAddress("reach address", r.address);
        checkPort(`reach port of ${r.address}`, r.port);
    }
    for (const c of a.requireCommands) {
        if (!/^[A-Za-z0-9._+-]{1,100}$/.test(c)) fail(`required command ${JSON.stringify(c)} is not a plain command name`);
    }
    for (const n of a.resolveNames ?? []) checkAddress("name to resolve", n);
    if (a.noLeftoverChain !== undefined && !/^[A-Za-z0-9_-]{1,24}$/.test(a.noLeftoverChain)) {
        fail(`firewall chain ${JSON.stringify(a.noLeftoverChain)} must be 1..24 letters, digits, - or _`);
    }
    if (a.emptyTarget) checkInt("emptyTarget.maxZnodes", a.emptyTarget.maxZnodes, 0, 1_000_000_000);
    checkInt("settleSeconds", a.settleSeconds ?? 0, 0, 600);

    const main = sh`
say "preflight on $(uname -n) as $(id -un): read-only checks"
check_root
check_config
check_no_observers
check_commands
if ((SETTLE_SECONDS > 0)); then
    settle
fi
check_reach
check_names
if [[ -n "$LEFTOVER_CHAIN" ]]; then
    check_no_leftover_chain
fi
if [[ -n "$MAX_ZNODES" ]]; then
    check_empty_target
fi
if [[ "$VERSION_GUARD" == yes ]]; then
    check_version
fi
if ((FAILURES > 0)); then
    die "preflight failed: $FAILURES check(s) failed (see above); nothing was changed"
fi
say "preflight passed"
`;
    return renderScript({
        title: "preflight: read-only checks before the migration touches this host",
        params: [
            ["ZOO_CFG", host.paths.configFile],
            ["DYNAMIC_CFG", host.paths.dynamicConfigFile ?? ""],
            ["DATA_DIR", host.paths.dataDir],
            ["CLIENT_PORT", host.clientPort],
            ["REQUIRE_COMMANDS", [...new Set(a.requireCommands)]],
            ["REACH", a.reach.map((r) => `${r.address} ${r.port} ${r.listening === false ? "no" : "yes"}`)],
            ["RESOLVE_NAMES", a.resolveNames ?? []],
            ["SETTLE_SECONDS", a.settleSeconds ?? 0],
            // Empty: the check does not run.
            ["LEFTOVER_CHAIN", a.noLeftoverChain ?? ""],
            ["MAX_ZNODES", a.emptyTarget ? String(a.emptyTarget.maxZnodes) : ""],
            ["VERSION_GUARD", a.versionGuard ? "yes" : "no"],
            ["AFFECTED_VERSIONS", ROLLING_MEMBERSHIP_BUG.affected.map(([first, last]) => `${first} ${last}`)],
            ["VERSION_TICKETS", ROLLING_MEMBERSHIP_BUG.tickets.join("/")],
            ["VERSION_BUG", bugText(ROLLING_MEMBERSHIP_BUG)],
            // Only with observers: a voter-only preflight keeps its text.
            ...(a.observers && a.observers.ids.length > 0
                ? ([
                      ["ALLOWED_OBSERVERS", a.observers.ids.map(String)],
                      ["PEER_TYPE_OK", a.observers.observer ? "yes" : "no"],
                  ] as [string, ParamValue][])
                : []),
        ],
        functions: [LOG, ROOT, ZK, OBSERVERS, CHECKS],
        main,
    });
}
