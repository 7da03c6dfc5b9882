// Re-adoption's phase matching: the probe's output for servers in each mitosis phase (made from
// that phase's desired state, as the hosts would show it), parsed and matched against every phase;
// servers that disagree; phases that look alike and the operator's --phase; what cannot be adopted.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { adoptionReport, matchPhases, parseProbe, parseServerLine, type Observation } from "../../../src/adopt";
import { appliedOf, type MitosisConfig } from "../../../src/config";
import { membershipLines } from "../../../src/format/zoo-cfg";
import { MITOSIS_PHASES, mitosisDesired } from "../../../src/procedures/mitosis";
import type { DesiredState, ServerState } from "../../../src/types";
import { devFleet } from "../../fixtures";

const fleet = devFleet();
const mitosis = fleet.ensembles.find((e) => e.procedure === "mitosis") as MitosisConfig;
const kubernetes = fleet.ensembles.find((e) => e.procedure === "kubernetes")!;

interface Tweak {
    /** srvr's Node count per role (default: sources 500, targets as the phase implies). */
    sourceZnodes?: number;
    targetZnodes?: number;
    /** conf refused (not in the whitelist): no running membership. */
    noConf?: boolean;
}

/** The probe's output for server `s` of desired state `d`, as src/scripts/adopt.ts prints it. */
function probeOutput(d: DesiredState, s: ServerState, t: Tweak): string {
    const lines: string[] = [];
    for (const l of membershipLines(s.written)) lines.push(`cfg ${l}`);
    lines.push(`myid ${s.id}`);
    if (s.running) {
        const targetsSplit = s.role === "target" && s.runningWith.members.every((m) => d.servers.find((x) => x.id === m.id)?.role === "target");
        const count = s.role === "source" ? (t.sourceZnodes ?? 500) : (t.targetZnodes ?? (d.phase === "separate" ? 4 : targetsSplit ? 500 : 500));
        lines.push("port open", "srvr Zookeeper version: 3.9.3-xxx, built on 2024-10-17", "srvr Latency min/avg/max: 0/0.0/0", `srvr Mode: ${s.id === 3 ? "leader" : "follower"}`, `srvr Node count: ${count}`, "srvr-rc 0");
        if (t.noConf) lines.push("conf conf is not executed because it is not in the whitelist.", "conf-rc 0");
        else lines.push("conf clientPort=2181", "conf serverId=" + s.id, "conf membership: ", ...s.runningWith.members.map((m) => `conf server.${m.id}=${m.address}:${m.peerPort}:${m.electionPort}:participant;0.0.0.0:2181`), "conf version=0", "conf-rc 0");
    } else {
        lines.push("port closed");
    }
    if (d.firewall.some((f) => f.id === s.id)) {
        lines.push("fw iptables chain ZKM-kafka-main-x-IN", "fw iptables chain ZKM-kafka-main-x-OUT", "fw iptables jump INPUT", "fw iptables jump OUTPUT");
    }
    lines.push("fw ip6tables missing", "end", "");
    return lines.join("\n");
}

/** What the hosts show when the ensemble is in `phase`, parsed as adopt parses it. */
function observe(phase: string, t: Tweak = {}): Observation[] {
    const d = mitosisDesired(mitosis, phase);
    return d.servers.map((s) => parseProbe(s.id, s.host, probeOutput(d, s, t)));
}

/** The server-visible fingerprint of a phase: config, running, running membership, firewall. */
function visible(phase: string): string {
    const d = mitosisDesired(mitosis, phase);
    return JSON.stringify(d.servers.map((s) => [s.id, membershipLines(s.written), s.running, s.running ? membershipLines(s.runningWith) : null, d.firewall.some((f) => f.id === s.id)]));
}

const edit = (obs: Observation[], id: number, f: (o: Observation) => Observation) => obs.map((o) => (o.id === id ? f(o) : o));

