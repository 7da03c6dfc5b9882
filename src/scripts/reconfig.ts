// The host scripts of mitosis by dynamic reconfig (src/procedures/mitosis-reconfig.ts): ZooKeeper
// >= 3.5.3 with reconfigEnabled=true keeps its membership in a dynamic config file that it
// rewrites itself (zoo.cfg.dynamic.<version>, and the static zoo.cfg's dynamicConfigFile line).
//  - renderReconfigStart: a target (re)starts from a seed membership written to a dynamic file of
//    zkmigrate's (`<zoo.cfg>.dynamic.zkmigrate`: no hex suffix, so ZooKeeper reads version 0 and any
//    committed configuration it meets wins over it). A joiner's seed is the committed configuration
//    plus itself as an observer (the ZooKeeper manual's safe joiner: it cannot form a quorum with
//    other joiners, it adopts the committed configuration and follows without a vote until added).
//  - renderReconfigChange: `reconfig -add/-remove` through zkCli on the host's own server, with the
//    digest credentials read from stdin (never in the script text, never printed). Idempotent: the
//    configuration is read first, only what is missing is asked for, and read again to prove it.
import type { HostSettings, MemberLine, ServerId } from "../types";
import { REPLACE_FILE } from "./config";
import { HEALTH, LOG, ROOT, SERVICE, STOP, ZK } from "./lib";
import { UNFENCE, UNFENCE_FUNCTIONS, unfenceParams } from "./fence";
import { MOVE_ASIDE } from "./service";
import { checkAddress, checkInt, checkPath, checkPort, checkText, fail, type ParamValue, renderScript, sh } from "./shell";

/**
 * Where the digest credentials (`user:password`, the secret zkmigrate:reconfigAuth) go into a
 * reconfig script: the script text holds this placeholder, and whoever runs it replaces it with
 * the secret, shell-quoted (components/ensemble.ts does it inside a Pulumi secret).
 */
export const AUTH_PLACEHOLDER = "__ZKMIGRATE_RECONFIG_AUTH__";

