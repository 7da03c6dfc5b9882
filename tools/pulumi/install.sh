#!/usr/bin/env bash
# Builds the Pulumi engine that zkmigrate runs under into a cache outside the repo (no Pulumi
# binary can be downloaded here; the Go module proxy is reachable):
#
#   <cache>/pulumi/bin/pulumi                          the CLI v3.276.0 (wrapper/go.mod: pkg/v3 cmd/pulumi)
#   <cache>/pulumi/bin/pulumi-language-nodejs          the upstream Node.js language host, from
#                                                      <vendor>/pulumi-language-nodejs-1b59498.tar.gz
#   <cache>/pulumi/providers/pulumi-resource-command   the upstream `command` provider 1.2.1, from
#                                                      <vendor>/pulumi-command-v1.2.1.tar.gz, installed
#                                                      as the plugin `resource command 1.2.1`
#
# <cache> is $ZKMIGRATE_CACHE, or ~/.cache/zkmigrate; the Go module and build caches live there
# too. <vendor> is $ZKMIGRATE_VENDOR_DIR, or ../shared/vendor beside the checkout: source
# snapshots of the two upstream modules the Go module proxy refuses (see README.md here). They are
# extracted into <cache>/pulumi/build/ at build time; nothing from them is in git.
#
# Does nothing when a compatible engine is already on PATH, or when the stamp (the versions, the
# wrapper's go.mod/go.sum, the archives' hashes) and the installed binaries match. Prints the
# environment to use it offline; `source <cache>/pulumi/env.sh` sets it.
#
#   tools/pulumi/install.sh [--force]     --force rebuilds even when the cache is up to date
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/kubernetes-provider.sh"  # plugin resource kubernetes (own stamp; issue 14)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${ZKMIGRATE_CACHE:-$HOME/.cache/zkmigrate}"
ROOT="$CACHE/pulumi"
BIN="$ROOT/bin"
PROVIDERS="$ROOT/providers"
VENDOR="${ZKMIGRATE_VENDOR_DIR:-$REPO/../shared/vendor}"

CLI_VERSION=3.276.0        # github.com/pulumi/pulumi/pkg/v3 (wrapper/go.mod)
# An engine on PATH is used when its CLI is in [MIN_CLI, 4.0.0): 3.259.0 is the SDK the language
# host here is built on, and the oldest CLI these tests have run on.
MIN_CLI=3.259.0
MIN_GO=1.26.6              # the `go` directive of pkg/v3 v3.276.0 (the provider and the language host need less)
# The language host: upstream pulumi at 1b5949891b3c (v3.259.0 + 14 commits), built against the
# pkg/v3 and sdk/v3 v3.259.0 modules (against v3.276.0 it does not compile: its monitorProxy lacks
# ExistsResource), with the replace lines of those versions' go.mod files.
LANGHOST_ARCHIVE=pulumi-language-nodejs-1b59498.tar.gz
LANGHOST_SHA256=a6424d1b36eba75bfb465d5d8bbf47693aac6586a7fac58b7ac5ed278b6f30ad
LANGHOST_SDK=3.259.0
LANGHOST_VERSION="$LANGHOST_SDK+1b59498"
LANGHOST_TEXT=v0.39.0      # golang.org/x/text replace of sdk/v3 v3.259.0's go.mod
COMMAND_ARCHIVE_SHA256=fb75e890a529036cbf095567c56b21f71bf4225312f4d31a1e2683d8e64d5731

say() { echo "pulumi-install: $*"; }
die() { echo "pulumi-install: error: $*" >&2; exit 1; }

FORCE=0
case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    *) die "unknown argument '$1' (usage: tools/pulumi/install.sh [--force])" ;;
esac

# What package.json asks for: the provider plugin must be the version of @pulumi/command.
pkg_version() {
    sed -n "s/^ *\"$1\": *\"\([^\"]*\)\".*/\1/p" "$REPO/package.json" | head -n 1
}
COMMAND_VERSION="$(pkg_version '@pulumi\/command')"
[[ -n "$COMMAND_VERSION" ]] || die "cannot read the @pulumi/command version from $REPO/package.json"
COMMAND_ARCHIVE="pulumi-command-v$COMMAND_VERSION.tar.gz"

