// The mitosis split on a target host: REJECT (with a TCP reset) all TCP to and from the source hosts.
//
// tcp-reset, not a plain REJECT: a plain REJECT answers with ICMP, which TCP ignores on an
// established connection, so the sources would stall for syncLimit x tickTime before they give up
// on the targets. INPUT matches the peer as source (-s), OUTPUT as destination (-d).
//
// Both rules exempt RST segments (`! --tcp-flags RST RST`). The reset that REJECT makes for a
// segment leaving through OUTPUT comes back in "from" the peer, and the one it makes for a segment
// arriving through INPUT goes out "to" the peer: without the exemption the other chain rejects
// that reset in turn (REJECT never answers a RST, it drops it), and a connection attempt across
// the split hangs until its timeout instead of failing at once. Seen on the local fleet
// (tests/integration/firewall.test.ts).
import { createHash } from "node:crypto";
import { LOG, ROOT } from "./lib";
import { fail, ipFamily, type ParamValue, renderScript, sh } from "./shell";

/**
 * `ZKM-<prefix>-<hash>`, at most 20 characters, so that `-IN`/`-OUT` fit iptables' 28.
 * The hash of the full name keeps distinct ensembles apart when their prefixes agree.
 */
export function firewallChainName(ensemble: string): string {
    const hash = createHash("sha256").update(ensemble, "utf8").digest("hex").slice(0, 6);
    const prefix = ensemble.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 9);
    return prefix.length > 0 ? `ZKM-${prefix}-${hash}` : `ZKM-${hash}`;
}

export interface FirewallRules {
    /** Base name of the chains (firewallChainName). */
    chain: string;
    /** The comment on every rule and jump (e.g. `zkmigrate:<ensemble>`). */
    tag: string;
    /** Addresses or CIDRs cut off (the source hosts). */
    peers: string[];
}

export function firewallParams(a: FirewallRules) {
    if (!/^[A-Za-z0-9_-]{1,24}$/.test(a.chain)) fail(`firewall chain ${JSON.stringify(a.chain)} must be 1..24 letters, digits, - or _`);
    if (!/^[\x21-\x7e]{1,200}$/.test(a.tag)) fail(`firewall tag ${JSON.stringify(a.tag)} must be 1..200 printable characters without spaces`);
    if (a.peers.length === 0) fail("a firewall split needs at least one peer");
    const v4 = new Set<string>();
    const v6 = new Set<string>();
    for (const p of a.peers) (ipFamily(p) === 4 ? v4 : v6).add(p);
    return [
        ["CHAIN_IN", `${a.chain}-IN`],
        ["CHAIN_OUT", `${a.chain}-OUT`],
        ["TAG", a.tag],
        ["PEERS_V4", [...v4]],
        ["PEERS_V6", [...v6]],
    ] as [string, string | string[]][];
}

/** iptables/ip6tables, as root, waiting (bounded) for the xtables lock that kube-proxy & co. hold. */
export const IPT = sh`
ipt() {
    local tool="$1"
    shift
    as_root "$tool" -w 10 "$@"
}

chain_exists() {
    ipt "$1" -n -L "$2" >/dev/null 2>&1
}

# drop_jumps TOOL PARENT CHAIN TAG [MATCH...]: deletes every jump from PARENT to CHAIN that carries
# the comment TAG (and MATCH), bounded; prints how many it deleted.
drop_jumps() {
    local tool="$1" parent="$2" chain="$3" tag="$4" n=0
    shift 4
    while ipt "$tool" -C "$parent" "$@" -m comment --comment "$tag" -j "$chain" 2>/dev/null; do
        ipt "$tool" -D "$parent" "$@" -m comment --comment "$tag" -j "$chain"
        n=$((n + 1))
        if ((n >= 100)); then
            die "$tool: still a jump from $parent to $chain after deleting 100"
        fi
    done
    printf '%s\n' "$n"
}

# drop_chain TOOL CHAIN: flushes and deletes CHAIN; returns 1 when it does not exist.
drop_chain() {
    chain_exists "$1" "$2" || return 1
    ipt "$1" -F "$2"
    ipt "$1" -X "$2"
}

# remove_family TOOL: removes the jumps and chains of this split from TOOL's filter table.
remove_family() {
    local tool="$1" parent chain n
    for parent in INPUT OUTPUT; do
        chain="$CHAIN_IN"
        if [[ "$parent" == OUTPUT ]]; then
            chain="$CHAIN_OUT"
        fi
        n="$(drop_jumps "$tool" "$parent" "$chain" "$TAG")"
        if ((n > 0)); then
            say "$tool: removed $n jump(s) from $parent to $chain"
        fi
    done
    for chain in "$CHAIN_IN" "$CHAIN_OUT"; do
        if drop_chain "$tool" "$chain"; then
            say "$tool: removed chain $chain"
        fi
    done
}`;

