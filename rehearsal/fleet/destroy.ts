// Destroying a fleet: its processes by their recorded pids (checked against their command lines)
// and whatever else runs in its namespaces, then namespaces, bridge, root-namespace rules and
// files. Safe to run twice and on a half-created fleet.
import { existsSync, readdirSync, rmSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { fleetNamespaces, pidsIn, removeBridgeAndRules, removeNamespaces } from "./network";
import { isHostServer, killPids, readPid } from "./processes";
import { isOurSshd } from "./sshd";
import { checkName, fleetDir, loadFleet, runRoot } from "./state";

/**
 * Removes a fleet: kills its ZooKeeper and sshd processes by their recorded pids (checked
 * against their command lines) and whatever else runs in its namespaces, removes the namespaces,
 * the bridge (only when tagged as this fleet's), the root-namespace rules tagged with the fleet,
 * and the fleet's directory. Safe to run twice and on a half-created fleet.
 */
export async function destroyFleet(name: string, o: { log?: (line: string) => void } = {}): Promise<void> {
    const say = o.log ?? (() => undefined);
    checkName(name);
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
        throw new Error("zkmigrate fleet: destroy needs root (namespaces, bridge, iptables)");
    }
    const f = loadFleet(name);
    const dir = fleetDir(name);
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
        try {
            await fn();
        } catch (e) {
            errors.push(`${what}: ${(e as Error).message}`);
        }
    };

    // Namespaces of this fleet: recorded ones, plus any with its prefix (a crashed create).
    const namespaces = await fleetNamespaces(name);

    // 1. Processes: ZooKeeper and sshd by their pids, checked to be ours.
    const pids: number[] = [];
    for (const h of f?.hosts ?? []) {
        for (const p of [readPid(h.zkPidFile), h.zkPid]) {
            if (isHostServer(name, h.name, p)) pids.push(p);
        }
        for (const p of [h.sshdPid, readPid(join(h.dir, "run", "sshd.pid"))]) {
            if (p !== undefined && isOurSshd(join(dir, "host"), p)) pids.push(p);
        }
    }
    // ...and whatever else still runs inside the fleet's own network namespaces (SSH sessions,
    // a test's listener, a server whose pid file was lost).
    pids.push(...(await pidsIn(namespaces)));
    const unique = [...new Set(pids)].filter((p) => p !== process.pid);
    if (unique.length > 0) {
        say(`killing ${unique.length} process(es): ${unique.join(" ")}`);
        await attempt("killing the fleet's processes", () => killPids(unique));
    }

    // 2. Namespaces (their veths go with them).
    await removeNamespaces(namespaces, say, attempt);

    // 3. The bridge, when it is this fleet's; 4. root-namespace rules carrying the fleet's tag.
    await removeBridgeAndRules(name, f?.rootRules ?? [], say, attempt, errors);

    // 5. Files.
    if (existsSync(dir)) {
        await attempt(`removing ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
    }
    try {
        // Not recursive: it fails when another fleet's directory appeared meanwhile.
        if (existsSync(runRoot()) && readdirSync(runRoot()).length === 0) rmdirSync(runRoot());
    } catch {
        /* another fleet appeared meanwhile */
    }
    if (errors.length > 0) {
        throw new Error(`zkmigrate fleet ${name}: destroy left problems:\n  - ${errors.join("\n  - ")}`);
    }
}
