// What a fleet's hosts do now: the namespace, sshd, the server's pid and its mode (srvr), and a
// bounded wait until servers serve.
import { fourLetter, modeOf, sleep } from "../zookeeper";
import { netnsList } from "./network";
import { pidAlive, zkPid } from "./processes";
import type { LocalFleet, FleetHost } from "./state";

/** Waits until every host's ZooKeeper answers srvr with a Mode on its address, at most timeoutMs. */
export async function waitServing(f: LocalFleet, hosts: FleetHost[], timeoutMs = 120_000): Promise<Record<string, string>> {
    const deadline = Date.now() + timeoutMs;
    const modes: Record<string, string> = {};
    const last: Record<string, string> = {};
    for (;;) {
        await Promise.all(
            hosts
                .filter((h) => !modes[h.name])
                .map(async (h) => {
                    try {
                        const a = await fourLetter(h.address, f.hostSettings.clientPort, "srvr", 2000);
                        const m = modeOf(a);
                        if (m) modes[h.name] = m;
                        else last[h.name] = a.trim().slice(0, 200);
                    } catch (e) {
                        last[h.name] = (e as Error).message;
                    }
                }),
        );
        if (hosts.every((h) => modes[h.name])) return modes;
        if (Date.now() > deadline) {
            const waiting = hosts.filter((h) => !modes[h.name]).map((h) => `${h.name}: ${last[h.name] ?? "?"}`);
            throw new Error(`zkmigrate fleet ${f.name}: not serving after ${timeoutMs / 1000} s: ${waiting.join("; ")}`);
        }
        await sleep(250);
    }
}

export interface HostStatus {
    name: string;
    id: number;
    ensemble: string;
    version: string;
    address: string;
    netns: boolean;
    sshdPid?: number;
    sshd: boolean;
    zkPid?: number;
    mode?: string;
    detail?: string;
}

export async function fleetStatus(f: LocalFleet): Promise<HostStatus[]> {
    const ns = new Set(await netnsList());
    return Promise.all(
        f.hosts.map(async (h) => {
            const s: HostStatus = {
                name: h.name,
                id: h.id,
                ensemble: h.ensemble,
                version: h.version,
                address: h.address,
                netns: ns.has(h.netns),
                sshdPid: h.sshdPid,
                sshd: h.sshdPid !== undefined && pidAlive(h.sshdPid),
                zkPid: zkPid(f, h),
            };
            try {
                const a = await fourLetter(h.address, f.hostSettings.clientPort, "srvr", 1500);
                s.mode = modeOf(a);
                if (!s.mode) s.detail = a.trim().split("\n")[0];
            } catch (e) {
                s.detail = (e as Error).message;
            }
            return s;
        }),
    );
}
