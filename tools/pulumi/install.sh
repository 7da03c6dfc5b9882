#!/usr/bin/env bash
# Builds the Pulumi engine that zkmigrate runs under, from Go modules, into a cache outside the
# repo (no binary can be downloaded here, but the Go module proxy is reachable):
#
#   <cache>/pulumi/bin/pulumi                          the CLI      (wrapper/: pkg/v3 cmd/pulumi)
#   <cache>/pulumi/bin/pulumi-language-nodejs          the Node.js language host (langhost/), with
#                                                      our RunPlugin (langhost/runplugin/) so that
#                                                      `--policy-pack <dir>` runs Node.js packs
#   <cache>/pulumi/providers/pulumi-resource-command   the `command` provider, installed as the
#                                                      plugin `resource command <@pulumi/command>`
#
# <cache> is $ZKMIGRATE_CACHE, or ~/.cache/zkmigrate. The Go module and build caches live there
# too, so a second build is quick. Does nothing when a matching engine is already installed (on
# PATH or in the cache). Prints the environment to use it offline; `source <cache>/pulumi/env.sh`
# sets it.
#
#   tools/pulumi/install.sh [--force]     --force rebuilds even when the cache is up to date
#
# Versions: package.json pins @pulumi/pulumi 3.270.0 and @pulumi/command 1.2.1, but the Go module
# proxy reachable here refuses (403 "This module version is not available"):
#   - github.com/pulumi/pulumi/pkg/v3 above v3.259.0 (v3.260.0 has a go.mod but no zip);
#   - github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 at every version;
#   - github.com/pulumi/pulumi-command/provider at every version and commit.
# So this builds the CLI at v3.259.0, the newest that is served; the language host from the
# last release that still shipped it inside github.com/pulumi/pulumi/sdk/v3 (v3.68.0, the only
# such version served); and a stand-in `command` provider written here
# (wrapper/cmd/pulumi-resource-command, see its header for what it does and does not do).
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/kubernetes-provider.sh"  # plugin resource kubernetes (own stamp; issue 14)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${ZKMIGRATE_CACHE:-$HOME/.cache/zkmigrate}"
ROOT="$CACHE/pulumi"
BIN="$ROOT/bin"
PROVIDERS="$ROOT/providers"

CLI_VERSION=3.259.0      # github.com/pulumi/pulumi/pkg/v3 (tools/pulumi/wrapper/go.mod)
LANGHOST_VERSION=3.68.0  # github.com/pulumi/pulumi/sdk/v3 (tools/pulumi/langhost/go.mod)
MIN_GO=1.25              # the `go` directive of both modules is 1.25.11

say() { echo "pulumi-install: $*"; }
die() { echo "pulumi-install: error: $*" >&2; exit 1; }

FORCE=0
case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    *) die "unknown argument '$1' (usage: tools/pulumi/install.sh [--force])" ;;
esac

# What package.json asks for.
pkg_version() {
    sed -n "s/^ *\"$1\": *\"\([^\"]*\)\".*/\1/p" "$REPO/package.json" | head -n 1
}
SDK_VERSION="$(pkg_version '@pulumi\/pulumi')"
COMMAND_VERSION="$(pkg_version '@pulumi\/command')"
[[ -n "$SDK_VERSION" && -n "$COMMAND_VERSION" ]] ||
    die "cannot read the @pulumi/pulumi and @pulumi/command versions from $REPO/package.json"

PULUMI_HOME_DIR="${PULUMI_HOME:-$HOME/.pulumi}"
PLUGIN_DIR="$PULUMI_HOME_DIR/plugins/resource-command-v$COMMAND_VERSION"

print_env() {
    local bin="$1"
    cat <<EOF
pulumi-install: to use it (or: source $ROOT/env.sh):
  export PATH="$bin:\$PATH"
  export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
pulumi-install: state in a local file backend, no Pulumi Cloud (a temp dir for tests):
  export PULUMI_BACKEND_URL="file://\$(mktemp -d)"    # or: pulumi login file://<dir>
  export PULUMI_CONFIG_PASSPHRASE=<passphrase>         # passphrase secrets provider
EOF
}

write_env() {
    local bin="$1"
    mkdir -p "$ROOT"
    cat >"$ROOT/env.sh.tmp" <<EOF
# Written by tools/pulumi/install.sh: the environment to run the Pulumi engine offline.
export PATH="$bin:\$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
EOF
    mv "$ROOT/env.sh.tmp" "$ROOT/env.sh"
}

plugin_installed() {
    # $1: the provider binary it must be (empty: any).
    [[ -x "$PLUGIN_DIR/pulumi-resource-command" && ! -e "$PLUGIN_DIR.partial" ]] || return 1
    [[ -z "${1:-}" ]] || cmp -s "$1" "$PLUGIN_DIR/pulumi-resource-command"
}

