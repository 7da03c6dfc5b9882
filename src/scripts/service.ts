// renderRestart / renderStop / renderHealthGate: the service side of a host server.
import type { HostSettings, Membership, ServerId } from "../types";
import { checkHostPaths, serverLines, WRITE_FUNCTIONS, writeParams } from "./config";
import { UNFENCE, UNFENCE_FUNCTIONS, unfenceParams } from "./fence";
import { HEALTH, LOG, ROOT, SERVICE, STOP, ZK } from "./lib";
import { checkInt, checkPort, checkText, type ParamValue, renderScript, sh } from "./shell";

function checkHost(host: HostSettings): void {
    checkHostPaths(host);
    checkPort("clientPort", host.clientPort);
    checkInt("healthTimeoutSeconds", host.healthTimeoutSeconds, 1, 86400);
    for (const k of ["start", "stop", "restart", "status", "disable"] as const) {
        checkText(`service.${k}`, host.service[k]);
    }
}

/** Service commands may block (systemd waits for the unit); never longer than this. */
export function serviceTimeout(host: HostSettings): number {
    return Math.max(120, host.healthTimeoutSeconds);
}

/** The parameters the health gate reads. */
function gateParams(host: HostSettings): [string, ParamValue][] {
    return [
        ["CLIENT_PORT", host.clientPort],
        ["HEALTH_TIMEOUT", host.healthTimeoutSeconds],
        ["SERVICE_STATUS", host.service.status],
    ];
}

/** Waits until the local server serves (srvr reports a Mode); fails with the reason otherwise. */
export function renderHealthGate(a: { host: HostSettings }): string {
    checkHost(a.host);
    return renderScript({
        title: "health gate: the local ZooKeeper serves (srvr reports a Mode)",
        params: gateParams(a.host),
        functions: [LOG, ROOT, ZK, HEALTH],
        main: sh`
say "health gate on $(uname -n)"
health_gate
`,
    });
}

/** Refuses to start a server whose myid file does not hold its id. Reads MYID, MYID_FILE. */
const CHECK_MYID = sh`
check_myid() {
    local got
    as_root test -f "$MYID_FILE" || die "myid file $MYID_FILE does not exist, expected $MYID: refusing to start"
    got="$(as_root cat -- "$MYID_FILE" | tr -d '[:space:]')"
    if [[ "$got" != "$MYID" ]]; then
        die "myid file $MYID_FILE holds \${got:-nothing}, expected $MYID: refusing to start"
    fi
    say "myid file $MYID_FILE holds $MYID"
}`;

/**
 * The membership the config files hold now, normalized the way renderWriteConfig writes it
 * (ZooKeeper's own dynamic files add `:participant;clientPort`). Reads ZOO_CFG, DYNAMIC_CFG,
 * EXPECTED_MEMBERSHIP.
 */
