// renderAdoptProbe: the read-only probe `zkmigrate adopt` runs on each ZooKeeper host over SSH.
// It changes nothing: it prints the membership lines of zoo.cfg (and of the dynamic config file),
// the myid file, the answers to `srvr` and `conf` on the local client port, and whether the
// ensemble's firewall chains and their jumps exist. Each line of data starts with a tag that
// src/adopt/observe.ts parses; lines of zoo.cfg other than the membership are never printed
// (they may hold passwords: ssl.keyStore.password and the like).
import type { HostSettings } from "../types";
import { checkHostPaths } from "./config";
import { LOG, ROOT, ZK } from "./lib";
import { checkPort, fail, renderScript, sh } from "./shell";

export function renderAdoptProbe(a: { host: HostSettings; chain: string }): string {
    checkHostPaths(a.host);
    checkPort("clientPort", a.host.clientPort);
    if (!/^[A-Za-z0-9_-]{1,24}$/.test(a.chain)) fail(`firewall chain ${JSON.stringify(a.chain)} must be 1..24 letters, digits, - or _`);
    return renderScript({
        title: "adopt: read what this host runs (changes nothing)",
        params: [
            ["ZOO_CFG", a.host.paths.configFile],
            ["MYID_FILE", a.host.paths.myidFile],
            ["DYNAMIC_CFG", a.host.paths.dynamicConfigFile ?? ""],
            ["CLIENT_PORT", a.host.clientPort],
            ["CHAIN_IN", `${a.chain}-IN`],
            ["CHAIN_OUT", `${a.chain}-OUT`],
        ],
        functions: [LOG, ROOT, ZK, PROBE],
        main: sh`
# zoo.cfg: only the membership keys (and where a dynamic config file is).
if zoo="$(read_file "$ZOO_CFG")"; then
    grep -E '^[[:space:]]*(server\.[0-9]+|quorumListenOnAllIPs|dynamicConfigFile)[[:space:]]*[=:]' <<<"$zoo" | sed 's/^/cfg /' || true
else
    echo "err zoo.cfg $ZOO_CFG cannot be read"
fi
dynamic="$DYNAMIC_CFG"
if [[ -z "$dynamic" ]]; then
    dynamic="$(grep -E '^[[:space:]]*dynamicConfigFile[[:space:]]*[=:]' <<<"\${zoo:-}" | tail -n 1 | sed -E 's/^[^=:]*[=:][[:space:]]*//; s/[[:space:]]+$//' || true)"
fi
if [[ -n "$dynamic" ]]; then
    if dyn="$(read_file "$dynamic")"; then
        grep -E '^[[:space:]]*server\.[0-9]+[[:space:]]*[=:]' <<<"$dyn" | sed 's/^/dyn /' || true
    else
        echo "err dynamic config file $dynamic cannot be read"
    fi
fi
if myid_text="$(read_file "$MYID_FILE")"; then
    echo "myid $(tr -d '[:space:]' <<<"$myid_text")"
else
    echo "myid"
fi
if port_open; then
    echo "port open"
    for word in srvr conf; do
        rc=0
        answer="$(zk_ask "$word")" || rc=$?
        awk -v word="$word" '{ print word " " $0 }' <<<"$answer"
        echo "$word-rc $rc"
    done
else
    echo "port closed"
fi
for tool in iptables ip6tables; do
    if ! command -v "$tool" >/dev/null; then
        echo "fw $tool missing"
        continue
    fi
    if ! rules="$(as_root "$tool" -w 10 -S 2>&1)"; then
        echo "fw $tool error $(tr '\n' ' ' <<<"$rules" | cut -c1-200)"
        continue
    fi
    for chain in "$CHAIN_IN" "$CHAIN_OUT"; do
        if grep -qxF -- "-N $chain" <<<"$rules"; then echo "fw $tool chain $chain"; fi
    done
    if grep -E -- '^-A INPUT ' <<<"$rules" | grep -qF -- "-j $CHAIN_IN"; then echo "fw $tool jump INPUT"; fi
    if grep -E -- '^-A OUTPUT ' <<<"$rules" | grep -qF -- "-j $CHAIN_OUT"; then echo "fw $tool jump OUTPUT"; fi
done
echo "end"
`,
    });
}

const PROBE = sh`
# read_file FILE: its content, as the SSH user when readable, else as root (sudo -n).
read_file() {
    if [[ -r "$1" ]]; then
        cat -- "$1"
    else
        as_root cat -- "$1" 2>/dev/null
    fi
}`;