# 1. A matching engine already on PATH (outside our cache): use it.
if ((FORCE == 0)); then
    onpath="$(PATH="${PATH//$BIN/}" command -v pulumi || true)"
    if [[ -n "$onpath" ]] &&
        [[ "$(timeout 30 "$onpath" version 2>/dev/null || true)" == "v$SDK_VERSION" ]] &&
        PATH="${PATH//$BIN/}" command -v pulumi-language-nodejs >/dev/null && plugin_installed; then
        say "using $onpath (v$SDK_VERSION) and plugin resource command $COMMAND_VERSION: nothing to do"
        print_env "$(dirname "$onpath")"
        exit 0
    fi
fi

# The inputs of the build: when they and the binaries are unchanged, there is nothing to do.
inputs_hash() {
    {
        echo "cli=$CLI_VERSION langhost=$LANGHOST_VERSION command=$COMMAND_VERSION"
        cat "$HERE/wrapper/go.mod" "$HERE/wrapper/go.sum" "$HERE/langhost/go.mod" "$HERE/langhost/go.sum"
        find "$HERE/wrapper/cmd" -type f -name '*.go' -print0 | sort -z | xargs -0 cat
    } | sha256sum | cut -d' ' -f1
}
STAMP="$ROOT/stamp"
HASH="$(inputs_hash)"

up_to_date() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]] &&
        [[ -x "$BIN/pulumi" && -x "$BIN/pulumi-language-nodejs" && -x "$PROVIDERS/pulumi-resource-command" ]] &&
        [[ "$(timeout 30 "$BIN/pulumi" version 2>/dev/null || true)" == "v$CLI_VERSION" ]] &&
        plugin_installed "$PROVIDERS/pulumi-resource-command"
}

# The language host carries our RunPlugin (langhost/runplugin/runplugin.go): v3.68.0 answers
# RunPlugin with "not supported", and CLI v3.259.0 starts a Node.js policy pack through it. Its own
# stamp (its inputs and the binary's hash), so that changing it rebuilds only the language host.
langhost_hash() {
    {
        echo "langhost=$LANGHOST_VERSION"
        cat "$HERE/langhost/go.mod" "$HERE/langhost/go.sum" "$HERE/langhost/runplugin/runplugin.go"
    } | sha256sum | cut -d' ' -f1
}
LANGHOST_STAMP="$ROOT/langhost-stamp"
LANGHOST_HASH="$(langhost_hash)"

langhost_up_to_date() {
    [[ -f "$LANGHOST_STAMP" && -x "$BIN/pulumi-language-nodejs" ]] &&
        [[ "$(cat "$LANGHOST_STAMP")" == "$LANGHOST_HASH $(sha256sum <"$BIN/pulumi-language-nodejs" | cut -d' ' -f1)" ]]
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
    write_env "$BIN"
    print_env "$BIN"
}

if ((FORCE == 0)) && up_to_date && langhost_up_to_date; then
    say "pulumi v$CLI_VERSION, language host v$LANGHOST_VERSION and command $COMMAND_VERSION are up to date in $ROOT"
    finish
    exit 0
fi

mkdir -p "$ROOT"
# One install at a time (others may run the tests in the same tree).
exec 9>"$ROOT/.lock"
flock -w 3600 9 || die "another install holds $ROOT/.lock for over an hour"
if ((FORCE == 0)) && up_to_date && langhost_up_to_date; then
    say "built meanwhile by another install: up to date"
    finish
    exit 0
fi
ONLY_LANGHOST=0
if ((FORCE == 0)) && [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -x "$PROVIDERS/pulumi-resource-command" && -x "$BIN/pulumi" ]]; then
    # Built, but the plugin is missing in this PULUMI_HOME, or the language host is not the one
    # with our RunPlugin.
    plugin_installed "$PROVIDERS/pulumi-resource-command" || install_plugin
    if langhost_up_to_date; then
        finish
        exit 0
    fi
    ONLY_LANGHOST=1
fi

