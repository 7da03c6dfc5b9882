// Who leads and who serves during the rehearsal, polled with srvr every 200 ms (at each server's
// host, or at its Service's ClusterIP once the kubernetes procedure has one): the report judges
// each restart by whether it restarted the leader, and the split by when the targets serve again.
import { fourLetterWord, parseMode } from "../../src/zk/four-letter";

interface ModeSample {
    at: number;
    modes: Record<number, string>;
    /** The epoch of each serving server's last zxid (srvr's `Zxid`, high 32 bits): a new one per election. */
    epochs?: Record<number, number>;
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
                const epochs: Record<number, number> = {};
                await Promise.all(
                    this.hosts.map(async (h) => {
                        try {
                            const out = await fourLetterWord(h.address, 2181, "srvr", 400);
                            modes[h.id] = parseMode(out) ?? "not serving";
                            const zxid = /Zxid: 0x([0-9a-fA-F]+)/.exec(out)?.[1];
                            if (zxid && modes[h.id] !== "not serving") epochs[h.id] = Number(BigInt(`0x${zxid}`) >> 32n);
                        } catch {
                            modes[h.id] = "down";
                        }
                    }),
                );
                this.samples.push({ at, modes, epochs });
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
    /**
     * The elections `ids` went through within `w`, counted from srvr: each time the highest epoch
     * they serve with rises (every election makes a new epoch), or the leader among them changes
     * to another one of them, against the last sample before the window.
     */
    elections(ids: number[], w: { start: number; end: number }): number {
        const key = (x: ModeSample): { epoch: number; leader?: number } | undefined => {
            const epochs = ids.map((id) => x.epochs?.[id]).filter((e): e is number => e !== undefined);
            if (epochs.length === 0) return undefined;
            return { epoch: Math.max(...epochs), leader: ids.find((id) => x.modes[id] === "leader") };
        };
        let prev: { epoch: number; leader?: number } | undefined;
        let count = 0;
        for (const x of this.samples) {
            if (x.at > w.end) break;
            const k = key(x);
            if (!k) continue;
            if (x.at >= w.start && prev && (k.epoch > prev.epoch || (k.leader !== undefined && prev.leader !== undefined && k.leader !== prev.leader))) count++;
            prev = { epoch: Math.max(k.epoch, prev?.epoch ?? 0), leader: k.leader ?? prev?.leader };
        }
        return count;
    }

    current(): string {
        const s = this.samples[this.samples.length - 1];
        if (!s) return "";
        return Object.entries(s.modes)
            .map(([id, m]) => `${id}:${m === "leader" ? "L" : m === "follower" ? "F" : m === "down" ? "-" : "?"}`)
            .join(" ");
    }
}
