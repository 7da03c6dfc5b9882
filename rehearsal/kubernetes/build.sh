#!/usr/bin/env bash
# Builds the binaries of the local Kubernetes (rehearsal/kubernetes/cluster.ts) from the Go module
# proxy, into a cache outside the repo (no binary or image can be downloaded here):
#
#   <cache>/kubernetes/<version>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,
#                                     kubelet,kube-proxy,kubectl,pause}
#
# from go/go.mod (k8s.io/kubernetes with its staging modules at the matching v0.x.y) and
# go/cmd/pause. <cache> is $ZKMIGRATE_CACHE or ~/.cache/zkmigrate; the Go module and build caches
# are the Pulumi engine's (<cache>/go), so a second build is quick. Does nothing when the stamp (a
# hash of go.mod, go.sum, the pause source and the flags) and the binaries match.
#
#   rehearsal/kubernetes/build.sh [--force]
#
# A cold build costs about 650 CPU-seconds and 2 GB of memory (README: "First run").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${ZKMIGRATE_CACHE:-$HOME/.cache/zkmigrate}"
VERSION=v1.34.4   # k8s.io/kubernetes in go/go.mod
MIN_GO=1.24       # the `go` directive of k8s.io/kubernetes v1.34
ROOT="$CACHE/kubernetes/$VERSION"
BIN="$ROOT/bin"
COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

say() { echo "kubernetes-build: $*"; }
die() { echo "kubernetes-build: error: $*" >&2; exit 1; }

FORCE=0
case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    *) die "unknown argument '$1' (usage: rehearsal/kubernetes/build.sh [--force])" ;;
esac

grep -Eq "^(require)?[[:space:]]*k8s.io/kubernetes $VERSION( //.*)?\$" "$HERE/go/go.mod" ||
    die "go/go.mod does not require k8s.io/kubernetes $VERSION (change VERSION here with it)"

minor="${VERSION#v1.}"
minor="${minor%%.*}"
LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$VERSION -X k8s.io/component-base/version.gitMajor=1"
LDFLAGS+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
LDFLAGS+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"

HASH="$({
    echo "version=$VERSION ldflags=$LDFLAGS commands=${COMMANDS[*]} pause"
    cat "$HERE/go/go.mod" "$HERE/go/go.sum" "$HERE/go/cmd/pause/main.go"
} | sha256sum | cut -d' ' -f1)"
STAMP="$ROOT/stamp"

up_to_date() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]] || return 1
    local c
    for c in "${COMMANDS[@]}" pause; do
        [[ -x "$BIN/$c" ]] || return 1
    done
}

if ((FORCE == 0)) && up_to_date; then
    say "Kubernetes $VERSION binaries are up to date in $BIN"
    exit 0
fi

mkdir -p "$ROOT"
# One build at a time (the tests of several trees may start it together).
exec 9>"$ROOT/.lock"
flock -w 3600 9 || die "another build holds $ROOT/.lock for over an hour"
if ((FORCE == 0)) && up_to_date; then
    say "built meanwhile by another run: up to date in $BIN"
    exit 0
fi

GO="$(command -v go || true)"
[[ -n "$GO" ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; }
[[ -n "$GO" ]] || die "the Go toolchain is required (go >= $MIN_GO, on PATH or in /usr/local/go) to build Kubernetes $VERSION; Debian 12's golang-go (1.19) is too old"
gov="$("$GO" env GOVERSION 2>/dev/null || true)"
gov="${gov#go}"
IFS=. read -r gomaj gomin _ <<<"$gov"
IFS=. read -r minmaj minmin <<<"$MIN_GO"
if ! [[ "$gomaj" =~ ^[0-9]+$ && "${gomin:-}" =~ ^[0-9]+$ ]] || ((gomaj < minmaj || (gomaj == minmaj && gomin < minmin))); then
    die "go $gov at $GO is too old: Kubernetes $VERSION needs go >= $MIN_GO"
fi

export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false -trimpath" GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$GOMODCACHE" "$GOCACHE"
cold="warm"
[[ -n "$(find "$GOCACHE" -mindepth 1 -maxdepth 1 -name '??' -print -quit 2>/dev/null)" ]] || cold="cold (empty Go build cache)"

STAGE="$(mktemp -d "$ROOT/stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
pkgs=()
for c in "${COMMANDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done

say "downloading modules (about 100 MB the first time) into $GOMODCACHE"
(cd "$HERE/go" && timeout 1200 "$GO" mod download) || die "go mod download failed (is the Go module proxy reachable?)"

say "building Kubernetes $VERSION (${COMMANDS[*]}) and pause with $GO ($gov), nice -n 10; $cold"
TIMEFORMAT="%R %U %S"
times_file="$STAGE/time"
{ time (cd "$HERE/go" && timeout 7200 nice -n 10 "$GO" build -ldflags "$LDFLAGS" -o "$STAGE/" "${pkgs[@]}" ./cmd/pause); } 2>"$times_file" ||
    { cat "$times_file" >&2; die "go build failed or timed out (see above)"; }
read -r wall user sys < <(tail -n 1 "$times_file")

got="$("$STAGE/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p')"
[[ "$got" == "$VERSION" ]] || die "the built kubectl says '$got', expected $VERSION"

mkdir -p "$BIN"
for c in "${COMMANDS[@]}" pause; do
    mv -f "$STAGE/$c" "$BIN/$c"
done
echo "$HASH" >"$STAMP"
cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')"
record="wall ${wall%.*} s, cpu $cpu s, $cold, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
echo "$record" >"$ROOT/build-time.txt"
[[ "$cold" == warm ]] || echo "$record" >"$ROOT/cold-build-time.txt"
say "built Kubernetes $VERSION into $BIN: $record"
