// Every rendered script, over a matrix of inputs: shellcheck-clean and built the same way
// (shebang, strict mode, quoted readonly parameters at the top, everything inside main).
import assert from "node:assert/strict";
import { renderFenceTimer, renderSplitCatchup, renderSplitFence } from "../../../src/scripts/fence";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import {
    asRemoteCommand,
    commandsOf,
    renderGate,
    renderSplitArm,
    renderSwitch,
    firewallChainName,
    renderFirewallApply,
    renderFirewallRemove,
    renderHealthGate,
    renderPreflight,
    renderRestart,
    renderStop,
    renderWriteConfig,
} from "../../../src/scripts";
import type { HostSettings, Membership } from "../../../src/types";
import { renderAdoptProbe } from "../../../src/scripts/adopt";
import { renderReconfigChange, renderReconfigStart } from "../../../src/scripts/reconfig";
import { shellcheck } from "./harness";

function host(o: { dynamic: boolean; dataLogDir: boolean }): HostSettings {
    return {
        paths: {
            configFile: "/etc/zookeeper/conf/zoo.cfg",
            myidFile: "/var/lib/zookeeper/myid",
            dataDir: "/var/lib/zookeeper",
            ...(o.dataLogDir ? { dataLogDir: "/var/log/zookeeper-txn" } : {}),
            ...(o.dynamic ? { dynamicConfigFile: "/etc/zookeeper/conf/zoo.cfg.dynamic" } : {}),
        },
        service: {
            start: "systemctl start zookeeper",
            stop: "systemctl stop zookeeper",
            restart: "systemctl restart 'zookeeper'",
            status: "systemctl status zookeeper --no-pager",
            disable: "systemctl disable zookeeper",
        },
        clientPort: 2181,
        healthTimeoutSeconds: 120,
    };
}

const v4: Membership = {
    members: [1, 2, 3].map((id) => ({ id, address: `192.0.2.${id}`, peerPort: 2888, electionPort: 3888 })),
    quorumListenOnAllIPs: false,
};
const v6: Membership = {
    members: [
        { id: 1, address: "2001:db8::1", peerPort: 2888, electionPort: 3888 },
        { id: 2, address: "zk-2.zookeeper.svc.cluster.local", peerPort: 2888, electionPort: 3888 },
    ],
    quorumListenOnAllIPs: true,
};

const observed: Membership = { members: [...v4.members, { id: 9, address: "192.0.2.9", peerPort: 2888, electionPort: 3888, observer: true }], quorumListenOnAllIPs: false };

