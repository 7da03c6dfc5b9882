// Setting edits at an unchanged phase, with the real engine and provider against a local fleet
// (issue 12): an edit that needs no restart (spacing, the health timeout) runs nothing on any
// host; an edit that changes what the servers run (quorumListenOnAllIPs) restarts them one at a
// time, in the planned order (targets, source followers, the leader last), each after the other.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { LocalWorkspace, type EngineEvent, type Stack } from "@pulumi/pulumi/automation";
import { copyProject } from "../../rehearsal/engine";
import { hostsOf, stackHostConfig, stackSshConfig, type FleetHost } from "../../rehearsal/fleet";
import { useEngine } from "../helpers/engine";
import { useFleet } from "../integration/helpers/fleet";
import { parse, stringify } from "yaml";

const INSTALL_HINT = "run tools/pulumi/install.sh (it builds the Pulumi CLI, language host and command provider from Go modules)";
const ENSEMBLE = "edits";

/** Sessions the host's sshd authenticated so far (each remote command is one). */
const sessions = (h: FleetHost) => (fs.readFileSync(path.join(h.dir, "ssh", "sshd.log"), "utf8").match(/Accepted publickey/g) ?? []).length;

/** Records, per resource, when its step started and ended and what the engine did. */
function recorder() {
    const steps = new Map<string, { op: string; start: number; end?: number }>();
    const onEvent = (ev: EngineEvent) => {
        const pre = ev.resourcePreEvent?.metadata;
        if (pre && pre.op !== "same") steps.set(pre.urn.split("::").pop()!, { op: pre.op, start: Date.now() });
        const out = ev.resOutputsEvent?.metadata;
        if (out) {
            const s = steps.get(out.urn.split("::").pop()!);
            if (s) s.end = Date.now();
        }
    };
    return { steps, onEvent };
}

describe("setting edits at an unchanged phase, with the real engine", { timeout: 1_200_000 }, () => {
    const need = useEngine({ label: "zkmigrate-edits", installHint: INSTALL_HINT });
    const fleet = useFleet({ name: "eng-edits", ensembles: [{ name: "source", servers: 3, firstId: 1 }, { name: "target", servers: 3, firstId: 4 }] });

    it("spacing and timeouts run nothing; quorumListenOnAllIPs restarts one server at a time in the planned order", { timeout: 1_100_000 }, async () => {
        const e = need();
        const f = fleet();
        const sources = hostsOf(f, "source");
        const targets = hostsOf(f, "target");
        const all = [...sources, ...targets];
        const dir = path.join(e.tmp, "project");
        copyProject(dir);
        // Rewrites the stack's settings, keeping what the engine put there (the encryption salt and
        // the secret key that setConfig wrote).
        const file = path.join(dir, "Pulumi.edits.yaml");
        const write = (ensemble: Record<string, unknown>) => {
            const kept = fs.existsSync(file) ? (parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } & Record<string, unknown>) : {};
            fs.writeFileSync(
                file,
                stringify({
                    ...kept,
                    config: {
                        ...(kept.config?.["zkmigrate:sshPrivateKey"] ? { "zkmigrate:sshPrivateKey": kept.config["zkmigrate:sshPrivateKey"] } : {}),
                        "zkmigrate:sshUser": "root",
                        ...Object.fromEntries(Object.entries(stackSshConfig(f)).filter(([k]) => k !== "sshPrivateKey").map(([k, v]) => [`zkmigrate:${k}`, v])),
                        // The leader is read with srvr from here, as in production.
                        "zkmigrate:defaults": { ...stackHostConfig(f), spacingSeconds: 1 },
                        "zkmigrate:ensembles": [
                            {
                                name: ENSEMBLE,
                                procedure: "mitosis",
                                joinAs: "voter", // the seed's voter join (the default is observer)
                                phase: "separate",
                                source: sources.map((h) => ({ id: h.id, host: h.address })),
                                target: targets.map((h) => ({ id: h.id, host: h.address })),
                                targetEmpty: true,
                                ...ensemble,
                            },
                        ],
                    },
                }),
            );
        };
        write({});
        const stack: Stack = await LocalWorkspace.createStack({ stackName: "edits", workDir: dir }, { pulumiCommand: e.command, envVars: e.env });
        try {
            await stack.setConfig("zkmigrate:sshPrivateKey", { value: fs.readFileSync(f.sshKey, "utf8"), secret: true });
            const first = await stack.up();
            assert.equal(first.summary.result, "succeeded", first.stdout);

            // 1. Edits that need no restart: the preview shows no change on a host, and the update
            //    opens no SSH session anywhere.
            write({ spacingSeconds: 7, healthTimeoutSeconds: 200, service: { status: "true" } });
            const before = new Map(all.map((h) => [h.id, sessions(h)]));
            const quiet = recorder();
            const up = await stack.up({ onEvent: quiet.onEvent });
            assert.equal(up.summary.result, "succeeded", up.stdout);
            const changed = [...quiet.steps].filter(([name, s]) => name.startsWith(`${ENSEMBLE}-`) && s.op !== "same" && s.op !== "read");
            assert.deepEqual(changed, [], `resources changed by a spacing edit: ${JSON.stringify(changed)}`);
            for (const h of all) assert.equal(sessions(h), before.get(h.id), `no command ran on ${h.name}`);
            console.log(`setting edits: spacing/timeout/status edit: ${Object.keys(up.summary.resourceChanges ?? {}).join(", ")}; no SSH session on any host`);

            // 2. An edit that changes what every server runs: planned, one at a time, in order.
            write({ spacingSeconds: 1, quorumListenOnAllIPs: true });
            const rolled = recorder();
            const t0 = Date.now();
            const up2 = await stack.up({ onEvent: rolled.onEvent });
            assert.equal(up2.summary.result, "succeeded", up2.stdout);
            const restarts = [...rolled.steps]
                .filter(([name, s]) => /-restart-\d+$/.test(name) && s.op === "update")
                .map(([name, s]) => ({ id: Number(/-(\d+)$/.exec(name)![1]), ...s }))
                .sort((a, b) => a.start - b.start);
            assert.equal(restarts.length, 6, `every server restarted once: ${JSON.stringify(restarts)}`);
            // Targets first, then the source followers, the source leader last.
            assert.deepEqual(new Set(restarts.slice(0, 3).map((r) => r.id)), new Set(targets.map((h) => h.id)));
            assert.deepEqual(new Set(restarts.slice(3).map((r) => r.id)), new Set(sources.map((h) => h.id)));
            for (let i = 1; i < restarts.length; i++) {
                assert.ok(restarts[i].start >= restarts[i - 1].end!, `restart of ${restarts[i].id} began before ${restarts[i - 1].id}'s ended`);
            }
            for (const h of all) assert.match(fs.readFileSync(path.join(h.dir, "conf", "zoo.cfg"), "utf8"), /^quorumListenOnAllIPs=true$/m, `${h.name} runs with the new setting`);
            console.log(`setting edits: quorumListenOnAllIPs: restarts ${restarts.map((r) => r.id).join(" -> ")}, one at a time, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        } finally {
            await stack.destroy().catch(() => undefined);
            await stack.workspace.removeStack("edits", { force: true }).catch(() => undefined);
        }
    });
});
