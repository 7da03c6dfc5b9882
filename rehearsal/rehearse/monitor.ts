// Who leads and who serves during the rehearsal, polled with srvr every 200 ms (at each server's
// host, or at its Service's ClusterIP once the kubernetes procedure has one): the report judges
// each restart by whether it restarted the leader, and the split by when the targets serve again.
import { fourLetterWord, parseMode } from "../../src/zk/four-letter";

interface ModeSample {
    at: number;
    modes: Record<number, string>;
}

export class ModeMonitor {
    readonly samples: ModeSample[] = [];
    private stopped = false;
    private loop?: Promise<void>;
    private readonly hosts: { id: number; address: string }[];
    constructor(hosts: { id: number; address: string }[]) {
        this.hosts = hosts.map((h) => ({ id: h.id, address: h.address }));
    }
    /** Polls server `id` at `address` from now on (a Service's ClusterIP instead of its host). */
    setAddress(id: number, address: string): void {
        const h = this.hosts.find((x) => x.id === id);
        if (h) h.address = address;
    }
    start() {
        this.loop = (async () => {
            while (!this.stopped) {
                const at = Date.now();
                const modes: Record<number, string> = {};
                await Promise.all(
                    this.hosts.map(async (h) => {
                        try {
                            modes[h.id] = parseMode(await fourLetterWord(h.address, 2181, "srvr", 400)) ?? "not serving";
                        } catch {
                            modes[h.id] = "down";
                        }
                    }),
                );
                this.samples.push({ at, modes });
                await new Promise((r) => setTimeout(r, 200));
            }
        })();
    }
    async stop() {
        this.stopped = true;
        await this.loop;
    }
    /** The leader(s) of the last sample at or before t. */
    leadersAt(t: number): number[] {
        let s: ModeSample | undefined;
        for (const x of this.samples) {
            if (x.at > t) break;
            s = x;
        }
        return s ? Object.entries(s.modes).filter(([, m]) => m === "leader").map(([id]) => Number(id)) : [];
    }
    /** The first sample at or after t in which all of `ids` serve (leader or follower). */
    firstServing(ids: number[], t: number): number | undefined {
        return this.samples.find((x) => x.at >= t && ids.every((id) => x.modes[id] === "leader" || x.modes[id] === "follower"))?.at;
    }
    current(): string {
        const s = this.samples[this.samples.length - 1];
        if (!s) return "";
        return Object.entries(s.modes)
            .map(([id, m]) => `${id}:${m === "leader" ? "L" : m === "follower" ? "F" : m === "down" ? "-" : "?"}`)
            .join(" ");
    }
}