const CHECK_MEMBERSHIP = sh`
current_membership() {
    local servers_from="$ZOO_CFG"
    if [[ -n "$DYNAMIC_CFG" ]]; then
        servers_from="$DYNAMIC_CFG"
    fi
    as_root test -f "$servers_from" || die "$servers_from does not exist: the config step did not run"
    as_root cat -- "$servers_from" | awk '
        /^[ \t]*server\.[0-9]+[ \t]*=/ {
            line = $0
            gsub(/[ \t\r]/, "", line)
            sub(/;.*$/, "", line)
            sub(/:participant$/, "", line)
            print line
        }' | sort -t . -k 2,2n
    as_root cat -- "$ZOO_CFG" | awk '
        /^[ \t]*quorumListenOnAllIPs[ \t]*=/ { value = $0; sub(/^[^=]*=[ \t]*/, "", value); sub(/[ \t\r]+$/, "", value) }
        END { print "quorumListenOnAllIPs=" (value == "" ? "false" : value) }'
}

# check_membership: before anything changes, the config must hold what the server runs now (the
# applied record's membership) or, on a re-run after a failure, the one this step writes. Anything
# else was edited by hand since: the plan's model of the ensemble is wrong, so nothing is touched.
check_membership() {
    local current expected before
    current="$(current_membership)"
    expected="$(printf '%s\n' "\${EXPECTED_MEMBERSHIP[@]}")"
    before="$(printf '%s\n' "\${BEFORE_MEMBERSHIP[@]}")"
    if [[ "$current" == "$expected" ]]; then
        say "the config holds the membership this step writes already (a re-run)"
        return 0
    fi
    if [[ "\${#BEFORE_MEMBERSHIP[@]}" -eq 0 || "$current" == "$before" ]]; then
        return 0
    fi
    {
        printf 'zkmigrate: the config holds neither the membership the server runs by the applied record nor the one this step writes: refusing to touch it\n'
        printf 'zkmigrate: recorded:\n'
        printf '    %s\n' "\${BEFORE_MEMBERSHIP[@]}"
        printf 'zkmigrate: this step writes:\n'
        printf '    %s\n' "\${EXPECTED_MEMBERSHIP[@]}"
        printf 'zkmigrate: found in %s%s:\n' "$ZOO_CFG" "\${DYNAMIC_CFG:+ and $DYNAMIC_CFG}"
        printf '%s\n' "$current" | sed 's/^/    /'
    } >&2
    exit 1
}`;

/** Moves data aside (never deletes it). Reads STAMP. */
export const MOVE_ASIDE = sh`
# move_aside DIR: renames DIR to DIR.zkmigrate-STAMP when it exists.
move_aside() {
    local dir="$1" dest="$1.zkmigrate-$STAMP"
    if ! as_root test -e "$dir"; then
        say "$dir does not exist: nothing to move aside"
        return 0
    fi
    as_root test ! -e "$dest" || die "$dest already exists: not moving $dir"
    as_root mv -T -- "$dir" "$dest"
    say "moved $dir aside to $dest"
}`;