# 2. Go.
GO="$(command -v go || true)"
[[ -n "$GO" ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; }
[[ -n "$GO" ]] ||
    die "the Go toolchain is required (go >= $MIN_GO, on PATH or in /usr/local/go) to build the Pulumi engine from Go modules; Debian 12's golang-go (1.19) is too old: install Go $MIN_GO or newer"
gov="$("$GO" env GOVERSION 2>/dev/null || true)"
gov="${gov#go}"
IFS=. read -r gomaj gomin _ <<<"$gov"
IFS=. read -r minmaj minmin <<<"$MIN_GO"
if ! [[ "$gomaj" =~ ^[0-9]+$ && "${gomin:-}" =~ ^[0-9]+$ ]] || ((gomaj < minmaj || (gomaj == minmaj && gomin < minmin))); then
    die "go $gov at $GO is too old: building the Pulumi engine needs go >= $MIN_GO (Debian 12's golang-go is 1.19)"
fi

export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false -trimpath" GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$GOMODCACHE" "$GOCACHE"
cold="warm"
[[ -n "$(find "$GOCACHE" -mindepth 1 -maxdepth 1 -name '??' -print -quit 2>/dev/null)" ]] || cold="cold (empty Go build cache)"

STAGE="$(mktemp -d "$ROOT/stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
say "building with $GO ($gov) into $ROOT; Go caches in $CACHE/go"
start=$SECONDS

step() { # name seconds dir -- command...   (its stdout: a log in the stage dir; stderr shown)
    local name="$1" limit="$2" dir="$3" t0=$SECONDS
    shift 4
    say "$name ..."
    if ! (cd "$dir" && timeout "$limit" "$@" >>"$STAGE/steps.log"); then
        die "$name failed or timed out after ${limit}s (see above)"
    fi
    say "$name: $((SECONDS - t0)) s"
}

# The language host with our RunPlugin: the package's files from the module cache, with its
# RunPlugin (which answers "not supported") renamed away and langhost/runplugin/runplugin.go added,
# built in a scratch module that is a copy of langhost/go.mod (the same dependency versions).
build_langhost() {
    local pkg="github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
    local src="$STAGE/langhost-src" dir files f
    step "download modules (language host)" 600 "$HERE/langhost" -- "$GO" list -deps "$pkg"
    dir="$(cd "$HERE/langhost" && "$GO" list -f '{{.Dir}}' "$pkg")"
    files="$(cd "$HERE/langhost" && "$GO" list -f '{{join .GoFiles " "}}' "$pkg")"
    mkdir -p "$src/pulumi-language-nodejs"
    cp "$HERE/langhost/go.mod" "$HERE/langhost/go.sum" "$src/"
    for f in $files; do
        cp "$dir/$f" "$src/pulumi-language-nodejs/$f"
    done
    chmod -R u+w "$src"
    local decl='^func (host \*nodeLanguageHost) RunPlugin($'
    [[ "$(grep -c "$decl" "$src/pulumi-language-nodejs/main.go")" == 1 ]] ||
        die "$pkg@v$LANGHOST_VERSION: main.go has no single RunPlugin method to replace (langhost/runplugin/runplugin.go is written for v3.68.0)"
    sed -i 's/^func (host \*nodeLanguageHost) RunPlugin($/func (host *nodeLanguageHost) runPluginNotSupported(/' "$src/pulumi-language-nodejs/main.go"
    cp "$HERE/langhost/runplugin/runplugin.go" "$src/pulumi-language-nodejs/zkmigrate_runplugin.go"
    step "build pulumi-language-nodejs v$LANGHOST_VERSION (with RunPlugin for policy packs)" 1800 "$src" -- "$GO" build \
        -tags zkmigrate_runplugin \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$LANGHOST_VERSION" \
        -o "$STAGE/pulumi-language-nodejs" ./pulumi-language-nodejs
}

finish_langhost() {
    mkdir -p "$BIN"
    mv -f "$STAGE/pulumi-language-nodejs" "$BIN/"
    echo "$LANGHOST_HASH $(sha256sum <"$BIN/pulumi-language-nodejs" | cut -d' ' -f1)" >"$LANGHOST_STAMP"
}

if ((ONLY_LANGHOST == 1)); then
    build_langhost
    finish_langhost
    say "rebuilt pulumi-language-nodejs v$LANGHOST_VERSION with RunPlugin for policy packs: $((SECONDS - start)) s"
    finish
    exit 0
fi

# Fetch the modules the three builds need (and only those) from the Go module proxy.
step "download modules (CLI, provider)" 1200 "$HERE/wrapper" -- "$GO" list -deps \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ./cmd/pulumi-resource-command
step "build pulumi v$CLI_VERSION" 3600 "$HERE/wrapper" -- "$GO" build \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$CLI_VERSION" \
    -o "$STAGE/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
build_langhost
step "build pulumi-resource-command $COMMAND_VERSION (stand-in)" 1800 "$HERE/wrapper" -- "$GO" build \
    -ldflags "-s -w -X main.Version=$COMMAND_VERSION" \
    -o "$STAGE/pulumi-resource-command" ./cmd/pulumi-resource-command
elapsed=$((SECONDS - start))

got="$("$STAGE/pulumi" version)"
[[ "$got" == "v$CLI_VERSION" ]] || die "the built pulumi says '$got', expected v$CLI_VERSION"

mkdir -p "$BIN" "$PROVIDERS"
mv -f "$STAGE/pulumi" "$BIN/"
finish_langhost
mv -f "$STAGE/pulumi-resource-command" "$PROVIDERS/"
install_plugin

# Smoke: the CLI answers against a throwaway local file backend.
smoke="$STAGE/smoke"
mkdir -p "$smoke"
(cd "$smoke" && PULUMI_BACKEND_URL="file://$smoke" PULUMI_SKIP_UPDATE_CHECK=true \
    timeout 60 "$BIN/pulumi" whoami >/dev/null) || die "pulumi whoami against file://$smoke failed"

echo "$HASH" >"$STAMP"
record="$elapsed s, $cold, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
echo "$record" >"$ROOT/build-time.txt"
[[ "$cold" == warm ]] || echo "$record" >"$ROOT/cold-build-time.txt"
say "built pulumi v$CLI_VERSION, pulumi-language-nodejs v$LANGHOST_VERSION, pulumi-resource-command $COMMAND_VERSION (stand-in)"
say "note: package.json has @pulumi/pulumi $SDK_VERSION; the newest CLI the Go module proxy serves is v$CLI_VERSION"
finish
say "build time: ${elapsed} s ($cold)"