PULUMI_HOME_DIR="${PULUMI_HOME:-$HOME/.pulumi}"
PLUGIN_DIR="$PULUMI_HOME_DIR/plugins/resource-command-v$COMMAND_VERSION"

print_env() {
    local bin="$1"
    cat <<EOT
pulumi-install: to use it (or: source $ROOT/env.sh):
  export PATH="$bin:\$PATH"
  export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
pulumi-install: state in a local file backend, no Pulumi Cloud (a temp dir for tests):
  export PULUMI_BACKEND_URL="file://\$(mktemp -d)"    # or: pulumi login file://<dir>
  export PULUMI_CONFIG_PASSPHRASE=<passphrase>         # passphrase secrets provider
EOT
}

write_env() {
    local bin="$1"
    mkdir -p "$ROOT"
    # A temp file of this run's own (pid): two set-ups at once (two rehearsals) must not share one.
    local tmp="$ROOT/env.sh.tmp.$$"
    cat >"$tmp" <<EOT
# Written by tools/pulumi/install.sh: the environment to run the Pulumi engine offline.
export PATH="$bin:\$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
EOT
    mv -f "$tmp" "$ROOT/env.sh"
}

plugin_installed() {
    # $1: the provider binary it must be (empty: any).
    [[ -x "$PLUGIN_DIR/pulumi-resource-command" && ! -e "$PLUGIN_DIR.partial" ]] || return 1
    [[ -z "${1:-}" ]] || cmp -s "$1" "$PLUGIN_DIR/pulumi-resource-command"
}

# semver_ge A B: A >= B for x.y.z (a pre-release or build suffix of A is ignored).
semver_ge() {
    local a b
    IFS=. read -r -a a <<<"${1%%[-+]*}"
    IFS=. read -r -a b <<<"$2"
    for i in 0 1 2; do
        [[ "${a[i]:-}" =~ ^[0-9]+$ ]] || return 1
        ((a[i] > b[i])) && return 0
        ((a[i] < b[i])) && return 1
    done
    return 0
}
cli_compatible() { # $1: `pulumi version` output
    local v="${1#v}"
    semver_ge "$v" "$MIN_CLI" && ! semver_ge "$v" 4.0.0
}

# 1. A compatible engine already on PATH (outside our cache): use it.
if ((FORCE == 0)); then
    onpath="$(PATH="${PATH//$BIN/}" command -v pulumi || true)"
    if [[ -n "$onpath" ]]; then
        v="$(timeout 30 "$onpath" version 2>/dev/null || true)"
        if cli_compatible "$v" && [[ -x "$(dirname "$onpath")/pulumi-language-nodejs" ]] &&
            plugin_installed; then
            say "using $onpath ($v, within [$MIN_CLI, 4.0.0)) and plugin resource command $COMMAND_VERSION: nothing to do"
            print_env "$(dirname "$onpath")"
            exit 0
        fi
        say "$onpath ($v) is not used: it needs a CLI in [$MIN_CLI, 4.0.0), pulumi-language-nodejs beside it and the plugin resource command $COMMAND_VERSION in $PULUMI_HOME_DIR/plugins"
    fi
fi

# The inputs of the build: when they and the binaries are unchanged, there is nothing to do.
inputs_hash() {
    {
        echo "cli=$CLI_VERSION langhost=$LANGHOST_VERSION/$LANGHOST_SHA256 text=$LANGHOST_TEXT"
        echo "command=$COMMAND_VERSION/$COMMAND_ARCHIVE_SHA256"
        cat "$HERE/wrapper/go.mod" "$HERE/wrapper/go.sum"
    } | sha256sum | cut -d' ' -f1
}
STAMP="$ROOT/stamp"
HASH="$(inputs_hash)"

up_to_date() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]] &&
        [[ -x "$BIN/pulumi" && -x "$BIN/pulumi-language-nodejs" && -x "$PROVIDERS/pulumi-resource-command" ]] &&
        [[ "$(timeout 30 "$BIN/pulumi" version 2>/dev/null || true)" == "v$CLI_VERSION" ]]
}

install_plugin() {
    say "installing plugin resource command $COMMAND_VERSION into $PULUMI_HOME_DIR/plugins"
    # From a directory with no Pulumi.yaml: the CLI reads the project of its working directory.
    (cd "$ROOT" && PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true \
        timeout 300 "$BIN/pulumi" plugin install resource command "$COMMAND_VERSION" \
        --file "$PROVIDERS/pulumi-resource-command" --reinstall >/dev/null) ||
        die "pulumi plugin install resource command $COMMAND_VERSION failed"
    plugin_installed "$PROVIDERS/pulumi-resource-command" ||
        die "plugin resource command $COMMAND_VERSION is not in $PLUGIN_DIR after its install"
}

