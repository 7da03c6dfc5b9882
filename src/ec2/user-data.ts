// The user data of an ephemeral ensemble's instance: a bash script that cloud-init runs once, as
// root, at first boot. It installs a JRE, ZooKeeper, the server's zoo.cfg and myid, a launcher
// and a systemd unit, starts the server and waits until it serves. Each instance gets its own
// (its myid is in it); all of them carry the whole membership by fixed private address.
//
// Variables the script reads from its environment (cloud-init sets none of them, so on EC2 the
// defaults apply; they exist to run the same script on a machine that is not a fresh instance):
//   ZKMIGRATE_ZK_DIST=<dir>      take the release's jars from <dir> (or <dir>/lib) instead of
//                                downloading the tarball, e.g. jars fetched from Maven Central
//   ZKMIGRATE_JAVA=<path>        use this java and install no packages
//   ZKMIGRATE_SERVICE_MANAGER=none
//                                no systemd: create no user, run no systemctl; the unit file is
//                                still written, and the script starts the launcher itself in the
//                                background (setsid; pid in <dataDir>/zookeeper_server.pid,
//                                output in <logDir>/zookeeper.out)
import { gzipSync } from "node:zlib";
import { LOG, ZK } from "../scripts/lib";
import { renderScript, sh } from "../scripts/shell";
import type { ServerId } from "../types";
import { renderZooCfg, type Ec2Ensemble } from "./ensemble";

/** EC2 takes at most 16 KiB of user data (raw, before base64). */
export const USER_DATA_LIMIT = 16 * 1024;

/** Packages per package manager: a headless JRE (and what the download needs). */
export const JRE_PACKAGES = {
    apt: ["default-jre-headless", "curl", "ca-certificates"],
    dnf: ["java-17-amazon-corretto-headless", "tar", "gzip"],
};

/** The server's main class (what zkServer.sh runs). */
export const MAIN_CLASS_NAME = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/** The account the service runs as (systemd mode). */
export const SERVICE_USER = "zookeeper";

/** The launcher the unit runs: `<installDir>/bin/zookeeper-server`. */
export function launcherPath(e: Ec2Ensemble): string {
    return `${e.paths.installDir}/bin/zookeeper-server`;
}

