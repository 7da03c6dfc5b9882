// renderWriteConfig: rewrites only the membership of a host's ZooKeeper config (and its myid).
import { BLOCK_BEGIN, BLOCK_END, isObserverIn, serverLine } from "../format/zoo-cfg";
import type { HostSettings, Membership, ServerId } from "../types";
import { LOG, ROOT } from "./lib";
import { checkAddress, checkInt, checkPath, checkPort, fail, type ParamValue, renderScript, sh } from "./shell";

export { BLOCK_BEGIN, BLOCK_END, serverLine };

/** The server lines of a membership, sorted by id, after validating it. */
export function serverLines(membership: Membership): string[] {
    if (membership.members.length === 0) fail("a membership needs at least one server");
    const seen = new Set<ServerId>();
    for (const m of membership.members) {
        checkInt("server id", m.id, 1, 255);
        if (seen.has(m.id)) fail(`server id ${m.id} appears twice in the membership`);
        seen.add(m.id);
        checkAddress(`address of server.${m.id}`, m.address);
        checkPort(`peer port of server.${m.id}`, m.peerPort);
        checkPort(`election port of server.${m.id}`, m.electionPort);
    }
    return [...membership.members].sort((a, b) => a.id - b.id).map(serverLine);
}

export function checkHostPaths(host: HostSettings): void {
    checkPath("paths.configFile", host.paths.configFile);
    checkPath("paths.myidFile", host.paths.myidFile);
    checkPath("paths.dataDir", host.paths.dataDir);
    if (host.paths.dataLogDir !== undefined) checkPath("paths.dataLogDir", host.paths.dataLogDir);
    if (host.paths.dynamicConfigFile !== undefined) checkPath("paths.dynamicConfigFile", host.paths.dynamicConfigFile);
}

/**
 * Atomic, backed-up file replacement. Reads STAMP, WORK; appends to TEMPS (removed on exit).
 * A symlinked target is resolved so that the link survives.
 */
export const REPLACE_FILE = sh`
# replace_file TARGET NEW [REF]: puts the content of the local file NEW at TARGET, unless TARGET
# already holds exactly that. A new TARGET takes mode/owner from REF (or 0644 and the directory's owner).
replace_file() {
    local target="$1" new="$2" ref="\${3:-}" dir base tmp backup current_sum new_sum
    if as_root test -L "$target"; then
        target="$(as_root readlink -f -- "$1")"
        say "$1 is a symlink to $target: writing $target"
    fi
    dir="$(dirname -- "$target")"
    base="$(basename -- "$target")"
    as_root test -d "$dir" || die "directory $dir (for $target) does not exist"
    if as_root test -e "$target"; then
        current_sum="$(as_root cat -- "$target" | sha256sum)"
        new_sum="$(sha256sum <"$new")"
        if [[ "$current_sum" == "$new_sum" ]]; then
            say "$target unchanged"
            return 0
        fi
        backup="$target.zkmigrate-$STAMP.bak"
        as_root cp -p -- "$target" "$backup"
        say "backup of $target: $backup"
        ref="$target"
    fi
    # Write beside the target and rename over it: readers see the old or the new file, never half.
    tmp="$(as_root mktemp "$dir/.$base.zkmigrate.XXXXXX")"
    TEMPS+=("$tmp")
    as_root cp -- "$new" "$tmp"
    if [[ -n "$ref" ]]; then
        as_root chmod --reference="$ref" -- "$tmp"
        as_root chown --reference="$ref" -- "$tmp"
    else
        as_root chmod 0644 -- "$tmp"
        as_root chown --reference="$dir" -- "$tmp"
    fi
    as_root mv -f -- "$tmp" "$target"
    TEMPS=()
    say "wrote $target"
}

cleanup() {
    local f
    for f in \${TEMPS[@]+"\${TEMPS[@]}"}; do
        as_root rm -f -- "$f" || true
    done
    rm -rf -- "$WORK"
}`;

/** Drops every membership line (and our block markers) from a zoo.cfg on stdin; keeps the rest in order. */
const STRIP_MEMBERSHIP = sh`
strip_membership() {
    awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" '
        /^[ \t]*server\.[0-9]+([ \t=:]|$)/ { next }
        /^[ \t]*quorumListenOnAllIPs([ \t=:]|$)/ { next }
        /^[ \t]*peerType([ \t=:]|$)/ { next }
        $0 == begin || $0 == end { next }
        { print }
    '
}`;