finish() {
    plugin_installed "$PROVIDERS/pulumi-resource-command" || install_plugin
    write_env "$BIN"
    print_env "$BIN"
}

if ((FORCE == 0)) && up_to_date; then
    say "pulumi v$CLI_VERSION, language host $LANGHOST_VERSION and command $COMMAND_VERSION are up to date in $ROOT: nothing to do"
    finish
    exit 0
fi

mkdir -p "$ROOT"
# One install at a time (others may run the tests in the same tree).
exec 9>"$ROOT/.lock"
flock -w 3600 9 || die "another install holds $ROOT/.lock for over an hour"
if ((FORCE == 0)) && up_to_date; then
    say "built meanwhile by another install: up to date"
    finish
    exit 0
fi

# 2. The source snapshots the Go module proxy does not serve.
[[ -d "$VENDOR" ]] ||
    die "the vendor directory $VENDOR is missing: it must hold $LANGHOST_ARCHIVE and $COMMAND_ARCHIVE (set ZKMIGRATE_VENDOR_DIR to where they are)"
for pair in "$LANGHOST_ARCHIVE:$LANGHOST_SHA256" "$COMMAND_ARCHIVE:$COMMAND_ARCHIVE_SHA256"; do
    f="$VENDOR/${pair%%:*}"
    [[ -f "$f" ]] || die "$f is missing (the upstream source snapshot to build from; ZKMIGRATE_VENDOR_DIR=$VENDOR)"
    [[ "$(sha256sum <"$f" | cut -d' ' -f1)" == "${pair#*:}" ]] ||
        die "$f is not the expected snapshot (sha256 ${pair#*:})"
done

# 3. Go.
GO="$(command -v go || true)"
[[ -n "$GO" ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; }
[[ -n "$GO" ]] ||
    die "the Go toolchain is required (go >= $MIN_GO, on PATH or in /usr/local/go) to build the Pulumi engine; Debian 12's golang-go (1.19) is too old: install Go $MIN_GO or newer"
gov="$("$GO" env GOVERSION 2>/dev/null || true)"
gov="${gov#go}"
semver_ge "$gov" "$MIN_GO" ||
    die "go $gov at $GO is too old: building the Pulumi CLI v$CLI_VERSION needs go >= $MIN_GO (Debian 12's golang-go is 1.19)"

export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false -trimpath"
mkdir -p "$GOMODCACHE" "$GOCACHE"
cold="warm"
[[ -n "$(find "$GOCACHE" -mindepth 1 -maxdepth 1 -name '??' -print -quit 2>/dev/null)" ]] || cold="cold (empty Go build cache)"

STAGE="$(mktemp -d "$ROOT/stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
BUILD="$ROOT/build"
say "building with $GO ($gov) into $ROOT; Go caches in $CACHE/go; sources from $VENDOR"
start=$SECONDS

# CPU seconds (user+sys) of this shell's finished children so far, into CPU. `times` must run in
# this shell itself (not in a pipe or $(...), whose subshell has children of its own).
cpu_now() {
    times >"$STAGE/times"
    CPU="$(tail -n 1 "$STAGE/times" | tr -d s |
        awk '{ n = 0; for (i = 1; i <= NF; i++) { split($i, p, "m"); n += p[1] * 60 + p[2] } printf "%d", n }')"
}
TIMES=()
step() { # name seconds dir -- command...   (its stdout: a log in the stage dir; stderr shown)
    local name="$1" limit="$2" dir="$3" t0=$SECONDS c0
    shift 4
    cpu_now
    c0=$CPU
    say "$name ..."
    if ! (cd "$dir" && timeout "$limit" "$@" >>"$STAGE/steps.log"); then
        die "$name failed or timed out after ${limit}s (see above)"
    fi
    cpu_now
    local line="$name: $((SECONDS - t0)) s wall, $((CPU - c0)) CPU-s"
    TIMES+=("$line")
    say "$line"
}

