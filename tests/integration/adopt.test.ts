// Re-adoption on real servers: a local fleet (hosts in network namespaces, real sshd with pinned
// host keys, real ZooKeeper) is taken from mitosis `separate` to `joined` by the model's own steps;
// `zkmigrate adopt` then reads every host over SSH and prints the record `pulumi up` writes for
// that phase (appliedOf, what components/fleet.ts exports as `applied`). joined, clients and
// prepared look alike on the hosts, so it asks for --phase; fed back as zkmigrate:adopted, the next preview of
// `joined` has no host change. A stopped server makes it refuse, naming that server.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { EXIT, main } from "../../cli/zkmigrate";
import { connectString, host as fleetHost, runScript, stackHostConfig, stackSshConfig, type LocalFleet } from "../../rehearsal/fleet";
import { DEFAULT_ZK_VERSION } from "../../rehearsal/zookeeper";
import { appliedOf, mergeAdopted, validateTransitions, type EnsembleConfig } from "../../src/config";
import { sameMembership } from "../../src/format/zoo-cfg";
import { desiredState, planEnsemble } from "../../src/model";
import { firewallChainName, renderFirewallApply, renderStop } from "../../src/scripts";
import { probeLeaders } from "../../src/zk/four-letter";
import { fleetName, useFleet } from "./helpers/fleet";
import { ensembleConfig, runRestarts, serversOf, writeConfigs } from "./helpers/steps";
import { openClient, writeData } from "./helpers/zk";

const NAME = "kafka-main";
const version = DEFAULT_ZK_VERSION;