/** The script with the credentials in place of the placeholder (shell-quoted). */
export function withAuth(script: string, auth: string | undefined): string {
    const quoted = `'${(auth ?? "").replace(/'/g, `'\\''`)}'`;
    return script.split(`'${AUTH_PLACEHOLDER}'`).join(quoted);
}

/** The zkCli command when the config names none (a ZooKeeper release's own script). */
export const DEFAULT_ZK_CLI = "/opt/zookeeper/bin/zkCli.sh";

/** `server.N=addr:peer:election:participant|observer;clientPort`: ZooKeeper's dynamic line. */
export function dynamicLine(m: MemberLine, clientPort: number): string {
    checkInt("server id", m.id, 1, 255);
    checkAddress(`address of server.${m.id}`, m.address);
    checkPort(`peer port of server.${m.id}`, m.peerPort);
    checkPort(`election port of server.${m.id}`, m.electionPort);
    checkPort("clientPort", clientPort);
    const address = m.address.includes(":") && !m.address.startsWith("[") ? `[${m.address}]` : m.address;
    return `server.${m.id}=${address}:${m.peerPort}:${m.electionPort}:${m.observer ? "observer" : "participant"};${clientPort}`;
}

/** Where zkmigrate writes a seed membership (version 0 for ZooKeeper: the suffix is not hex). */
export function seedFile(host: HostSettings): string {
    return `${host.paths.configFile}.dynamic.zkmigrate`;
}

function checkHost(host: HostSettings): void {
    checkPath("paths.configFile", host.paths.configFile);
    checkPath("paths.dataDir", host.paths.dataDir);
    checkPath("paths.myidFile", host.paths.myidFile);
    if (host.paths.dataLogDir !== undefined) checkPath("paths.dataLogDir", host.paths.dataLogDir);
    checkPort("clientPort", host.clientPort);
    checkInt("healthTimeoutSeconds", host.healthTimeoutSeconds, 1, 86400);
    for (const k of ["start", "stop", "restart", "status", "disable"] as const) checkText(`service.${k}`, host.service[k]);
}

/**
 * write_seed: the static zoo.cfg loses its membership lines (server.N, dynamicConfigFile, peerType)
 * and points at the seed file, which holds SEED_LINES. ZooKeeper refuses server lines beside a
 * dynamicConfigFile, and without reconfigEnabled=true it would never adopt the committed
 * configuration: that is refused here, before anything changes.
 */
const WRITE_SEED = sh`
check_reconfig_enabled() {
    as_root test -f "$ZOO_CFG" || die "zoo.cfg $ZOO_CFG does not exist (paths.configFile)"
    if ! as_root cat -- "$ZOO_CFG" | awk '{ gsub(/[ \t\r]/, "") } $0 == "reconfigEnabled=true" { found = 1 } END { exit !found }'; then
        die "$ZOO_CFG has no reconfigEnabled=true: membershipChange reconfig needs dynamic reconfig on every server; nothing was changed"
    fi
}

write_seed() {
    as_root cat -- "$ZOO_CFG" >"$WORK/zoo.cfg.current"
    {
        awk '
            /^[ \t]*server\.[0-9]+([ \t=:]|$)/ { next }
            /^[ \t]*dynamicConfigFile[ \t]*=/ { next }
            /^[ \t]*peerType[ \t]*=/ { next }
            { print }
        ' <"$WORK/zoo.cfg.current"
        printf 'dynamicConfigFile=%s\n' "$SEED_FILE"
    } >"$WORK/zoo.cfg.new"
    printf '%s\n' "\${SEED_LINES[@]}" >"$WORK/seed.new"
    replace_file "$SEED_FILE" "$WORK/seed.new" "$ZOO_CFG"
    replace_file "$ZOO_CFG" "$WORK/zoo.cfg.new"
    say "seed membership of myid $MYID ($SEED_FILE):"
    printf '    %s\n' "\${SEED_LINES[@]}"
}`;

/**
 * A target (re)starts from a seed membership: stopped, data moved aside when it must start empty,
 * the seed written, started, then the health gate (a joiner reports Mode: follower or observer once
 * it follows the leader, before it has a vote).
 */
export function renderReconfigStart(a: { host: HostSettings; myid: ServerId; seed: MemberLine[]; wipeData: boolean; spacingSeconds: number; unfence?: { ensemble: string; target: string } }): string {
    const { host, myid, seed, wipeData, spacingSeconds, unfence } = a;
    checkHost(host);
    checkInt("myid", myid, 1, 255);
    checkInt("spacingSeconds", spacingSeconds, 0, 3600);
    if (!seed.some((m) => m.id === myid)) fail(`myid ${myid} is not in its own seed membership`);
    const params: [string, ParamValue][] = [
        ["MYID", myid],
        ["MYID_FILE", host.paths.myidFile],
        ["ZOO_CFG", host.paths.configFile],
        ["SEED_FILE", seedFile(host)],
        ["SEED_LINES", [...seed].sort((x, y) => x.id - y.id).map((m) => dynamicLine(m, host.clientPort))],
        ["WIPE_DATA", wipeData ? "true" : "false"],
        ["DATA_DIR", host.paths.dataDir],
        ["DATA_LOG_DIR", host.paths.dataLogDir ?? host.paths.dataDir],
        ["SPACING_SECONDS", spacingSeconds],
        ["SERVICE_START", host.service.start],
        ["SERVICE_STOP", host.service.stop],
        ["SERVICE_STATUS", host.service.status],
        ["SERVICE_TIMEOUT", Math.max(120, host.healthTimeoutSeconds)],
        ["CLIENT_PORT", host.clientPort],
        ["HEALTH_TIMEOUT", host.healthTimeoutSeconds],
        ...(unfence ? unfenceParams(host, unfence).filter(([k]) => k !== "CLIENT_PORT") : []),
    ];
    const main = sh`
say "start ZooKeeper myid $MYID on $(uname -n) from a seed membership (wipe data: $WIPE_DATA)"
need_root
got="$(as_root cat -- "$MYID_FILE" 2>/dev/null | tr -d '[:space:]')" || true
if [[ "$got" != "$MYID" ]]; then
    printf '%s\n' "$MYID" | as_root tee -- "$MYID_FILE" >/dev/null
    say "wrote $MYID to $MYID_FILE (held \${got:-nothing})"
fi
# Refused before anything stops: without reconfigEnabled the server would never adopt the committed configuration.
check_reconfig_enabled
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$(mktemp -d)"
TEMPS=()
trap cleanup EXIT
stop_and_wait
if [[ "$WIPE_DATA" == true ]]; then
    # An empty target must bring no epoch history of its own: its data is moved aside (kept).
    move_aside "$DATA_DIR/version-2"
    if [[ "$DATA_LOG_DIR" != "$DATA_DIR" ]]; then
        move_aside "$DATA_LOG_DIR/version-2"
    fi
fi
write_seed
service_cmd start "$SERVICE_START" || die "service start failed (exit $?)"
${unfence ? UNFENCE : ""}health_gate
if ((SPACING_SECONDS > 0)); then
    say "waiting $SPACING_SECONDS s before the next step in the chain"
    sleep "$SPACING_SECONDS"
fi
say "done: myid $MYID serves"
`;
    return renderScript({
        title: `start ZooKeeper myid ${myid} from a seed membership${wipeData ? ", data moved aside first" : ""}, then the health gate`,
        params,
        functions: [LOG, ROOT, SERVICE, ZK, STOP, HEALTH, REPLACE_FILE, MOVE_ASIDE, WRITE_SEED, ...(unfence ? UNFENCE_FUNCTIONS : [])],
        main,
    });
}

/**
 * zk_cli and the committed configuration. The credentials (AUTH; empty: no addauth, for servers with
 * skipACL=yes or an open /zookeeper/config ACL) reach zkCli on its stdin only, never its arguments,
 * and every line zkCli prints passes a filter that drops them.
 */
const CLI = sh`
# zk_cli LINE...: runs the lines in one zkCli session on 127.0.0.1:CLIENT_PORT (after addauth).
zk_cli() {
    local out rc=0
    out="$({
        if [[ -n "$AUTH" ]]; then printf 'addauth digest %s\n' "$AUTH"; fi
        printf '%s\n' "$@" quit
    } | timeout -k 5 "$CLI_TIMEOUT" bash -c "$ZK_CLI -server 127.0.0.1:$CLIENT_PORT" 2>&1)" || rc=$?
    if [[ -n "$AUTH" ]]; then
        out="\${out//"$AUTH"/(credentials)}"
    fi
    printf '%s\n' "$out"
    if ((rc == 124 || rc == 137)); then
        die "zkCli ($ZK_CLI) did not finish within $CLI_TIMEOUT s"
    fi
    return "$rc"
}