# The CLI: cmd/pulumi of pkg/v3 v3.276.0 through wrapper/go.mod (its go.sum in git).
step "build pulumi v$CLI_VERSION" 3600 "$HERE/wrapper" -- "$GO" build \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$CLI_VERSION" \
    -o "$STAGE/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

# The language host: its directory of the snapshot, without tests and test data; the snapshot's
# relative replaces (../../../../pkg, ../../..) become the v3.259.0 modules from the proxy, plus
# sdk/v3 v3.259.0's golang.org/x/text replace (the clipboard fork's is in the snapshot already).
# -mod=mod: the snapshot's go.sum has no lines for those modules (go checks them with sum.golang.org).
src="$BUILD/pulumi-language-nodejs"
rm -rf "$src" && mkdir -p "$src"
tar -xzf "$VENDOR/$LANGHOST_ARCHIVE" -C "$src" --strip-components=5 --wildcards \
    --exclude='*/testdata' --exclude='*_test.go' '*/sdk/nodejs/cmd/pulumi-language-nodejs/*'
[[ -f "$src/go.mod" && -f "$src/main.go" ]] || die "$VENDOR/$LANGHOST_ARCHIVE has no sdk/nodejs/cmd/pulumi-language-nodejs/{go.mod,main.go}"
(cd "$src" && "$GO" mod edit \
    -dropreplace=github.com/pulumi/pulumi/pkg/v3 -dropreplace=github.com/pulumi/pulumi/sdk/v3 \
    -require=github.com/pulumi/pulumi/pkg/v3@v$LANGHOST_SDK -require=github.com/pulumi/pulumi/sdk/v3@v$LANGHOST_SDK \
    -replace=golang.org/x/text=golang.org/x/text@$LANGHOST_TEXT)
step "build pulumi-language-nodejs $LANGHOST_VERSION" 1800 "$src" -- env GOFLAGS="-mod=mod -modcacherw -buildvcs=false -trimpath" \
    "$GO" build -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$LANGHOST_VERSION" \
    -o "$STAGE/pulumi-language-nodejs" .

# The command provider: provider/ of the v1.2.1 snapshot (its go.mod and go.sum as tagged).
src="$BUILD/pulumi-command"
rm -rf "$src" && mkdir -p "$src"
tar -xzf "$VENDOR/$COMMAND_ARCHIVE" -C "$src" --strip-components=2 --wildcards \
    --exclude='*_test.go' "pulumi-command-v$COMMAND_VERSION/provider/*"
[[ -f "$src/go.mod" && -d "$src/cmd/pulumi-resource-command" ]] || die "$VENDOR/$COMMAND_ARCHIVE has no provider/cmd/pulumi-resource-command"
step "build pulumi-resource-command $COMMAND_VERSION" 1800 "$src" -- env GOFLAGS="-mod=mod -modcacherw -buildvcs=false -trimpath" \
    "$GO" build -ldflags "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_VERSION" \
    -o "$STAGE/pulumi-resource-command" ./cmd/pulumi-resource-command
elapsed=$((SECONDS - start))

got="$("$STAGE/pulumi" version)"
[[ "$got" == "v$CLI_VERSION" ]] || die "the built pulumi says '$got', expected v$CLI_VERSION"

mkdir -p "$BIN" "$PROVIDERS"
mv -f "$STAGE/pulumi" "$STAGE/pulumi-language-nodejs" "$BIN/"
mv -f "$STAGE/pulumi-resource-command" "$PROVIDERS/"
install_plugin

# Smoke: the CLI answers against a throwaway local file backend.
smoke="$STAGE/smoke"
mkdir -p "$smoke"
(cd "$smoke" && PULUMI_BACKEND_URL="file://$smoke" PULUMI_SKIP_UPDATE_CHECK=true \
    timeout 60 "$BIN/pulumi" whoami >/dev/null) || die "pulumi whoami against file://$smoke failed"

echo "$HASH" >"$STAMP"
record="$elapsed s wall, $cold, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores; $(IFS=';'; echo "${TIMES[*]}")"
echo "$record" >"$ROOT/build-time.txt"
[[ "$cold" == warm ]] || echo "$record" >"$ROOT/cold-build-time.txt"
say "built pulumi v$CLI_VERSION, pulumi-language-nodejs $LANGHOST_VERSION, pulumi-resource-command $COMMAND_VERSION"
finish
say "build time: $record"