export const APPLY = sh`
# rules_match TOOL PEER...: whether the chains hold exactly one rule per peer, as intended.
rules_match() {
    local tool="$1" peer count
    shift
    for peer in "$@"; do
        ipt "$tool" -C "$CHAIN_IN" -s "$peer" -p tcp ! --tcp-flags RST RST -m comment --comment "$TAG" -j REJECT --reject-with tcp-reset 2>/dev/null || return 1
        ipt "$tool" -C "$CHAIN_OUT" -d "$peer" -p tcp ! --tcp-flags RST RST -m comment --comment "$TAG" -j REJECT --reject-with tcp-reset 2>/dev/null || return 1
    done
    count="$(ipt "$tool" -S "$CHAIN_IN" | grep -c '^-A ' || true)"
    ((count == $#)) || return 1
    count="$(ipt "$tool" -S "$CHAIN_OUT" | grep -c '^-A ' || true)"
    ((count == $#))
}

# apply_family TOOL PEER...: fills the chains (only when they differ: a flush opens the split for
# a moment) and then inserts the jumps, so the split takes effect complete.
apply_family() {
    local tool="$1" peer chain
    shift
    command -v "$tool" >/dev/null || die "$tool not found: cannot split off $*"
    for chain in "$CHAIN_IN" "$CHAIN_OUT"; do
        if ! chain_exists "$tool" "$chain"; then
            ipt "$tool" -N "$chain"
            say "$tool: created chain $chain"
        fi
    done
    if rules_match "$tool" "$@"; then
        say "$tool: $CHAIN_IN and $CHAIN_OUT already hold the rules for $*"
    else
        ipt "$tool" -F "$CHAIN_IN"
        ipt "$tool" -F "$CHAIN_OUT"
        for peer in "$@"; do
            ipt "$tool" -A "$CHAIN_IN" -s "$peer" -p tcp ! --tcp-flags RST RST -m comment --comment "$TAG" -j REJECT --reject-with tcp-reset
            ipt "$tool" -A "$CHAIN_OUT" -d "$peer" -p tcp ! --tcp-flags RST RST -m comment --comment "$TAG" -j REJECT --reject-with tcp-reset
        done
        say "$tool: filled $CHAIN_IN and $CHAIN_OUT for $*"
    fi
    ensure_jump "$tool" INPUT "$CHAIN_IN"
    ensure_jump "$tool" OUTPUT "$CHAIN_OUT"
}

ensure_jump() {
    local tool="$1" parent="$2" chain="$3"
    if ipt "$tool" -C "$parent" -m comment --comment "$TAG" -j "$chain" 2>/dev/null; then
        say "$tool: $parent already jumps to $chain"
    else
        ipt "$tool" -I "$parent" 1 -m comment --comment "$TAG" -j "$chain"
        say "$tool: $parent jumps to $chain (position 1)"
    fi
}

show_family() {
    local tool="$1"
    say "$tool rules now:"
    {
        ipt "$tool" -S INPUT | grep -F -- "$CHAIN_IN" || true
        ipt "$tool" -S OUTPUT | grep -F -- "$CHAIN_OUT" || true
        ipt "$tool" -S "$CHAIN_IN"
        ipt "$tool" -S "$CHAIN_OUT"
    } | sed 's/^/    /'
}`;

export function renderFirewallApply(a: FirewallRules): string {
    return renderScript({
        title: "firewall split: reject all TCP to and from the peers (tcp-reset)",
        params: firewallParams(a),
        functions: [LOG, ROOT, IPT, APPLY],
        main: sh`
say "firewall split on $(uname -n): cut off \${PEERS_V4[*]-} \${PEERS_V6[*]-} (tag $TAG)"
need_root
if ((\${#PEERS_V4[@]} > 0)); then
    apply_family iptables "\${PEERS_V4[@]}"
    show_family iptables
elif command -v iptables >/dev/null; then
    # No IPv4 peer (any more): leave no IPv4 rules from an earlier apply behind.
    remove_family iptables
fi
if ((\${#PEERS_V6[@]} > 0)); then
    apply_family ip6tables "\${PEERS_V6[@]}"
    show_family ip6tables
elif command -v ip6tables >/dev/null; then
    remove_family ip6tables
fi
say "firewall split applied"
`,
    });
}

/**
 * `extra`: what runs first (the split's dead man's switch stopped and its state removed, from
 * deadman.ts), with its parameters and functions.
 */
export function renderFirewallRemove(a: FirewallRules, extra?: { params: [string, ParamValue][]; functions: string[]; first: string }): string {
    return renderScript({
        title: "firewall split: remove the rules (nothing there is fine)",
        params: [...firewallParams(a), ...(extra?.params ?? [])],
        functions: [LOG, ROOT, IPT, ...(extra?.functions ?? [])],
        main: sh`
say "remove the firewall split on $(uname -n) (was: \${PEERS_V4[*]-} \${PEERS_V6[*]-}, tag $TAG)"
need_root
${extra ? `${extra.first}\n` : ""}for tool in iptables ip6tables; do
    if ! command -v "$tool" >/dev/null; then
        say "$tool not found: nothing to remove there"
        continue
    fi
    if ! ipt "$tool" -S >/dev/null 2>&1; then
        # A family with peers must be cleanable; the other one may just be unsupported here.
        if { [[ "$tool" == iptables ]] && ((\${#PEERS_V4[@]} > 0)); } || { [[ "$tool" == ip6tables ]] && ((\${#PEERS_V6[@]} > 0)); }; then
            die "$tool cannot list the filter table: cannot remove the split"
        fi
        warn "$tool cannot list the filter table: skipped"
        continue
    fi
    remove_family "$tool"
done
say "firewall split removed"
`,
    });
}
