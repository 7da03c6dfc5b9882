// The fleet's network: one /24 and one bridge per fleet (derived from its name, refused when
// someone else's), the root namespace's address (.1) on the bridge, and per host a network
// namespace `zkm.<fleet>.<host>` with a veth (eth0) on the bridge; root-namespace iptables rules
// that accept the bridge's traffic, tagged with the fleet so that destroy finds them.
import { createHash } from "node:crypto";
import { findCommand } from "../zookeeper";
import { must, run, type Run } from "./processes";
import { checkName, type LocalFleet, type FleetHost } from "./state";

function fleetHash(name: string): Buffer {
    return createHash("sha256").update(`zkmigrate-fleet:${name}`).digest();
}

/** The fleet's /24 and bridge, derived from its name (10.201.0.0 to 10.250.255.0). */
export function fleetNetwork(name: string): { subnet: string; prefix: string; bridge: string; bridgeAddress: string } {
    checkName(name);
    const h = fleetHash(name);
    const prefix = `10.${201 + (h.readUInt16BE(0) % 50)}.${h[2]}`;
    return { subnet: `${prefix}.0/24`, prefix, bridge: `zkm-${h.toString("hex").slice(0, 8)}`, bridgeAddress: `${prefix}.1` };
}

/** The tag on the fleet's bridge (as its alias) and on its root-namespace iptables rules. */
export function fleetTag(name: string): string {
    return `zkmigrate-fleet:${name}`;
}

export function netnsName(fleet: string, host: string): string {
    return `zkm.${fleet}.${host}`;
}

/** The root-namespace end of a host's veth (the host's end is eth0). */
export function vethName(bridge: string, index: number): string {
    return `zkv${bridge.slice(4, 10)}-${index}`;
}

/** Refuses when the fleet's bridge or subnet exists and is not this fleet's. */
export async function checkNetworkFree(name: string): Promise<void> {
    const net = fleetNetwork(name);
    const tag = fleetTag(name);
    const link = await run("ip", ["-d", "-j", "link", "show", "dev", net.bridge]);
    let bridgeIsOurs = false;
    if (link.code === 0) {
        const info = (JSON.parse(link.stdout) as { ifalias?: string }[])[0];
        if (info?.ifalias !== tag) {
            throw new Error(`zkmigrate fleet ${name}: a device ${net.bridge} exists and is not this fleet's bridge (its alias is ${JSON.stringify(info?.ifalias ?? "")}, not ${tag}): refusing`);
        }
        bridgeIsOurs = true;
    }
    const addrs = JSON.parse(await must("ip", ["-j", "-4", "addr", "show"], "listing addresses")) as { ifname: string; addr_info: { local: string }[] }[];
    for (const dev of addrs) {
        for (const a of dev.addr_info ?? []) {
            if (a.local.startsWith(`${net.prefix}.`) && !(bridgeIsOurs && dev.ifname === net.bridge)) {
                throw new Error(`zkmigrate fleet ${name}: the fleet's subnet ${net.subnet} is in use (${a.local} on ${dev.ifname}): refusing`);
            }
        }
    }
    const routes = JSON.parse(await must("ip", ["-j", "-4", "route", "show", "table", "all"], "listing routes")) as { dst: string; dev?: string }[];
    for (const r of routes) {
        if ((r.dst === net.subnet || r.dst.startsWith(`${net.prefix}.`)) && r.dev !== net.bridge) {
            throw new Error(`zkmigrate fleet ${name}: a route to ${r.dst} (dev ${r.dev ?? "?"}) overlaps the fleet's subnet ${net.subnet}: refusing`);
        }
    }
}

export async function netnsList(): Promise<string[]> {
    const r = await run("ip", ["netns", "list"]);
    return r.stdout
        .split("\n")
        .map((l) => l.split(" ")[0])
        .filter((l) => l.length > 0);
}

export async function ensureRootRule(args: string[]): Promise<void> {
    const chainAndRest = args;
    const check = await run("iptables", ["-w", "10", "-C", ...chainAndRest]);
    if (check.code === 0) return;
    await must("iptables", ["-w", "10", "-I", chainAndRest[0], "1", ...chainAndRest.slice(1)], `adding the root-namespace rule ${args.join(" ")}`);
}

/** The rules the fleet adds to the root namespace: traffic on its bridge is accepted whatever the policies. */
export function rootRulesFor(name: string, bridge: string): string[][] {
    const c = ["-m", "comment", "--comment", fleetTag(name), "-j", "ACCEPT"];
    return [
        // Bridged traffic between hosts passes FORWARD when br_netfilter is loaded.
        ["FORWARD", "-i", bridge, "-o", bridge, ...c],
        ["INPUT", "-i", bridge, ...c],
        ["OUTPUT", "-o", bridge, ...c],
    ];
}

/** The bridge with the root namespace's address on it, up, and the fleet's root-namespace rules. */
export async function ensureBridge(f: LocalFleet, say: (line: string) => void, saveRules: (rules: string[][]) => void): Promise<void> {
    const net = fleetNetwork(f.name);
    if ((await run("ip", ["link", "show", "dev", net.bridge])).code !== 0) {
        say(`bridge ${net.bridge} ${net.subnet}`);
        await must("ip", ["link", "add", net.bridge, "type", "bridge"], "creating the bridge");
    }
    await must("ip", ["link", "set", "dev", net.bridge, "alias", fleetTag(f.name)], "tagging the bridge");
    const brAddr = await run("ip", ["-4", "addr", "show", "dev", net.bridge]);
    if (!brAddr.stdout.includes(`inet ${net.bridgeAddress}/24`)) {
        await must("ip", ["addr", "add", `${net.bridgeAddress}/24`, "dev", net.bridge], "addressing the bridge");
    }
    await must("ip", ["link", "set", "dev", net.bridge, "up"], "bringing the bridge up");
    const rules = rootRulesFor(f.name, net.bridge);
    // Recorded before they are added, so that destroy finds whatever a failed create left.
    saveRules(rules);
    for (const r of rules) await ensureRootRule(r);
}

