#!/usr/bin/env bash
# Installs what the tests and the rehearsal need, and nothing when it is already there: the
# Debian packages of the tools they run, the npm dependencies (from package-lock.json, and the
# policy pack's from policy/package-lock.json), and the Pulumi engine built from Go modules
# (tools/pulumi/install.sh; a few minutes the first time).
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
)

missing=()
for pkg in "${!PACKAGES[@]}"; do
    # sbin is not on every PATH; look there too.
    PATH="$PATH:/usr/sbin:/sbin" command -v "${PACKAGES[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
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

# The Pulumi engine (CLI, Node.js language host, command provider plugin), unless installed.
bash tools/pulumi/install.sh