function matrix(): [string, string][] {
    const out: [string, string][] = [];
    for (const dynamic of [false, true]) {
        for (const dataLogDir of [false, true]) {
            const h = host({ dynamic, dataLogDir });
            const at = `dynamic=${dynamic} dataLogDir=${dataLogDir}`;
            for (const [name, m] of [["v4", v4], ["v6", v6]] as const) {
                out.push([`renderWriteConfig ${name} ${at}`, renderWriteConfig({ host: h, myid: 1, membership: m })]);
            }
            for (const mode of ["restart", "start"] as const) {
                for (const wipeData of [false, true]) {
                    for (const expect of [undefined, v4, v6]) {
                        out.push([
                            `renderRestart ${mode} wipe=${wipeData} expect=${expect === v4 ? "v4" : expect ? "v6" : "none"} ${at}`,
                            renderRestart({ host: h, myid: 1, mode, wipeData, spacingSeconds: mode === "start" ? 0 : 10, expect }),
                        ]);
                    }
                }
            }
            // The observer join: observer lines, peerType on an observer, the planned observers accepted.
            out.push([`renderWriteConfig observer ${at}`, renderWriteConfig({ host: h, myid: 9, membership: observed })]);
            out.push([`renderRestart observer wipe ${at}`, renderRestart({ host: h, myid: 9, mode: "restart", wipeData: true, spacingSeconds: 10, expect: observed, before: v4 })]);
            out.push([`renderRestart observer leaves ${at}`, renderRestart({ host: h, myid: 1, mode: "restart", wipeData: true, spacingSeconds: 10, expect: v4, before: observed })]);
            out.push([`renderPreflight observers ${at}`, renderPreflight({ host: h, reach: [], requireCommands: [], observers: { ids: [9], observer: true } })]);
            for (const disable of [false, true]) out.push([`renderStop disable=${disable} ${at}`, renderStop({ host: h, disable })]);
            out.push([`renderHealthGate ${at}`, renderHealthGate({ host: h })]);
            for (const wipeData of [false, true]) {
                const seed = [
                    { id: 1, address: "192.0.2.1", peerPort: 2888, electionPort: 3888 },
                    { id: 2, address: "2001:db8::2", peerPort: 2888, electionPort: 3888, observer: true as const },
                ];
                out.push([`renderReconfigStart wipe=${wipeData} ${at}`, renderReconfigStart({ host: h, myid: 1, seed, wipeData, spacingSeconds: 5 })]);
            }
            for (const auth of [false, true]) {
                const add = [{ id: 4, address: "192.0.2.4", peerPort: 2888, electionPort: 3888 }];
                out.push([`renderReconfigChange add auth=${auth} ${at}`, renderReconfigChange({ host: h, cli: "/opt/zookeeper/bin/zkCli.sh", add, remove: [], auth })]);
                out.push([`renderReconfigChange remove auth=${auth} ${at}`, renderReconfigChange({ host: h, cli: "/opt/zookeeper/bin/zkCli.sh", add: [], remove: [4, 5], auth })]);
            }
            out.push([`renderAdoptProbe ${at}`, renderAdoptProbe({ host: h, chain: firewallChainName("kafka-main") })]);
            out.push([`renderPreflight minimal ${at}`, renderPreflight({ host: h, reach: [], requireCommands: [] })]);
            out.push([
                `renderPreflight full ${at}`,
                renderPreflight({
                    host: h,
                    reach: [
                        { address: "192.0.2.1", port: 2888 },
                        { address: "2001:db8::1", port: 3888 },
                    ],
                    requireCommands: ["iptables", "getent"],
                    noLeftoverChain: firewallChainName("kafka-main"),
                    emptyTarget: { maxZnodes: 5 },
                    resolveNames: ["zk-1.zookeeper.svc.cluster.local"],
                }),
            ]);
        }
    }
    const chain = firewallChainName("kafka-main");
    const tag = "zkmigrate:kafka-main";
    for (const [name, peers] of [
        ["v4", ["192.0.2.1", "192.0.2.0/24"]],
        ["v6", ["2001:db8::1"]],
        ["mixed", ["192.0.2.1", "2001:db8::/32"]],
    ] as const) {
        out.push([`renderFirewallApply ${name}`, renderFirewallApply({ chain, tag, peers: [...peers] })]);
        out.push([`renderFirewallRemove ${name}`, renderFirewallRemove({ chain, tag, peers: [...peers] })]);
        // The split's gate, arm (with the switch inside), the commit in a restart, the removal that forgets the switch.
        const h = host({ dynamic: false, dataLogDir: false });
        const attempt = { startedAt: 1_800_000_000 };
        const deadman = { seconds: 400, commitBySeconds: 120, probeSeconds: 10, partners: [{ address: "192.0.2.5", port: 2181 }, { address: "2001:db8::6", port: 2181 }] };
        out.push([`renderGate ${name}`, renderGate({ host: h, ensemble: "kafka-main", attempt, gate: { guards: "the firewall split", serving: true, firewallPeers: [...peers], deadman } })]);
        out.push([`renderSplitArm ${name}`, renderSplitArm({ host: h, ensemble: "kafka-main", peers: [...peers], deadman, attempt })]);
        out.push([`renderSwitch ${name}`, renderSwitch({ host: h, ensemble: "kafka-main", peers: [...peers], deadman, attempt })]);
        out.push([`renderFirewallRemove+forget ${name}`, commandsOf({ id: "firewall-4", after: [], kind: "firewall", target: { host: "192.0.2.4" }, server: 4, ensemble: "kafka-main", peers: [...peers], settings: h }).delete!]);
    }
    const h = host({ dynamic: false, dataLogDir: false });
    out.push([`renderGate restarts only`, renderGate({ host: h, ensemble: "kafka-main", attempt: { startedAt: 1 }, gate: { guards: "restarts of 4+5 together", serving: false } })]);
    const target = "4=192.0.2.4:2888:3888,5=192.0.2.5:2888:3888";
    out.push(["renderSplitFence", renderSplitFence({ host: h, ensemble: "kafka-main", fence: { seconds: 400, target }, attempt: { startedAt: 1_800_000_000 } })]);
    out.push(["renderSplitCatchup", renderSplitCatchup({ host: h, ensemble: "kafka-main", catchup: { sources: [{ address: "192.0.2.1", port: 2181 }, { address: "2001:db8::2", port: 2181 }], target } })]);
    out.push(["renderFenceTimer", renderFenceTimer({ host: h, ensemble: "kafka-main", attempt: { startedAt: 1_800_000_000 }, deadline: 1_800_000_400 })]);
    out.push(["renderRestart that lifts the split's fence", commandsOf({ id: "restart-4", after: [], kind: "restart", target: { host: "192.0.2.4" }, server: 4, settings: h, running: true, membership: { members: [{ id: 4, address: "192.0.2.4", peerPort: 2888, electionPort: 3888 }], quorumListenOnAllIPs: false }, wipeData: false, spacingSeconds: 0, unfence: { ensemble: "kafka-main", target } }).update!]);
    out.push(["renderReconfigStart that lifts the split's fence", renderReconfigStart({ host: host({ dynamic: true, dataLogDir: false }), myid: 4, seed: [{ id: 4, address: "192.0.2.4", peerPort: 2888, electionPort: 3888 }], wipeData: false, spacingSeconds: 0, unfence: { ensemble: "kafka-main", target } })]);
    out.push(["renderSplitCommit (an armed host's firewall step)", commandsOf({ id: "firewall-4", after: [], kind: "firewall", target: { host: "192.0.2.4" }, server: 4, settings: h, ensemble: "kafka-main", peers: ["192.0.2.1"], commit: true }).create]);
    return out;
}

