// Yelp's "mitosis": a dedicated ensemble split off a shared one (seed 003).
//
// Source S (n servers) keeps serving its other users throughout; target T (m servers, empty)
// ends up with the migrating clients' data. Active targets T' join S as a joint ensemble,
// the rest stay dormant so that S alone is a majority of S+T' (|T'| <= n-1): that is what keeps
// the source serving when the firewall splits the targets off.
import type { MitosisConfig, ServerSpec } from "../config";
import { phaseIndex, type MitosisPhase } from "../phases";
import type { DesiredState, FirewallSplit, Membership, ServerState } from "../types";
import { connectString, hostMembership } from "./common";

export function mitosisDesired(e: MitosisConfig, phase: MitosisPhase = e.phase as MitosisPhase): DesiredState {
    const at = (p: MitosisPhase) => phaseIndex("mitosis", phase) >= phaseIndex("mitosis", p);
    const active = e.target.filter((t) => e.active.includes(t.id));
    const m = (servers: ServerSpec[]) => hostMembership(servers, e.ports, e.quorumListenOnAllIPs);
    const source = m(e.source);
    const joint = m([...e.source, ...active]);
    const target = m(e.target);

    // Written: the joint config from `joined`; the final ones from `prepared` on.
    // Running: sources keep the joint membership until `source-restarted`, targets until `split`.
    const sourceWritten = at("prepared") ? source : at("joined") ? joint : source;
    const sourceRunning = at("source-restarted") ? source : at("joined") ? joint : source;
    const activeWritten = at("prepared") ? target : at("joined") ? joint : target;
    const activeRunning = at("split") ? target : at("joined") ? joint : target;

    // Wiping (moving aside) a target's data: an empty target's own epoch history must never
    // compete with the source's in an election (ZooKeeper compares epochs before zxids).
    //  - active targets: while they run the joint membership (the same restart text from `joined`
    //    to `prepared`, so only the join itself restarts them); never at the split, where their
    //    data is the migrated data;
    //  - dormant targets: from the split on, when they first start into the target ensemble.
    const wipeActive = at("joined") && !at("split");
    const wipeDormant = at("split");

    const server = (s: ServerSpec, role: "source" | "target", written: Membership, runningWith: Membership, running: boolean, dormant: boolean, wipe: boolean): ServerState => ({
        id: s.id,
        role,
        host: s.host,
        sshHost: s.sshHost,
        location: "host",
        running,
        written,
        runningWith,
        dormant,
        wipeDataOnStart: wipe,
        decommissioned: false,
    });

    const servers: ServerState[] = [
        ...e.source.map((s) => server(s, "source", sourceWritten, sourceRunning, true, false, false)),
        ...e.target.map((t) => {
            if (e.active.includes(t.id)) {
                return server(t, "target", activeWritten, activeRunning, true, false, wipeActive);
            }
            // Dormant: runs as part of the empty target ensemble in `separate`, stays stopped while
            // the joint ensemble exists, and starts with the others at the split.
            const dormantNow = at("joined") && !at("split");
            return server(t, "target", target, target, !dormantNow, dormantNow, wipeDormant);
        }),
    ];

    // The split: each target host rejects TCP to and from every source host until the sources
    // run their S-only membership (they still list the active targets until then).
    const firewall: FirewallSplit[] =
        at("split") && !at("done")
            ? e.target.map((t) => ({ id: t.id, host: t.host, peers: e.source.map((s) => s.host) }))
            : [];

    const old = connectString(e.source.map((s) => ({ id: s.id, address: s.host })), e.ports.client, e.chroot);
    const next = connectString(e.target.map((s) => ({ id: s.id, address: s.host })), e.ports.client, e.newChroot ?? e.chroot);
    // Kafka brokers move with the clients: from `clients` on they run with the new connect string
    // (restarted once, in that phase; later phases leave them alone).
    const kafka = e.kafka ? { brokers: e.kafka.brokers, settings: e.kafka.settings, connect: at("clients") ? next : old } : undefined;
    return {
        ensemble: e.name,
        procedure: "mitosis",
        phase,
        servers,
        firewall,
        clients: { old, next, current: at("clients") ? next : old, ...(kafka ? { kafka } : {}) },
        preflight: phase === "separate",
    };
}