/**
 * Observers: zkmigrate writes the observers its plan declares (the observer join of issue 13:
 * `server.N=...:observer`, and `peerType=observer` on an observer) and no others. An observer it
 * did not plan (`server.N=...:observer` of another id, or `peerType=observer` on a server the
 * plan does not make or keep an observer) would be rewritten as a voter, or dropped, without a
 * word: the write and the preflight refuse instead. Reads ALLOWED_OBSERVERS (the ids the plan
 * declares observers, in the membership a server runs or the one it gets) and PEER_TYPE_OK (yes
 * when this server is one of them).
 */
export const OBSERVERS = sh`
# observer_lines FILE...: prints the observer lines of the files that the plan does not declare
# (comments skipped; a missing file is none).
observer_lines() {
    local f
    for f in "$@"; do
        if [[ -z "$f" ]] || ! as_root test -f "$f"; then
            continue
        fi
        as_root cat -- "$f" | awk -v file="$f" -v allowed=" \${ALLOWED_OBSERVERS[*]-} " -v peer_ok="\${PEER_TYPE_OK:-no}" '
            /^[ \t]*#/ { next }
            /^[ \t]*server\.[0-9]+[ \t]*=/ && (/:[ \t]*observer[ \t\r]*;/ || /:[ \t]*observer[ \t\r]*$/) {
                id = $0
                sub(/^[ \t]*server\./, "", id)
                sub(/[^0-9].*$/, "", id)
                if (index(allowed, " " id " ") > 0) next
                sub(/\r$/, ""); print file ": " $0; next
            }
            /^[ \t]*peerType[ \t]*=[ \t]*observer[ \t\r]*$/ { if (peer_ok == "yes") next; sub(/\r$/, ""); print file ": " $0 }
        '
    done
}`;

/** The refusal of the write when the current config has observers the plan does not declare. */
const OBSERVER_MESSAGE =
    "zkmigrate writes only the observers its plan declares (joinAs: observer): the membership it writes would make these observers voters, or drop them. " +
    "Turn the observers into voters or remove them (and restart) before migrating; nothing was changed";

/** The observer ids a step may find in a server's config: those of the membership it runs and of the one it gets. */
export function allowedObservers(...memberships: (Membership | undefined)[]): ServerId[] {
    const ids = new Set<ServerId>();
    for (const m of memberships) for (const x of m?.members ?? []) if (x.observer) ids.add(x.id);
    return [...ids].sort((a, b) => a - b);
}

/**
 * write_membership: rewrites the membership block of zoo.cfg (or the dynamic file) and the myid
 * file, keeping every other line. Reads ZOO_CFG, DYNAMIC_CFG, MYID_FILE, MYID, SERVER_LINES,
 * PEER_TYPE (observer, or empty for a participant), QUORUM_LISTEN_ON_ALL_IPS, BLOCK_BEGIN,
 * BLOCK_END, STAMP, WORK.
 */