describe("shellcheck itself", () => {
    it("is required: without it on PATH the check fails and names the Debian package", () => {
        const path = process.env.PATH;
        process.env.PATH = "/zkmigrate-nonexistent";
        try {
            assert.throws(() => shellcheck("#!/usr/bin/env bash\n"), /Debian package `shellcheck`/);
        } finally {
            process.env.PATH = path;
        }
    });
});

describe("rendered scripts", () => {
    const scripts = matrix();

    it("are clean under shellcheck -s bash (all of them)", { timeout: 300_000 }, () => {
        assert.ok(scripts.length > 60, `${scripts.length} scripts`);
        const findings = scripts.map(([name, s]) => [name, shellcheck(s)]).filter(([, f]) => f !== "");
        assert.deepEqual(findings, []);
    });

    it("have the same frame: shebang, strict mode, quoted readonly parameters, main with stdin from /dev/null", () => {
        for (const [name, s] of scripts) {
            const lines = s.split("\n");
            assert.equal(lines[0], "#!/usr/bin/env bash", name);
            assert.equal(lines[1], "set -euo pipefail", name);
            const params = lines.slice(lines.indexOf("# Parameters.") + 1, lines.indexOf("", lines.indexOf("# Parameters.")));
            assert.ok(params.length > 0, name);
            for (const p of params) {
                assert.match(p, /^readonly (?:[A-Z][A-Z0-9_]*='(?:[^']|'\\'')*'|-a [A-Z][A-Z0-9_]*=\((?:'(?:[^']|'\\'')*'(?: '(?:[^']|'\\'')*')*)?\))$/, `${name}: ${p}`);
            }
            assert.equal(lines.at(-2), "main </dev/null", name);
            assert.doesNotMatch(s, /undefined|\[object |NaN/, name);
            assert.doesNotThrow(() => asRemoteCommand(s), name);
        }
    });

    it("stay clean when wrapped for the remote login shell (shellcheck -s sh sees a heredoc)", () => {
        const [, s] = scripts[0];
        const r = spawnSync("shellcheck", ["-s", "sh", "-"], { input: asRemoteCommand(s), encoding: "utf8", timeout: 60_000 });
        assert.equal(r.status, 0, r.stdout);
    });
});
