// Every remote command pins its host's key (components/ssh.ts connectionOf): through every update
// of Pulumi.dev.yaml (ZooKeeper hosts, Kafka brokers, decommissioned hosts) and of a block & copy
// (the copy's host, the client hosts), each `command:remote:Command` carries the key the config
// gives the host it connects to, and no command runs without one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, type FleetConfig } from "../../src/config";
import { BLOCK_COPY_PHASES } from "../../src/procedures/block-copy";
import { blockCopyRaw, devFleet, devRawConfig, TEST_HOST_KEY } from "../fixtures";
import { WALKTHROUGH, LEADERS } from "../policy/program";
import { appliedAfter, runFleet, type FleetRun } from "./harness";

/** The connection of every remote command of a run: host and hostKey (secrets unwrapped). */
function connections(run: FleetRun): { name: string; host: string; hostKey?: string }[] {
    return run.resources
        .filter((r) => r.type === "command:remote:Command")
        .map((r) => {
            const c = r.inputs.connection.value ?? r.inputs.connection;
            return { name: r.name, host: c.host, hostKey: c.hostKey };
        });
}

describe("remote commands carry their host's key (mocks)", () => {
    it("Pulumi.dev.yaml, every update: each command's hostKey is its host's line of zkmigrate:sshKnownHosts", async () => {
        const keys = new Map(
            (devRawConfig().sshKnownHosts as string)
                .trim()
                .split("\n")
                .map((l) => l.trim().split(/\s+/))
                .map(([host, type, key]) => [host, `${type} ${key}`]),
        );
        let prev: FleetConfig | undefined;
        const hostsSeen = new Set<string>();
        let count = 0;
        for (const step of WALKTHROUGH) {
            const config = devFleet({ "kafka-main": step.kafka, shared: step.shared }, step.cutover);
            const run = await runFleet(config, prev ? appliedAfter(prev) : {}, LEADERS);
            for (const c of connections(run)) {
                assert.ok(keys.has(c.host), `${step.kafka}/${step.shared}: ${c.name} connects to ${c.host}, a host of the dev stack`);
                assert.equal(c.hostKey, keys.get(c.host), `${step.kafka}/${step.shared}: ${c.name} pins ${c.host}'s key`);
                hostsSeen.add(c.host);
                count++;
            }
            prev = config;
        }
        // Every ZooKeeper host and broker host of the dev stack was reached at least once.
        const expected = [1, 2, 3, 4, 5, 6, 21, 22, 23].map((n) => `192.0.2.${n}`).concat([11, 12, 13].map((n) => `198.51.100.${n}`));
        assert.deepEqual([...hostsSeen].sort(), expected.sort());
        assert.ok(count > 50, `${count} remote commands checked`);
    });

    it("block & copy, every phase: the copy's host and each client host (reached through its sshHost)", async () => {
        const extra = { copy: { runOn: { host: "192.0.2.30", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFm0me8ucWb1gYqU33WkVuzi8yYPr1f/kIBCchWMOdwy copy-host" } } };
        let prev: FleetConfig | undefined;
        const seen = new Set<string>();
        for (const phase of BLOCK_COPY_PHASES) {
            const config = loadConfig(blockCopyRaw(phase, extra));
            const run = await runFleet(config, prev ? appliedAfter(prev) : {});
            for (const c of connections(run)) {
                // The copy host's own hostKey (its comment dropped); the clients' from the test known_hosts.
                const want = c.host === "192.0.2.30" ? "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFm0me8ucWb1gYqU33WkVuzi8yYPr1f/kIBCchWMOdwy" : TEST_HOST_KEY;
                assert.equal(c.hostKey, want, `${phase}: ${c.name} on ${c.host}`);
                seen.add(c.host);
            }
            prev = config;
        }
        assert.deepEqual([...seen].sort(), ["10.0.0.22", "192.0.2.21", "192.0.2.30"]);
    });
});