describe(`zkmigrate adopt on a local fleet, ZooKeeper ${version}`, { timeout: 600_000 }, () => {
    const fleet = useFleet({
        name: fleetName("adopt-ad", version),
        version,
        ensembles: [
            { name: "source", servers: 3 },
            { name: "target", servers: 3 },
        ],
    });
    const dir = mkdtempSync(join(tmpdir(), "zkmigrate-adopt-"));
    after(() => rmSync(dir, { recursive: true, force: true }));

    /** The mitosis ensemble over the fleet, at `phase`, and its stack settings file. */
    function stack(f: LocalFleet, phase: string): { e: EnsembleConfig; file: string } {
        const ensemble = { name: NAME, procedure: "mitosis", joinAs: "voter", phase, source: serversOf(f, "source"), target: serversOf(f, "target"), targetEmpty: true, clients: { chroot: "/kafka" } };
        const file = join(dir, `Pulumi.adopt-${phase}.yaml`);
        const config = {
            // The fleet's pinned host keys, as the rehearsal's stack gets them.
            ...Object.fromEntries(Object.entries(stackSshConfig(f)).map(([k, v]) => [`zkmigrate:${k}`, v])),
            "zkmigrate:leaderProbe": false,
            "zkmigrate:defaults": { ...stackHostConfig(f), spacingSeconds: 1 },
            "zkmigrate:ensembles": [ensemble],
        };
        writeFileSync(file, stringify({ config }));
        return { e: ensembleConfig(f, ensemble, { spacingSeconds: 1 }), file };
    }

    const adopt = (f: LocalFleet, file: string, ...extra: string[]) => main(["adopt", "--stack-config", file, "--known-hosts", f.knownHosts, "--ssh-key", f.sshKey, ...extra]);

    it("adopts separate, then joined (with --phase among joined, clients and prepared), refuses a stopped server", async () => {
        const f = fleet();
        const seed = await openClient(connectString(f, "source"));
        try {
            await writeData(seed, "/kafka/data", 50);
        } finally {
            seed.close();
        }

        // separate: the source holds data, the targets are empty: only `separate` fits.
        const sep = stack(f, "separate");
        let r = await adopt(f, sep.file);
        assert.equal(r.exitCode, EXIT.ok, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), { [NAME]: appliedOf(sep.e) });
        assert.match(r.stderr, /^kafka-main \(mitosis\): adopted at phase separate\n/);
        // conf answers with the membership each server runs (the fleet whitelists it).
        assert.match(r.stderr, /myid 1 [0-9.]+: (leader|follower), \d+ znodes; zoo\.cfg 1,2,3, runs with 1,2,3; firewall absent/);
        assert.match(r.stderr, /myid 4 [0-9.]+: (leader|follower), \d znodes; zoo\.cfg 4,5,6, runs with 4,5,6; firewall absent/);

        // The join, as the model plans it: configs of the servers whose membership changes, then the restarts.
        const joined = stack(f, "joined");
        const fromSeparate = { [NAME]: appliedOf(sep.e) };
        const leader = await probeLeaders(serversOf(f, "source").map((s) => ({ id: s.id, address: s.host, port: 2181 })), 2000);
        const { desired, plan } = planEnsemble(joined.e, fromSeparate, leader);
        const before = desiredState(sep.e, "separate", []);
        const changed = desired.servers.filter((s) => !sameMembership(before.servers.find((x) => x.id === s.id)!.written, s.written));
        await writeConfigs(f, joined.e.host, changed.map((s) => ({ id: s.id, membership: s.written })));
        await runRestarts(f, joined.e.host, joined.e.spacingSeconds, plan.restartOrder, desired.servers);

        // joined and clients look alike on the hosts: refused, the operator chooses.
        r = await adopt(f, joined.file);
        assert.equal(r.exitCode, EXIT.checkFailed, r.stdout);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /the servers match 3 phases \(joined, clients, prepared\), which look alike on the servers: joined and clients differ in where the clients point/);
        assert.match(r.stderr, /myid 6 [0-9.]+: stopped; zoo\.cfg 4,5,6; firewall absent/);
        r = await adopt(f, joined.file, "--phase", `${NAME}=joined`);
        assert.equal(r.exitCode, EXIT.ok, r.stderr);
        const adopted = JSON.parse(r.stdout) as Record<string, { phase: string; running: Record<string, { running: boolean }> }>;
        // The very record the update to `joined` writes as the stack output `applied`.
        assert.deepEqual(adopted, { [NAME]: appliedOf(joined.e) });
        console.log(`  adopted ${NAME} at ${adopted[NAME].phase}: ${Object.entries(adopted[NAME].running ?? {}).map(([id, x]) => `${id}${x.running ? "" : " (stopped)"}`).join(", ")}`);

        // Fed back as zkmigrate:adopted to a stack without outputs: the preview of `joined` changes no host.
        const merged = mergeAdopted(adopted, {}, [joined.e]);
        assert.deepEqual(merged.issues, []);
        assert.deepEqual(validateTransitions([joined.e], merged.applied), []);
        const again = planEnsemble(joined.e, merged.applied, leader).plan;
        assert.deepEqual(again.restartOrder, [], "no server restarts or stops");
        // The same through the stack file, as the README's steps do it (adopt's stdout pasted under zkmigrate:adopted).
        const withAdopted = join(dir, "Pulumi.adopt-readopted.yaml");
        writeFileSync(withAdopted, readFileSync(joined.file, "utf8").replace("config:\n", `config:\n  zkmigrate:adopted: ${JSON.stringify(r.stdout)}\n`));
        const planned = await main(["plan", "--stack-config", withAdopted]);
        assert.equal(planned.exitCode, EXIT.ok, planned.stderr);
        assert.equal(planned.stdout, "kafka-main (mitosis): joined -> joined\n  no host, Kubernetes or client change in this update\n");

        // A server that stopped: the servers match no phase; the report names it.
        const stopped = await runScript(f, fleetHost(f, 2), renderStop({ host: joined.e.host, disable: false }), { timeoutMs: 120_000 });
        assert.equal(stopped.code, 0, stopped.stderr);
        r = await adopt(f, joined.file, "--phase", `${NAME}=joined`);
        assert.equal(r.exitCode, EXIT.checkFailed);
        assert.match(r.stderr, /--phase kafka-main=joined: the servers are not in joined:\n\s+myid 2: stopped \(nothing listens on its client port 2181\), expected running\n/);
        assert.match(r.stderr, /they match no phase/);

        // The firewall split on a target, read from its real iptables: present where no phase has one.
        const split = await runScript(f, fleetHost(f, 4), renderFirewallApply({ chain: firewallChainName(NAME), tag: `zkmigrate:${NAME}`, peers: serversOf(f, "source").map((s) => s.host) }), { timeoutMs: 60_000 });
        assert.equal(split.code, 0, split.stderr);
        r = await adopt(f, joined.file, "--phase", `${NAME}=joined`);
        assert.equal(r.exitCode, EXIT.checkFailed);
        assert.match(r.stderr, /myid 4 [0-9.]+: [^\n]*; firewall present\n/);
        assert.match(r.stderr, /\n\s+myid 4: the firewall split is there, expected none\n/);
    });
});
