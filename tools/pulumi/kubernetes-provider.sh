#!/usr/bin/env bash
# Builds the `kubernetes` resource provider of the Pulumi engine (pulumi-resource-kubernetes) from
# the Go module proxy at the release that package.json's @pulumi/kubernetes names, and installs it
# as the plugin `resource kubernetes <version>` (no plugin can be downloaded here):
#
#   <cache>/pulumi/providers/kubernetes-<version>/pulumi-resource-kubernetes
#   $PULUMI_HOME/plugins/resource-kubernetes-v<version>/pulumi-resource-kubernetes
#
# <cache> is $ZKMIGRATE_CACHE or ~/.cache/zkmigrate; the Go caches are the engine's (<cache>/go).
# Does nothing when the stamp (version, module, this script) and the binary match; --force
# rebuilds. Called by tools/pulumi/install.sh.
#
# The proxy serves github.com/pulumi/pulumi-kubernetes/provider/v4 only by commit (the release tags
# are at the repository's root, not provider/): RELEASES maps an npm release to the commit of its
# tag. The module zip lacks the files `go generate` writes for the `go:embed` of the schema and the
# Terraform mapping (schema-embed.json: schema.json with the version set; terraform-mapping-embed
# .json: terraform-mapping.json compacted), so this builds a copy of the module with them written,
# as the main module (its one replace, sdk/v4 => ../sdk, dropped for the sdk/v4 it requires).
# A cold build costs about 830 CPU-seconds and 4 GB of memory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${ZKMIGRATE_CACHE:-$HOME/.cache/zkmigrate}"
MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
MIN_GO=1.24

# npm @pulumi/kubernetes release -> the provider module's version at that release's tag.
declare -A RELEASES=(
    [4.25.0]=v4.0.0-20260115033456-f47bc2d6f199 # tag v4.25.0 = f47bc2d6f1996444d11c12b4ef083b82585f7c07
)

say() { echo "kubernetes-provider: $*"; }
die() { echo "kubernetes-provider: error: $*" >&2; exit 1; }

FORCE=0
case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    *) die "unknown argument '$1' (usage: tools/pulumi/kubernetes-provider.sh [--force])" ;;
esac