# committed_config: the server lines and version of /zookeeper/config (zkCli's config command).
committed_config() {
    local out
    out="$(zk_cli config)" || die "zkCli ($ZK_CLI) failed: $(tail -n 5 <<<"$out" | tr '\n' ' ')"
    CONFIG="$(grep -E '^(server\.[0-9]+=|version=)' <<<"$out" || true)"
    if ! grep -q '^server\.' <<<"$CONFIG"; then
        printf 'zkmigrate: zkCli printed no configuration:\n' >&2
        printf '%s\n' "$out" | grep -v -i 'auth' | tail -n 20 | sed 's/^/    /' >&2
        die "could not read /zookeeper/config through 127.0.0.1:$CLIENT_PORT"
    fi
}

# has_line SPEC: whether CONFIG holds exactly SPEC (addresses as ZooKeeper prints them may differ:
# compared on the id, ports and role).
indented() {
    local l
    while IFS= read -r l; do
        printf '    %s\n' "$l"
    done <<<"$1"
}

line_of() { grep -E "^server\.$1=" <<<"$CONFIG" || true; }

# role_ports LINE: "peer:election:role" of a server line (ZooKeeper may print the address and the
# client address differently from how they were given; the role defaults to participant).
role_ports() {
    local re='^server\.[0-9]+=.*:([0-9]+):([0-9]+):?([a-z]*);'
    if [[ "$1" =~ $re ]]; then
        printf '%s:%s:%s' "\${BASH_REMATCH[1]}" "\${BASH_REMATCH[2]}" "\${BASH_REMATCH[3]:-participant}"
    fi
}

# id_of LINE: N of server.N=...
id_of() {
    local id="\${1%%=*}"
    printf '%s' "\${id#server.}"
}

