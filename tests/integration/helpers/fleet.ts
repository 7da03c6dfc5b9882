// A fresh local fleet per test suite: created in `before` (after removing leftovers of an earlier,
// crashed run), destroyed in `after` whatever happened, and then checked to be gone.
import { execFileSync } from "node:child_process";
import { after, before } from "node:test";
import {
    checkPrerequisites,
    createFleet,
    destroyFleet,
    fleetNetwork,
    fleetTag,
    type LocalFleet,
    type FleetSpec,
} from "../../../rehearsal/fleet";
import { DEFAULT_ZK_VERSION, ZK_VERSIONS, resolveVersion } from "../../../rehearsal/zookeeper";
import type { HostSettings } from "../../../src/types";

/**
 * The ZooKeeper versions every integration suite runs against: the newest 3.8 and 3.9 by default,
 * or $ZKMIGRATE_IT_VERSIONS (comma-separated, e.g. "3.5,3.9").
 */
export const VERSIONS: string[] = (process.env.ZKMIGRATE_IT_VERSIONS ?? `${ZK_VERSIONS["3.8"]},${DEFAULT_ZK_VERSION}`)
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v.length > 0)
    .map((v) => resolveVersion(v));

/** A fleet name from a suite label and a version: `it-roll-395`. */
export function fleetName(label: string, version: string): string {
    return `it-${label}-${version.replace(/\./g, "")}`;
}

const log = (l: string) => {
    if (process.env.ZKMIGRATE_IT_VERBOSE) console.log(`  fleet: ${l}`);
};

/**
 * Registers `before` (prerequisites, leftovers removed, fleet created) and `after` (destroyed,
 * then checked gone) in the current suite. The returned getter throws until the fleet exists.
 */
export function useFleet(spec: FleetSpec, o: { createTimeoutMs?: number } = {}): () => LocalFleet {
    let fleet: LocalFleet | undefined;
    before(
        async () => {
            // A missing prerequisite fails the suite (never a skip), naming the Debian package.
            checkPrerequisites();
            await destroyFleet(spec.name, { log });
            fleet = await createFleet(spec, { log });
        },
        { timeout: o.createTimeoutMs ?? 600_000 },
    );
    after(
        async () => {
            await destroyFleet(spec.name, { log });
            assertFleetGone(spec.name);
        },
        { timeout: 120_000 },
    );
    return () => {
        if (!fleet) throw new Error(`fleet ${spec.name} was not created`);
        return fleet;
    };
}

function sh(cmd: string, args: string[]): string {
    try {
        return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
    } catch (e) {
        const err = e as { status?: number; stdout?: string };
        // pgrep exits 1 when nothing matches.
        if (err.status === 1 && cmd === "pgrep") return err.stdout ?? "";
        throw e;
    }
}

/** Nothing of the fleet is left: no namespace, ZooKeeper, sshd, bridge or root-namespace rule. */
export function assertFleetGone(name: string): void {
    const problems: string[] = [];
    const ns = sh("ip", ["netns", "list"])
        .split("\n")
        .filter((l) => l.startsWith(`zkm.${name}.`));
    if (ns.length > 0) problems.push(`namespaces left: ${ns.join(", ")}`);
    const zk = sh("pgrep", ["-af", "QuorumPeerMain"])
        .split("\n")
        .filter((l) => l.includes(`-Dzkmigrate.server=${name}/`));
    if (zk.length > 0) problems.push(`ZooKeeper processes left: ${zk.map((l) => l.split(" ")[0]).join(", ")}`);
    const sshd = sh("pgrep", ["-af", "sshd"])
        .split("\n")
        .filter((l) => l.includes(`/run/zkmigrate/${name}/`) || l.includes(`/${name}/host/ssh/sshd_config`));
    if (sshd.length > 0) problems.push(`sshd processes left: ${sshd.join(" | ")}`);
    const bridge = fleetNetwork(name).bridge;
    if (sh("ip", ["-o", "link", "show"]).includes(`${bridge}:`)) problems.push(`bridge ${bridge} left`);
    const rules = sh("iptables", ["-w", "10", "-S"])
        .split("\n")
        .filter((l) => l.includes(fleetTag(name)));
    if (rules.length > 0) problems.push(`root-namespace rules left: ${rules.join(" | ")}`);
    if (problems.length > 0) throw new Error(`fleet ${name} not cleaned up:\n  - ${problems.join("\n  - ")}`);
}

/** The fleet's host settings with another health timeout (failure tests wait less). */
export function withHealthTimeout(f: LocalFleet, seconds: number): HostSettings {
    return { ...f.hostSettings, healthTimeoutSeconds: seconds };
}