VERSION="$(sed -n 's/^ *"@pulumi\/kubernetes": *"\([^"]*\)".*/\1/p' "$REPO/package.json" | head -n 1)"
[[ -n "$VERSION" ]] || die "cannot read the @pulumi/kubernetes version from $REPO/package.json"
MODVERSION="${RELEASES[$VERSION]:-}"
[[ -n "$MODVERSION" ]] ||
    die "package.json has @pulumi/kubernetes $VERSION, but this script knows how to build only ${!RELEASES[*]} (add the provider module's version at that release's tag to RELEASES)"

ROOT="$CACHE/pulumi/providers/kubernetes-$VERSION"
BINARY="$ROOT/pulumi-resource-kubernetes"
PULUMI_HOME_DIR="${PULUMI_HOME:-$HOME/.pulumi}"
PLUGIN_DIR="$PULUMI_HOME_DIR/plugins/resource-kubernetes-v$VERSION"
HASH="$({ echo "$VERSION $MODULE@$MODVERSION"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -d' ' -f1)"
STAMP="$ROOT/stamp"

built() { [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -x "$BINARY" ]]; }
plugin_installed() { [[ -x "$PLUGIN_DIR/pulumi-resource-kubernetes" && ! -e "$PLUGIN_DIR.partial" ]] && cmp -s "$BINARY" "$PLUGIN_DIR/pulumi-resource-kubernetes"; }

# The plugin as `pulumi plugin install resource kubernetes <v> --file <binary>` lays it out: the
# binary in plugins/resource-kubernetes-v<v>/. Written beside and renamed, so a reader never sees
# half a plugin.
install_plugin() {
    local tmp="$PULUMI_HOME_DIR/plugins/.resource-kubernetes-v$VERSION.$$"
    mkdir -p "$tmp"
    cp "$BINARY" "$tmp/pulumi-resource-kubernetes"
    chmod 755 "$tmp/pulumi-resource-kubernetes"
    rm -rf "$PLUGIN_DIR"
    mv "$tmp" "$PLUGIN_DIR"
    plugin_installed || die "plugin resource kubernetes $VERSION is not in $PLUGIN_DIR after its install"
    say "installed plugin resource kubernetes $VERSION into $PULUMI_HOME_DIR/plugins"
}

if ((FORCE == 0)) && built; then
    plugin_installed || install_plugin
    say "pulumi-resource-kubernetes $VERSION is up to date in $ROOT"
    exit 0
fi

mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock -w 3600 9 || die "another build holds $ROOT/.lock for over an hour"
if ((FORCE == 0)) && built; then
    plugin_installed || install_plugin
    say "built meanwhile by another run: up to date"
    exit 0
fi

GO="$(command -v go || true)"
[[ -n "$GO" ]] || { [[ -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go; }
[[ -n "$GO" ]] || die "the Go toolchain is required (go >= $MIN_GO, on PATH or in /usr/local/go) to build pulumi-resource-kubernetes"
gov="$("$GO" env GOVERSION 2>/dev/null || true)"
gov="${gov#go}"
IFS=. read -r gomaj gomin _ <<<"$gov"
IFS=. read -r minmaj minmin <<<"$MIN_GO"
if ! [[ "$gomaj" =~ ^[0-9]+$ && "${gomin:-}" =~ ^[0-9]+$ ]] || ((gomaj < minmaj || (gomaj == minmaj && gomin < minmin))); then
    die "go $gov at $GO is too old: pulumi-resource-kubernetes needs go >= $MIN_GO"
fi
command -v node >/dev/null || die "node is required (it writes the provider's embedded schema)"

export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
export GOFLAGS="-modcacherw -buildvcs=false -trimpath" GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$GOMODCACHE" "$GOCACHE"

STAGE="$(mktemp -d "$ROOT/stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
say "downloading $MODULE@$MODVERSION"
src="$(cd "$STAGE" && timeout 600 "$GO" mod download -json "$MODULE@$MODVERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -n "$src" && -d "$src" ]] || die "go mod download $MODULE@$MODVERSION failed (is the Go module proxy reachable?)"
cp -r "$src" "$STAGE/provider"
chmod -R u+w "$STAGE/provider"
cd "$STAGE/provider"
"$GO" mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4

# What `go generate ./cmd/pulumi-resource-kubernetes` writes upstream.
(cd cmd/pulumi-resource-kubernetes && VERSION="$VERSION" node -e '
const fs = require("node:fs");
const schema = JSON.parse(fs.readFileSync("schema.json", "utf8"));
schema.version = process.env.VERSION;
fs.writeFileSync("schema-embed.json", JSON.stringify(schema));
fs.writeFileSync("terraform-mapping-embed.json", JSON.stringify(JSON.parse(fs.readFileSync("terraform-mapping.json", "utf8"))));
')

say "downloading its dependencies"
timeout 1200 "$GO" mod download || die "go mod download of the provider's dependencies failed"
say "building pulumi-resource-kubernetes $VERSION with $GO ($gov), nice -n 10"
TIMEFORMAT="%R %U %S"
{ time (timeout 7200 nice -n 10 "$GO" build -mod=mod -ldflags "-s -w -X $MODULE/pkg/version.Version=$VERSION" \
    -o "$STAGE/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes); } 2>"$STAGE/time" ||
    { cat "$STAGE/time" >&2; die "go build failed or timed out (see above)"; }
read -r wall user sys < <(tail -n 1 "$STAGE/time")

mv -f "$STAGE/pulumi-resource-kubernetes" "$BINARY"
echo "$HASH" >"$STAMP"
record="wall ${wall%.*} s, cpu $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }') s, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
echo "$record" >"$ROOT/build-time.txt"
say "built $BINARY: $record"
install_plugin