describe("adopt: parsing the probe", () => {
    const cases: [string, ReturnType<typeof parseServerLine>][] = [
        ["server.1=192.0.2.1:2888:3888", { member: { id: 1, address: "192.0.2.1", peerPort: 2888, electionPort: 3888 }, role: "participant" }],
        [" server.12 = zk-12.example:2888:3888:participant;2181", { member: { id: 12, address: "zk-12.example", peerPort: 2888, electionPort: 3888 }, role: "participant" }],
        ["server.3=[2001:db8::3]:2888:3888;[::]:2181", { member: { id: 3, address: "2001:db8::3", peerPort: 2888, electionPort: 3888 }, role: "participant" }],
        ["server.4=192.0.2.4:2888:3888:observer", { member: { id: 4, address: "192.0.2.4", peerPort: 2888, electionPort: 3888 }, role: "observer" }],
        ["server.5=192.0.2.5:2888", { error: 'server.5: expected address:peerPort:electionPort in "192.0.2.5:2888"' }],
        ["server.6=192.0.2.6", { error: 'server.6: no ports in "192.0.2.6"' }],
        ["server.7=192.0.2.7:2888:3888:witness", { error: 'server.7: unknown role "witness"' }],
    ];
    for (const [line, want] of cases) {
        it(line, () => assert.deepEqual(parseServerLine(line), want));
    }

    it("the dynamic config file's server lines replace zoo.cfg's; quorumListenOnAllIPs from zoo.cfg; observers keep their flag; a missing end is a problem", () => {
        const o = parseProbe(1, "h1", ["cfg server.9=192.0.2.9:2888:3888", "cfg quorumListenOnAllIPs = TRUE", "cfg dynamicConfigFile=/etc/zk/dyn", "dyn server.1=192.0.2.1:2888:3888;2181", "dyn server.2=192.0.2.2:2888:3888:observer", "myid 1", "port closed", "fw iptables error Permission denied", "end"].join("\n"));
        assert.deepEqual(o.membership, {
            members: [
                { id: 1, address: "192.0.2.1", peerPort: 2888, electionPort: 3888 },
                { id: 2, address: "192.0.2.2", peerPort: 2888, electionPort: 3888, observer: true },
            ],
            quorumListenOnAllIPs: true,
        });
        assert.deepEqual(o.configProblems, []);
        assert.equal(o.firewall.state, "unknown");
        assert.equal(o.error, undefined);
        assert.equal(parseProbe(1, "h1", "cfg server.1=a:1:2\n").error, "the probe's output ends early (no end line)");
    });

    it("a listening server without a Mode does not serve; the first answer line says why", () => {
        const o = parseProbe(1, "h1", "cfg server.1=a:1:2\nmyid 1\nport open\nsrvr This ZooKeeper instance is not currently serving requests\nsrvr-rc 0\nfw iptables missing\nend\n");
        assert.equal(o.listening, true);
        assert.equal(o.mode, undefined);
        assert.equal(o.srvrProblem, "This ZooKeeper instance is not currently serving requests");
    });
});