/** The systemd unit (Type=simple: the launcher execs java in the foreground). */
export function renderUnit(e: Ec2Ensemble, id: ServerId): string {
    return [
        "[Unit]",
        `Description=Apache ZooKeeper ${e.version} (myid ${id} of the zkmigrate ephemeral ensemble ${e.name})`,
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        `User=${SERVICE_USER}`,
        `Group=${SERVICE_USER}`,
        `ExecStart=${launcherPath(e)}`,
        // 143: the JVM's exit status after SIGTERM, which is how systemd stops it.
        "SuccessExitStatus=143",
        "Restart=on-failure",
        "RestartSec=5",
        "LimitNOFILE=65536",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/** JVM options of the launcher. */
export function jvmOptions(e: Ec2Ensemble): string[] {
    return [`-Xms${e.heapMb}m`, `-Xmx${e.heapMb}m`, "-Djava.net.preferIPv4Stack=true", `-Dzookeeper.log.dir=${e.paths.logDir}`];
}

const FUNCTIONS = sh`
# install_jre: a headless JRE through the image's package manager (apt on Debian, dnf on Amazon
# Linux); cloud-init may still hold the package lock at first boot, hence the retries.
install_jre() {
    local i
    if command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        for ((i = 1; i <= 3; i++)); do
            if timeout 900 apt-get -q -o DPkg::Lock::Timeout=300 update &&
                timeout 1800 apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends "\${APT_PACKAGES[@]}"; then
                return 0
            fi
            warn "apt-get failed (attempt $i of 3)"
            sleep 10
        done
        die "could not install \${APT_PACKAGES[*]} with apt-get"
    elif command -v dnf >/dev/null 2>&1; then
        for ((i = 1; i <= 3; i++)); do
            if timeout 1800 dnf -y -q install "\${DNF_PACKAGES[@]}"; then
                return 0
            fi
            warn "dnf failed (attempt $i of 3)"
            sleep 10
        done
        die "could not install \${DNF_PACKAGES[*]} with dnf"
    fi
    die "neither apt-get nor dnf on $(uname -n): use an image of the documented families (amazon-linux-2023, debian-12), or set ZKMIGRATE_JAVA"
}

# expected_sha512: the tarball's SHA-512, given or from the .sha512 file published beside it
# (either "<hex>  <file>" or gpg's "<file>: <hex in groups>").
expected_sha512() {
    local text
    if [[ -n "$SHA512" ]]; then
        printf '%s\n' "$SHA512"
        return 0
    fi
    text="$(curl -fsSL --retry 5 --retry-delay 5 --connect-timeout 20 --max-time 120 "$DOWNLOAD_URL.sha512")" ||
        die "could not fetch $DOWNLOAD_URL.sha512"
    text="\${text//"$TARBALL"/}"
    text="$(tr -d ' \t\r\n:*' <<<"$text" | tr '[:upper:]' '[:lower:]')"
    [[ "$text" =~ ^[0-9a-f]{128}$ ]] || die "$DOWNLOAD_URL.sha512 holds no SHA-512: $(head -c 200 <<<"$text")"
    printf '%s\n' "$text"
}

# stage_release DIR: the release's lib/ and conf/ into DIR, from ZKMIGRATE_ZK_DIST or the tarball.
stage_release() {
    local stage="$1" src want got
    mkdir -p -- "$stage/lib" "$stage/conf" "$stage/bin"
    if [[ -n "$ZK_DIST" ]]; then
        [[ -d "$ZK_DIST" ]] || die "ZKMIGRATE_ZK_DIST=$ZK_DIST is not a directory"
        src="$ZK_DIST"
        [[ -d "$ZK_DIST/lib" ]] && src="$ZK_DIST/lib"
        [[ -f "$src/zookeeper-$VERSION.jar" ]] ||
            die "ZKMIGRATE_ZK_DIST=$ZK_DIST holds no zookeeper-$VERSION.jar (in it or in lib/): $(find "$src" -maxdepth 1 -name 'zookeeper-*.jar' -printf '%f ' 2>/dev/null)"
        cp -L -- "$src"/*.jar "$stage/lib/"
        if [[ -d "$ZK_DIST/conf" ]]; then
            cp -L -R -- "$ZK_DIST/conf/." "$stage/conf/"
        fi
        say "ZooKeeper $VERSION from ZKMIGRATE_ZK_DIST=$ZK_DIST ($(find "$stage/lib" -name '*.jar' | wc -l) jars), not downloaded"
        return 0
    fi
    command -v curl >/dev/null 2>&1 || die "curl not found: it downloads $DOWNLOAD_URL"
    say "downloading $DOWNLOAD_URL"
    curl -fsSL --retry 5 --retry-delay 5 --connect-timeout 20 --max-time 900 -o "$WORK/$TARBALL" "$DOWNLOAD_URL" ||
        die "download of $DOWNLOAD_URL failed"
    want="$(expected_sha512)"
    got="$(sha512sum "$WORK/$TARBALL" | awk '{ print $1 }')"
    [[ "$got" == "$want" ]] || die "$TARBALL: SHA-512 $got does not match the expected $want"
    say "$TARBALL: SHA-512 verified"
    tar -xzf "$WORK/$TARBALL" -C "$WORK"
    [[ -f "$WORK/apache-zookeeper-$VERSION-bin/lib/zookeeper-$VERSION.jar" ]] ||
        die "$TARBALL has no apache-zookeeper-$VERSION-bin/lib/zookeeper-$VERSION.jar"
    cp -R -- "$WORK/apache-zookeeper-$VERSION-bin/lib/." "$stage/lib/"
    cp -R -- "$WORK/apache-zookeeper-$VERSION-bin/conf/." "$stage/conf/"
}

# install_release: INSTALL_DIR with lib/ conf/ bin/ of VERSION (kept when already there).
install_release() {
    local stage
    if [[ -f "$INSTALL_DIR/lib/zookeeper-$VERSION.jar" ]]; then
        say "ZooKeeper $VERSION is installed in $INSTALL_DIR"
        return 0
    fi
    mkdir -p -- "$(dirname -- "$INSTALL_DIR")"
    # Staged beside INSTALL_DIR and renamed: never half a release in place.
    stage="$(mktemp -d "$INSTALL_DIR.new.XXXXXX")"
    STAGE="$stage"
    stage_release "$stage"
    rm -rf -- "$INSTALL_DIR.old"
    if [[ -e "$INSTALL_DIR" ]]; then
        mv -- "$INSTALL_DIR" "$INSTALL_DIR.old"
    fi
    chmod 0755 -- "$stage"
    mv -- "$stage" "$INSTALL_DIR"
    STAGE=""
    rm -rf -- "$INSTALL_DIR.old"
    say "installed ZooKeeper $VERSION in $INSTALL_DIR"
}

# put_file TARGET MODE CONTENT [keep]: writes TARGET atomically unless it holds CONTENT already;
# with "keep", an existing TARGET is left alone (zkmigrate may have rewritten it since).
put_file() {
    local target="$1" mode="$2" content="$3" keep="\${4:-}" tmp
    if [[ -e "$target" && "$keep" == keep ]]; then
        say "$target exists: kept"
        return 0
    fi
    if [[ -f "$target" ]] && [[ "$(cat -- "$target")" == "$content" ]]; then
        say "$target unchanged"
        return 0
    fi
    mkdir -p -- "$(dirname -- "$target")"
    tmp="$(mktemp "$target.XXXXXX")"
    printf '%s\n' "$content" >"$tmp"
    chmod "$mode" -- "$tmp"
    mv -f -- "$tmp" "$target"
    say "wrote $target"
}

# launcher_text JAVA: the script the unit runs; it execs java in the foreground.
launcher_text() {
    printf '#!/usr/bin/env bash\n'
    printf '# ZooKeeper %s, myid %s of the zkmigrate ephemeral ensemble %s (written by its user data).\n' "$VERSION" "$MYID" "$ENSEMBLE"
    printf 'exec %q' "$1"
    printf ' %q' "\${JVM_OPTS[@]}" -cp "$INSTALL_DIR/conf:$INSTALL_DIR/lib/*" "$MAIN_CLASS" "$ZOO_CFG"
    printf '\n'
}

# server_pid: the pid of the server this script started without systemd, when it runs.
server_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(<"$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# start_without_systemd: the launcher in its own session, in the background.
start_without_systemd() {
    local pid
    if pid="$(server_pid)"; then
        say "ZooKeeper already runs (pid $pid, $PID_FILE)"
        return 0
    fi
    setsid "$LAUNCHER" >>"$LOG_DIR/zookeeper.out" 2>&1 </dev/null &
    printf '%s\n' "$!" >"$PID_FILE"
    say "started $LAUNCHER without systemd (pid $!, output in $LOG_DIR/zookeeper.out)"
}

# service_state: what the service manager knows, for a failure message.
service_state() {
    if [[ "$MANAGER" == systemd ]]; then
        systemctl status "$SERVICE_NAME" --no-pager 2>&1 | head -n 20 || true
        journalctl -u "$SERVICE_NAME" -n 30 --no-pager 2>&1 || true
    else
        if server_pid >/dev/null; then echo "pid $(<"$PID_FILE") runs"; else echo "the server does not run"; fi
        tail -n 30 -- "$LOG_DIR/zookeeper.out" 2>/dev/null || true
    fi
}

# server_alive: false once a server started without a service manager has exited (no use waiting).
server_alive() {
    [[ "$MANAGER" != none ]] || server_pid
}

# wait_serving: until srvr on 127.0.0.1 answers with a Mode (the server has joined a quorum and
# synced), at most READY_TIMEOUT s; the peers boot at their own pace.
wait_serving() {
    say "waiting up to $READY_TIMEOUT s for srvr on 127.0.0.1:$CLIENT_PORT to report a Mode"
    if await_mode "$READY_TIMEOUT" 1 server_alive; then
        say "serving: myid $MYID of $ENSEMBLE, ZooKeeper $VERSION, Mode: $SRVR_MODE"
        return 0
    fi
    {
        printf 'zkmigrate: myid %s did not serve within %s s: %s\n' "$MYID" "$READY_TIMEOUT" "$(explain_answer srvr "$SRVR_RC" "$SRVR_ANSWER")"
        service_state | sed 's/^/    /'
    } >&2
    exit 1
}

cleanup() {
    if [[ -n "$STAGE" ]]; then rm -rf -- "$STAGE"; fi
    rm -rf -- "$WORK"
}`;

const MAIN = sh`
MANAGER="\${ZKMIGRATE_SERVICE_MANAGER:-systemd}"
ZK_DIST="\${ZKMIGRATE_ZK_DIST:-}"
JAVA="\${ZKMIGRATE_JAVA:-}"
STAGE=""
WORK="$(mktemp -d)"
trap cleanup EXIT
case "$MANAGER" in
systemd | none) ;;
*) die "ZKMIGRATE_SERVICE_MANAGER=$MANAGER: expected systemd (the default) or none" ;;
esac
say "ZooKeeper $VERSION, myid $MYID of the ephemeral ensemble $ENSEMBLE on $(uname -n) (service manager: $MANAGER)"
if [[ "$MANAGER" == systemd && "$(id -u)" != 0 ]]; then
    die "run as root (cloud-init runs user data as root)"
fi

# 1. A JRE.
if [[ -n "$JAVA" ]]; then
    [[ -x "$JAVA" ]] || die "ZKMIGRATE_JAVA=$JAVA is not an executable"
    say "java: $JAVA (ZKMIGRATE_JAVA: no packages installed)"
else
    install_jre
    JAVA="$(command -v java)" || die "java not found after installing a JRE"
fi
"$JAVA" -version 2>&1 | sed -n '1s/^/zkmigrate: java: /p'

# 2. The release: lib/ (its jars) and conf/ (its logging config) in INSTALL_DIR.
install_release

# 3. The account, directories, zoo.cfg and myid (both kept when present: zkmigrate's config step
#    may have rewritten them since), the launcher and the unit.
if [[ "$MANAGER" == systemd ]] && ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir "$DATA_DIR" --shell /bin/false "$SERVICE_USER"
    say "created the system user $SERVICE_USER"
fi
mkdir -p -- "$DATA_DIR" "$LOG_DIR" "$(dirname -- "$ZOO_CFG")" "$(dirname -- "$MYID_FILE")"
put_file "$ZOO_CFG" 0644 "$ZOO_CFG_TEXT" keep
put_file "$MYID_FILE" 0644 "$MYID" keep
put_file "$LAUNCHER" 0755 "$(launcher_text "$JAVA")"
put_file "$UNIT_FILE" 0644 "$UNIT_TEXT"
if [[ "$MANAGER" == systemd ]]; then
    chown -R "$SERVICE_USER:$SERVICE_USER" -- "$DATA_DIR" "$LOG_DIR"
fi

# 4. Start, and wait until it serves.
if [[ "$START" != true ]]; then
    say "not started (args.start is false): start it with zkmigrate, or systemctl start $SERVICE_NAME"
    return 0
fi
if [[ "$MANAGER" == systemd ]]; then
    systemctl daemon-reload
    systemctl enable --now "$SERVICE_NAME"
    say "systemctl enable --now $SERVICE_NAME"
else
    start_without_systemd
fi
wait_serving
`;

/** The user data of the instance of `id` (its myid); userDataArgs puts it on the instance. */
export function renderUserData(e: Ec2Ensemble, id: ServerId): string {
    if (!e.servers.some((s) => s.id === id)) throw new Error(`zkmigrate ec2: myid ${id} is not a server of ${e.name}`);
    const tarball = `apache-zookeeper-${e.version}-bin.tar.gz`;
    const script = renderScript({
        title: `EC2 user data: ZooKeeper ${e.version}, myid ${id} of the ephemeral ensemble ${e.name}`,
        params: [
            ["ENSEMBLE", e.name],
            ["MYID", id],
            ["VERSION", e.version],
            ["ZOO_CFG", e.paths.configFile],
            ["ZOO_CFG_TEXT", renderZooCfg(e).replace(/\n$/, "")],
            ["MYID_FILE", e.paths.myidFile],
            ["DATA_DIR", e.paths.dataDir],
            ["LOG_DIR", e.paths.logDir],
            ["INSTALL_DIR", e.paths.installDir],
            ["LAUNCHER", launcherPath(e)],
            ["PID_FILE", `${e.paths.dataDir}/zookeeper_server.pid`],
            ["UNIT_FILE", e.paths.unitFile],
            ["UNIT_TEXT", renderUnit(e, id).replace(/\n$/, "")],
            ["SERVICE_NAME", e.serviceName],
            ["SERVICE_USER", SERVICE_USER],
            ["JVM_OPTS", jvmOptions(e)],
            ["MAIN_CLASS", MAIN_CLASS_NAME],
            ["TARBALL", tarball],
            ["DOWNLOAD_URL", `${e.downloadBase}/zookeeper-${e.version}/${tarball}`],
            ["SHA512", e.sha512 ?? ""],
            ["APT_PACKAGES", JRE_PACKAGES.apt],
            ["DNF_PACKAGES", JRE_PACKAGES.dnf],
            ["CLIENT_PORT", e.ports.client],
            ["READY_TIMEOUT", e.readyTimeoutSeconds],
            ["START", e.start ? "true" : "false"],
        ],
        functions: [LOG, ZK, FUNCTIONS],
        main: MAIN,
    });
    return script;
}

/**
 * The instance argument that carries a user data script: as text when it fits EC2's 16 KiB, else
 * gzip-compressed (cloud-init recognises and unpacks gzip) and base64-encoded. Deterministic (gzip
 * without a timestamp), so the same script never shows a diff.
 */
export function userDataArgs(script: string): { userData: string } | { userDataBase64: string } {
    const size = Buffer.byteLength(script, "utf8");
    if (size <= USER_DATA_LIMIT) return { userData: script };
    const gz = gzipSync(Buffer.from(script, "utf8"), { level: 9 });
    if (gz.length > USER_DATA_LIMIT) {
        throw new Error(`zkmigrate ec2: the user data is ${size} bytes, ${gz.length} compressed: over EC2's ${USER_DATA_LIMIT} (fewer settings?)`);
    }
    return { userDataBase64: gz.toString("base64") };
}