export function renderRestart(a: {
    host: HostSettings;
    myid: ServerId;
    mode: "restart" | "start";
    wipeData: boolean;
    spacingSeconds: number;
    /**
     * The membership the server must run with after this restart: written to its config right
     * before the restart (never earlier: a server that crashes and restarts on its own before its
     * step must come back on what it ran), and part of the script text, so that the text (and with
     * it a pulumi diff) changes exactly when the membership does.
     */
    expect?: Membership;
    /** What the server runs now by the applied record: the config must hold it (or `expect`) before anything changes. */
    before?: Membership;
    /** The split fenced this server's client port: lifted once the old server stopped (src/scripts/fence.ts). */
    unfence?: { ensemble: string; target: string };
}): string {
    const { host, myid, mode, wipeData, spacingSeconds, expect, before, unfence } = a;
    checkHost(host);
    checkInt("myid", myid, 1, 255);
    checkInt("spacingSeconds", spacingSeconds, 0, 3600);
    if (mode !== "restart" && mode !== "start") throw new Error(`zkmigrate scripts: mode must be restart or start, got ${String(mode)}`);

    const params: [string, ParamValue][] = [
        ["MYID", myid],
        ["MODE", mode],
        ["WIPE_DATA", wipeData ? "true" : "false"],
        ["SPACING_SECONDS", spacingSeconds],
        ["MYID_FILE", host.paths.myidFile],
        ["DATA_DIR", host.paths.dataDir],
        ["DATA_LOG_DIR", host.paths.dataLogDir ?? host.paths.dataDir],
        ["SERVICE_START", host.service.start],
        ["SERVICE_STOP", host.service.stop],
        ["SERVICE_RESTART", host.service.restart],
        ["SERVICE_TIMEOUT", serviceTimeout(host)],
        ...gateParams(host),
    ];
    const functions = [LOG, ROOT, SERVICE, ZK, STOP, HEALTH, CHECK_MYID, MOVE_ASIDE];
    if (expect) {
        const have = new Set(params.map(([k]) => k));
        params.push(
            ...writeParams(host, myid, expect, before).filter(([k]) => !have.has(k)),
            ["EXPECTED_MEMBERSHIP", [...serverLines(expect), `quorumListenOnAllIPs=${expect.quorumListenOnAllIPs}`]],
            ["BEFORE_MEMBERSHIP", before ? [...serverLines(before), `quorumListenOnAllIPs=${before.quorumListenOnAllIPs}`] : []],
        );
        functions.push(CHECK_MEMBERSHIP, ...WRITE_FUNCTIONS);
    }
    if (unfence) {
        const have = new Set(params.map(([k]) => k));
        params.push(...unfenceParams(host, unfence).filter(([k]) => !have.has(k)));
        functions.push(...UNFENCE_FUNCTIONS);
    }

    const main = sh`
say "$MODE ZooKeeper myid $MYID on $(uname -n) (wipe data: $WIPE_DATA)"
need_root
# Refuse before touching anything: a wrong myid would join the ensemble as another server.
check_myid
${expect ? "check_membership\n" : ""}STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
${expect ? 'WORK="$(mktemp -d)"\nTEMPS=()\ntrap cleanup EXIT\n# The config is written here, right before the restart that reads it.\nwrite_membership\n' : ""}
if [[ "$WIPE_DATA" == true ]]; then
    # An empty target must not bring its own epoch history into the joint ensemble: stop it,
    # move its data aside (kept, never deleted), keep myid, start it empty.
    stop_and_wait
    move_aside "$DATA_DIR/version-2"
    if [[ "$DATA_LOG_DIR" != "$DATA_DIR" ]]; then
        move_aside "$DATA_LOG_DIR/version-2"
    fi
    check_myid
    service_cmd start "$SERVICE_START" || die "service start failed (exit $?)"
elif [[ "$MODE" == start ]]; then
    service_cmd start "$SERVICE_START" || die "service start failed (exit $?)"
else
    service_cmd restart "$SERVICE_RESTART" || die "service restart failed (exit $?)"
fi
${unfence ? UNFENCE : ""}
health_gate

if ((SPACING_SECONDS > 0)); then
    say "waiting $SPACING_SECONDS s before the next restart in the chain"
    sleep "$SPACING_SECONDS"
fi
say "done: myid $MYID serves"
`;
    return renderScript({
        title: `${mode} ZooKeeper myid ${myid}${wipeData ? ", data moved aside first" : ""}, then the health gate`,
        params,
        functions,
        main,
    });
}

export function renderStop(a: { host: HostSettings; disable: boolean }): string {
    const { host, disable } = a;
    checkHost(host);
    const main = sh`
say "stop ZooKeeper on $(uname -n) (disable: $DISABLE)"
need_root
if ! port_open; then
    say "nothing accepts connections on 127.0.0.1:$CLIENT_PORT: ZooKeeper looks stopped already"
fi
stop_and_wait
if [[ "$DISABLE" == true ]]; then
    service_cmd disable "$SERVICE_DISABLE" || die "service disable failed (exit $?)"
    say "disabled: ZooKeeper will not start at boot"
fi
`;
    return renderScript({
        title: disable ? "stop and disable ZooKeeper (decommissioned host)" : "stop ZooKeeper",
        params: [
            ["DISABLE", disable ? "true" : "false"],
            ["SERVICE_STOP", host.service.stop],
            ["SERVICE_DISABLE", host.service.disable],
            ["SERVICE_TIMEOUT", serviceTimeout(host)],
            ["CLIENT_PORT", host.clientPort],
            ["HEALTH_TIMEOUT", host.healthTimeoutSeconds],
        ],
        functions: [LOG, ROOT, SERVICE, ZK, STOP],
        main,
    });
}