describe("adopt: matching every mitosis phase", () => {
    for (const phase of MITOSIS_PHASES) {
        it(`servers in ${phase}`, () => {
            const obs = observe(phase);
            const r = matchPhases(mitosis, obs);
            // The phases that match: those that look the same on the servers, less what the data tells apart.
            const alike = MITOSIS_PHASES.filter((p) => visible(p) === visible(phase)).filter((p) => !((phase === "separate" && p === "done") || (phase === "done" && p === "separate")));
            assert.deepEqual(r.candidates, alike, adoptionReport(r));
            if (alike.length === 1) {
                assert.equal(r.phase, phase);
                assert.deepEqual(r.record, appliedOf({ ...mitosis, phase }), "the record `pulumi up` writes for the phase");
                assert.equal(r.refusal, undefined);
            } else {
                assert.equal(r.record, undefined);
                assert.match(r.refusal!, new RegExp(`the servers match ${alike.length} phases \\(${alike.join(", ")}\\).*Choose the one the fleet is in with --phase kafka-main=<phase>`));
                const chosen = matchPhases(mitosis, obs, phase);
                assert.deepEqual(chosen.record, appliedOf({ ...mitosis, phase }));
            }
        });
    }

    it("joined and clients look alike: the refusal says they differ in where the clients point; --phase picks one", () => {
        const r = matchPhases(mitosis, observe("joined"));
        assert.ok(r.candidates.includes("joined") && r.candidates.includes("clients"), r.candidates.join(","));
        assert.match(r.refusal!, /joined and clients differ in where the clients point \(joined: 192\.0\.2\.1:2181,192\.0\.2\.2:2181,192\.0\.2\.3:2181\/kafka; clients: 192\.0\.2\.4:2181,192\.0\.2\.5:2181,192\.0\.2\.6:2181\/kafka\), the Kafka brokers' zookeeper\.connect/);
        const c = matchPhases(mitosis, observe("joined"), "clients");
        assert.equal(c.phase, "clients");
        assert.deepEqual(c.record, appliedOf({ ...mitosis, phase: "clients" }));
    });

    it("separate and done differ only in the data: empty targets are separate, targets with the source's data are done", () => {
        assert.deepEqual(matchPhases(mitosis, observe("separate")).candidates, ["separate"]);
        assert.deepEqual(matchPhases(mitosis, observe("done")).candidates, ["done"]);
        // A nearly empty source: nothing tells them apart, the operator chooses.
        const r = matchPhases(mitosis, observe("done", { sourceZnodes: 4, targetZnodes: 4 }));
        assert.deepEqual(r.candidates, ["separate", "done"]);
        assert.match(r.refusal!, /separate and done differ in where the clients point/);
    });

    it("without conf (not whitelisted) the config files and running/stopped decide; the refusal says when conf would tell", () => {
        const noConf = (phase: string) => {
            const d = mitosisDesired(mitosis, phase);
            return JSON.stringify(d.servers.map((s) => [s.id, membershipLines(s.written), s.running, d.firewall.some((f) => f.id === s.id)]));
        };
        for (const phase of MITOSIS_PHASES) {
            const r = matchPhases(mitosis, observe(phase, { noConf: true }));
            const alike = MITOSIS_PHASES.filter((p) => noConf(p) === noConf(phase)).filter((p) => !((phase === "separate" && p === "done") || (phase === "done" && p === "separate")));
            assert.deepEqual(r.candidates, alike, phase);
            if (alike.length > 1 && alike.some((p) => visible(p) !== visible(phase))) {
                assert.match(r.refusal!, /the membership the servers run with \(not visible without `conf` in the four-letter-word whitelist\)/, phase);
            }
        }
    });
});

describe("adopt: refusals", () => {
    it("servers that disagree with every phase: a source stopped in joined", () => {
        const obs = edit(observe("joined"), 1, (o) => ({ ...o, listening: false, mode: undefined, nodeCount: undefined, runningMembers: undefined }));
        const r = matchPhases(mitosis, obs);
        assert.deepEqual(r.candidates, []);
        assert.equal(r.record, undefined);
        assert.match(r.refusal!, /^the servers match no mitosis phase/);
        assert.match(r.refusal!, /\n {2}joined:\n {6}myid 1: stopped \(nothing listens on its client port 2181\), expected running\n/);
        assert.match(r.refusal!, /\n {2}separate:\n(.*\n)* {6}myid 1: zoo\.cfg lists servers 1,2,3,4,5, expected 1,2,3\n/);
        const report = adoptionReport(r);
        assert.match(report, /^kafka-main \(mitosis\): not adopted\n {2}myid 1 192\.0\.2\.1: stopped; zoo\.cfg 1,2,3,4,5; firewall absent\n {2}myid 2 192\.0\.2\.2: follower, 500 znodes; zoo\.cfg 1,2,3,4,5, runs with 1,2,3,4,5; firewall absent/);
    });

    it("a roll that stopped half-way: one source still on S in joined", () => {
        const sOnly = observe("separate").find((o) => o.id === 2)!;
        const r = matchPhases(mitosis, edit(observe("joined"), 2, () => sOnly));
        assert.deepEqual(r.candidates, []);
        assert.match(r.refusal!, /joined:\n {6}myid 2: zoo\.cfg lists servers 1,2,3, expected 1,2,3,4,5\n {6}myid 2: runs with servers 1,2,3 \(conf\), expected 1,2,3,4,5/);
    });

    it("the same ids on another address, another myid, a partial firewall, a server that listens but does not serve", () => {
        const base = observe("split");
        const moved = edit(base, 4, (o) => ({ ...o, membership: { ...o.membership!, members: o.membership!.members.map((m) => (m.id === 5 ? { ...m, address: "192.0.2.55" } : m)) } }));
        assert.match(matchPhases(mitosis, moved).phases.find((p) => p.phase === "split")!.differences.join("\n"), /myid 4: zoo\.cfg lists server\.5=192\.0\.2\.55:2888:3888 \(expected server\.5=192\.0\.2\.5:2888:3888\)/);
        const myid = edit(base, 4, (o) => ({ ...o, myid: "7" }));
        assert.ok(matchPhases(mitosis, myid).phases.every((p) => p.differences.includes('myid 4: its myid file holds "7"')));
        const partial = edit(base, 5, (o) => ({ ...o, firewall: { state: "partial" } }));
        assert.deepEqual(matchPhases(mitosis, partial).candidates, []);
        assert.ok(matchPhases(mitosis, partial).phases.every((p) => p.differences.includes("myid 5: the firewall split is there only in part (a chain or a jump is missing)")));
        const notServing = edit(base, 6, (o) => ({ ...o, mode: undefined, srvrProblem: "This ZooKeeper instance is not currently serving requests" }));
        assert.deepEqual(matchPhases(mitosis, notServing).candidates, []);
        assert.ok(matchPhases(mitosis, notServing).phases.find((p) => p.phase === "split")!.differences.includes("myid 6: listens but does not serve (srvr: This ZooKeeper instance is not currently serving requests)"));
    });

    it("a server not read: refused before any phase is tried", () => {
        const obs = edit(observe("split"), 6, (o) => ({ ...o, error: "ssh exit 255: Host key verification failed." }));
        const r = matchPhases(mitosis, obs);
        assert.deepEqual(r.phases, []);
        assert.equal(r.refusal, "not every server could be read, so the servers cannot be shown to agree:\n  myid 6 (192.0.2.6): ssh exit 255: Host key verification failed.");
    });

    it("--phase: a phase the servers are not in is refused with why; an unknown phase names the phases", () => {
        const r = matchPhases(mitosis, observe("joined"), "split");
        assert.equal(r.record, undefined);
        assert.match(r.refusal!, /^--phase kafka-main=split: the servers are not in split:\n {2}myid 4: zoo\.cfg lists servers 1,2,3,4,5, expected 4,5,6\n(.*\n)*they match: joined, clients, prepared/);
        assert.match(matchPhases(mitosis, observe("joined"), "jointed").refusal!, /^--phase kafka-main=jointed: not a mitosis phase \(one of: separate, joined,/);
    });

    it("kubernetes is not adopted from the hosts (its state is in the cluster too)", () => {
        const r = matchPhases(kubernetes, []);
        assert.equal(r.record, undefined);
        assert.match(r.refusal!, /^the kubernetes procedure's phases live in the cluster as much as on the hosts/);
    });
});