# same_member LINE: whether CONFIG holds the server of LINE with its ports and role.
same_member() {
    local got
    got="$(line_of "$(id_of "$1")")"
    [[ -n "$got" ]] || return 1
    [[ "$(role_ports "$1")" == "$(role_ports "$got")" ]]
}`;

/**
 * One reconfig through the host's own server: members to add (`server.N=...` lines) and ids to
 * remove. Reads the committed configuration first and asks only for what is missing (a re-run after
 * a failure converges), then reads it again: the step fails unless every added member is there
 * with its role and every removed one is gone.
 */
export function renderReconfigChange(a: { host: HostSettings; cli: string; add: MemberLine[]; remove: ServerId[]; auth: boolean; spacingSeconds?: number }): string {
    const { host, cli, add, remove } = a;
    checkHost(host);
    checkText("zookeeper.cli", cli);
    if (add.length === 0 && remove.length === 0) fail("a reconfig step needs servers to add or remove");
    for (const id of remove) checkInt("removed server id", id, 1, 255);
    const spacing = a.spacingSeconds ?? 0;
    checkInt("spacingSeconds", spacing, 0, 3600);
    const params: [string, ParamValue][] = [
        ["ZK_CLI", cli],
        // The credentials: a placeholder here, replaced by the secret where the command is declared.
        ["RECONFIG_AUTH", a.auth ? AUTH_PLACEHOLDER : ""],
        ["CLI_TIMEOUT", Math.max(60, host.healthTimeoutSeconds)],
        ["CLIENT_PORT", host.clientPort],
        ["ADD_LINES", [...add].sort((x, y) => x.id - y.id).map((m) => dynamicLine(m, host.clientPort))],
        ["REMOVE_IDS", remove.map(String)],
        ["SPACING_SECONDS", spacing],
    ];
    const what = [...(add.length > 0 ? [`add ${add.map((m) => `${m.id}${m.observer ? " (observer)" : ""}`).join(", ")}`] : []), ...(remove.length > 0 ? [`remove ${remove.join(", ")}`] : [])].join(", ");
    const main = sh`
say "reconfig through 127.0.0.1:$CLIENT_PORT on $(uname -n): ${what}"
AUTH="$RECONFIG_AUTH"
committed_config
say "committed configuration:"
indented "$CONFIG"
adds=()
for l in \${ADD_LINES[@]+"\${ADD_LINES[@]}"}; do
    if same_member "$l"; then
        say "\${l%%=*} is a member already: $(line_of "$(id_of "$l")")"
    else
        adds+=("$l")
    fi
done
removes=()
for id in \${REMOVE_IDS[@]+"\${REMOVE_IDS[@]}"}; do
    if [[ -n "$(line_of "$id")" ]]; then
        removes+=("$id")
    else
        say "server.$id is no member already"
    fi
done
if ((\${#adds[@]} == 0 && \${#removes[@]} == 0)); then
    say "nothing to change: the committed configuration is the one this step makes (a re-run)"
else
    args=""
    if ((\${#adds[@]} > 0)); then args="-add $(IFS=,; printf '%s' "\${adds[*]}")"; fi
    if ((\${#removes[@]} > 0)); then args="$args -remove $(IFS=,; printf '%s' "\${removes[*]}")"; fi
    say "reconfig $args"
    # zkCli's exit status differs between releases (3.6+ exit 1 on a failed command, 3.5 goes on):
    # what counts is the configuration read back below.
    rc=0
    out="$(zk_cli "reconfig $args")" || rc=$?
    if ((rc != 0)) || grep -qi 'KeeperErrorCode\|Exception\|permission' <<<"$out"; then
        warn "zkCli exited $rc; what it said:"
        grep -i 'KeeperErrorCode\|Exception\|permission\|rror' <<<"$out" | grep -v '^\s*at ' | head -n 5 | sed 's/^/    /' >&2 || true
    fi
    committed_config
fi
bad=""
for l in \${ADD_LINES[@]+"\${ADD_LINES[@]}"}; do
    same_member "$l" || bad="$bad \${l%%=*} missing;"
done
for id in \${REMOVE_IDS[@]+"\${REMOVE_IDS[@]}"}; do
    [[ -z "$(line_of "$id")" ]] || bad="$bad server.$id still a member;"
done
if [[ -n "$bad" ]]; then
    printf 'zkmigrate: committed configuration now:\n' >&2
    indented "$CONFIG" >&2
    die "the reconfig did not take:$bad (is reconfigEnabled=true, and may these credentials write /zookeeper/config: a super digest, skipACL=yes or an ACL?)"
fi
say "committed configuration:"
indented "$CONFIG"
if ((SPACING_SECONDS > 0)); then
    sleep "$SPACING_SECONDS"
fi
say "done: ${what}"
`;
    return renderScript({
        title: `reconfig: ${what} (zkCli through the local server, idempotent)`,
        params,
        functions: [LOG, CLI],
        main,
    });
}