/** A host's namespace, veth on the bridge, address and default route (each step only when missing). */
export async function ensureHostNetwork(f: LocalFleet, h: FleetHost, existingNs: Set<string>, say: (line: string) => void): Promise<void> {
    if (!existingNs.has(h.netns)) {
        say(`host ${h.name}: namespace ${h.netns}, ${h.address}`);
        await must("ip", ["netns", "add", h.netns], `creating the namespace of ${h.name}`);
    }
    const nsIp = (...args: string[]) => ["-n", h.netns, ...args];
    await must("ip", nsIp("link", "set", "dev", "lo", "up"), `loopback of ${h.name}`);
    if ((await run("ip", nsIp("link", "show", "dev", "eth0"))).code !== 0) {
        if ((await run("ip", ["link", "show", "dev", h.veth])).code === 0) {
            await must("ip", ["link", "del", "dev", h.veth], `removing a stale ${h.veth}`);
        }
        await must("ip", ["link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns], `the veth of ${h.name}`);
    }
    await must("ip", ["link", "set", "dev", h.veth, "master", f.bridge, "up"], `attaching ${h.name} to the bridge`);
    const a = await run("ip", nsIp("-4", "addr", "show", "dev", "eth0"));
    if (!a.stdout.includes(`inet ${h.address}/24`)) {
        await must("ip", nsIp("addr", "add", `${h.address}/24`, "dev", "eth0"), `addressing ${h.name}`);
    }
    await must("ip", nsIp("link", "set", "dev", "eth0", "up"), `eth0 of ${h.name}`);
    await must("ip", nsIp("route", "replace", "default", "via", f.bridgeAddress), `default route of ${h.name}`);
}

/** Runs a command in a host's network namespace (from the root's mount namespace); for tests and checks. */
export function inNetns(f: LocalFleet, h: FleetHost, argv: string[], timeoutMs = 30_000): Promise<Run> {
    return run("ip", ["netns", "exec", h.netns, ...argv], { timeoutMs });
}

// ---------------------------------------------------------------------------------------------
// Removal (destroy): each step records its problem and goes on.

type Attempt = (what: string, fn: () => Promise<unknown>) => Promise<void>;

/** The network namespaces of a fleet, recorded or not (any with its prefix: a crashed create). */
export async function fleetNamespaces(name: string): Promise<Set<string>> {
    const prefix = `zkm.${name}.`;
    return new Set<string>((await netnsList()).filter((n) => n.startsWith(prefix)));
}

/** The pids of whatever runs inside the namespaces. */
export async function pidsIn(namespaces: Iterable<string>): Promise<number[]> {
    const pids: number[] = [];
    for (const ns of namespaces) {
        const r = await run("ip", ["netns", "pids", ns]);
        for (const p of r.stdout.split(/\s+/).filter((x) => /^\d+$/.test(x))) pids.push(Number(p));
    }
    return pids;
}

/** Removes the namespaces (their veths go with them). */
export async function removeNamespaces(namespaces: Iterable<string>, say: (line: string) => void, attempt: Attempt): Promise<void> {
    for (const ns of namespaces) {
        say(`removing namespace ${ns}`);
        await attempt(`removing namespace ${ns}`, () => must("ip", ["netns", "del", ns], `removing namespace ${ns}`));
    }
}

/** Removes the bridge when it is this fleet's, and the root-namespace rules carrying the fleet's tag. */
export async function removeBridgeAndRules(name: string, recordedRules: string[][], say: (line: string) => void, attempt: Attempt, errors: string[]): Promise<void> {
    const net = fleetNetwork(name);
    // The bridge, when it is this fleet's.
    const link = await run("ip", ["-d", "-j", "link", "show", "dev", net.bridge]);
    if (link.code === 0) {
        const info = (JSON.parse(link.stdout) as { ifalias?: string }[])[0];
        if (info?.ifalias === fleetTag(name)) {
            say(`removing bridge ${net.bridge}`);
            await attempt(`removing bridge ${net.bridge}`, () => must("ip", ["link", "del", "dev", net.bridge], "removing the bridge"));
        } else {
            errors.push(`a device ${net.bridge} exists but is not tagged as this fleet's bridge: left alone`);
        }
    }

    // Root-namespace rules carrying the fleet's tag (recorded or not).
    if (findCommand("iptables")) {
        await attempt("removing root-namespace rules", async () => {
            // The recorded rules, then any other rule with the fleet's tag (our tags have no spaces,
            // so a listed rule splits into its arguments; iptables prints the comment in quotes).
            for (const r of recordedRules) {
                for (let i = 0; i < 20 && (await run("iptables", ["-w", "10", "-C", ...r])).code === 0; i++) {
                    say(`removing root-namespace rule ${r.join(" ")}`);
                    await must("iptables", ["-w", "10", "-D", ...r], "removing a root-namespace rule");
                }
            }
            const listing = await must("iptables", ["-w", "10", "-S"], "listing the root namespace's rules");
            const tag = fleetTag(name);
            for (const line of listing.split("\n")) {
                const args = line.trim().split(/\s+/).map((w) => w.replace(/^"(.*)"$/, "$1"));
                if (args[0] !== "-A" || !args.includes(tag)) continue;
                say(`removing root-namespace rule ${args.slice(1).join(" ")}`);
                await must("iptables", ["-w", "10", "-D", ...args.slice(1)], "removing a root-namespace rule");
            }
        });
    }
}