export const WRITE_MEMBERSHIP = sh`
write_membership() {
    as_root test -f "$ZOO_CFG" || die "zoo.cfg $ZOO_CFG does not exist (is ZooKeeper installed on $(uname -n), and paths.configFile right?)"
    as_root cat -- "$ZOO_CFG" >"$WORK/zoo.cfg.current"
    local observers
    observers="$(observer_lines "$ZOO_CFG" "$DYNAMIC_CFG")"
    if [[ -n "$observers" ]]; then
        printf 'zkmigrate: observer found:\n' >&2
        printf '    %s\n' "$observers" >&2
        die "$OBSERVER_MESSAGE"
    fi
    {
        strip_membership <"$WORK/zoo.cfg.current"
        printf '%s\n' "$BLOCK_BEGIN"
        # An observer says so in its own line and, for ZooKeeper 3.4, in peerType too.
        if [[ -n "\${PEER_TYPE:-}" ]]; then
            printf 'peerType=%s\n' "$PEER_TYPE"
        fi
        if [[ -z "$DYNAMIC_CFG" ]]; then
            printf '%s\n' "\${SERVER_LINES[@]}"
        fi
        printf 'quorumListenOnAllIPs=%s\n' "$QUORUM_LISTEN_ON_ALL_IPS"
        printf '%s\n' "$BLOCK_END"
    } >"$WORK/zoo.cfg.new"
    replace_file "$ZOO_CFG" "$WORK/zoo.cfg.new"

    if [[ -n "$DYNAMIC_CFG" ]]; then
        # The dynamic file holds only the membership: rewritten whole.
        printf '%s\n' "\${SERVER_LINES[@]}" >"$WORK/dynamic.new"
        replace_file "$DYNAMIC_CFG" "$WORK/dynamic.new" "$ZOO_CFG"
        if ! awk -v want="dynamicConfigFile=$DYNAMIC_CFG" '{ gsub(/[ \t\r]/, "") } $0 == want { found = 1 } END { exit !found }' "$WORK/zoo.cfg.new"; then
            warn "$ZOO_CFG has no line dynamicConfigFile=$DYNAMIC_CFG: ZooKeeper will not read the membership written there"
        fi
    fi

    # myid: compared without whitespace (a missing trailing newline is no reason to rewrite it).
    local current_myid=""
    if as_root test -f "$MYID_FILE"; then
        current_myid="$(as_root cat -- "$MYID_FILE" | tr -d '[:space:]')"
    fi
    if [[ "$current_myid" == "$MYID" ]]; then
        say "$MYID_FILE unchanged (holds $MYID)"
    else
        printf '%s\n' "$MYID" >"$WORK/myid.new"
        replace_file "$MYID_FILE" "$WORK/myid.new"
    fi

    say "membership of myid $MYID:"
    printf '    %s\n' "\${SERVER_LINES[@]}" \${PEER_TYPE:+"peerType=\${PEER_TYPE}"} "quorumListenOnAllIPs=$QUORUM_LISTEN_ON_ALL_IPS"
}`;

/** The parameters write_membership reads (besides STAMP and WORK, which the script sets). */
export function writeParams(host: HostSettings, myid: ServerId, membership: Membership, before?: Membership): [string, ParamValue][] {
    checkHostPaths(host);
    checkInt("myid", myid, 1, 255);
    const lines = serverLines(membership);
    if (!membership.members.some((m) => m.id === myid)) fail(`myid ${myid} is not a member of the membership it is written with`);
    return [
        ["ZOO_CFG", host.paths.configFile],
        ["DYNAMIC_CFG", host.paths.dynamicConfigFile ?? ""],
        ["MYID_FILE", host.paths.myidFile],
        ["MYID", myid],
        ["SERVER_LINES", lines],
        ["QUORUM_LISTEN_ON_ALL_IPS", membership.quorumListenOnAllIPs ? "true" : "false"],
        ["BLOCK_BEGIN", BLOCK_BEGIN],
        ["BLOCK_END", BLOCK_END],
        ["OBSERVER_MESSAGE", OBSERVER_MESSAGE],
        ...observerParams(myid, membership, before),
    ];
}

/**
 * The parameters of the observers a step may write or find (none for a voter-only plan: its
 * scripts stay as they were). Read by write_membership, observer_lines and the preflight.
 */
export function observerParams(myid: ServerId | undefined, ...memberships: (Membership | undefined)[]): [string, ParamValue][] {
    const allowed = allowedObservers(...memberships);
    if (allowed.length === 0) return [];
    const [written] = memberships;
    const observer = myid !== undefined && allowed.includes(myid);
    return [
        ...(written && myid !== undefined && isObserverIn(written, myid) ? ([["PEER_TYPE", "observer"]] as [string, ParamValue][]) : []),
        ["ALLOWED_OBSERVERS", allowed.map(String)],
        ["PEER_TYPE_OK", observer ? "yes" : "no"],
    ];
}

/** The functions write_membership needs. */
export const WRITE_FUNCTIONS = [REPLACE_FILE, STRIP_MEMBERSHIP, OBSERVERS, WRITE_MEMBERSHIP];

/** Writes the membership alone (no restart): the tools' and tests' entry; plans write it in the restart step. */
export function renderWriteConfig(a: { host: HostSettings; myid: ServerId; membership: Membership }): string {
    const params = writeParams(a.host, a.myid, a.membership);
    const main = sh`
say "write the membership of myid $MYID on $(uname -n)"
need_root
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$(mktemp -d)"
TEMPS=()
trap cleanup EXIT
write_membership
`;
    return renderScript({
        title: `write the membership of myid ${a.myid} (other settings kept)`,
        params,
        functions: [LOG, ROOT, ...WRITE_FUNCTIONS],
        main,
    });
}
