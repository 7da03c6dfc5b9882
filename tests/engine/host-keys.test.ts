// SSH host keys under the real engine and the real @pulumi/command provider, against the real
// sshd of a local fleet: a host that presents another key than the one the config pins is refused
// at the handshake, before any session (so before any command) on it, and `pulumi up` fails
// naming the mismatch; with the host's own key the same update runs on it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import { copyProject } from "../../rehearsal/engine";
import { hostsOf, stackHostConfig, stackSshConfig, type FleetHost } from "../../rehearsal/fleet";
import { TEST_HOST_KEY } from "../fixtures";
import { useEngine } from "../helpers/engine";
import { useFleet } from "../integration/helpers/fleet";

const INSTALL_HINT = "run tools/pulumi/install.sh (it builds the Pulumi CLI, language host and command provider from Go modules)";
const ENSEMBLE = "keys";

/** What a host's sshd logged: sessions authenticated, and connections that ended before auth. */
function sshdLog(h: FleetHost): { accepted: number; preauth: number } {
    const text = fs.readFileSync(path.join(h.dir, "ssh", "sshd.log"), "utf8");
    return { accepted: (text.match(/Accepted publickey/g) ?? []).length, preauth: (text.match(/\[preauth\]/g) ?? []).length };
}

describe("SSH host keys with the real engine, provider and sshd", { timeout: 900_000 }, () => {
    const need = useEngine({ label: "zkmigrate-hostkeys", installHint: INSTALL_HINT });
    const fleet = useFleet({ name: "eng-keys-hk", ensembles: [{ name: "zk", servers: 3 }] });

    it("refuses a host whose key does not match before any command runs on it; with its own key the update runs", { timeout: 600_000 }, async () => {
        const e = need();
        const f = fleet();
        const hosts = hostsOf(f, "zk");
        const wrong = hosts[1];
        assert.notEqual(fs.readFileSync(path.join(wrong.dir, "ssh", "ssh_host_ed25519_key.pub"), "utf8").split(/\s+/)[1], TEST_HOST_KEY.split(" ")[1]);
        const zooCfg = (h: FleetHost) => fs.readFileSync(path.join(h.dir, "conf", "zoo.cfg"), "utf8");
        const cfgBefore = new Map(hosts.map((h) => [h.id, zooCfg(h)]));

        const dir = path.join(e.tmp, "project");
        copyProject(dir);
        // The fleet's known_hosts pins every host's real key; the server's own hostKey (which wins
        // over known_hosts) pins another key for one of them.
        const stackConfig = (wrongKey: boolean) => ({
            config: {
                "zkmigrate:sshUser": "root",
                "zkmigrate:sshKnownHosts": stackSshConfig(f).sshKnownHosts,
                "zkmigrate:leaderProbe": "false",
                "zkmigrate:defaults": { ...stackHostConfig(f), spacingSeconds: 1 },
                "zkmigrate:ensembles": [
                    {
                        name: ENSEMBLE,
                        procedure: "kubernetes",
                        phase: "hosts",
                        servers: hosts.map((h) => ({ id: h.id, host: h.address, ...(wrongKey && h === wrong ? { hostKey: `${TEST_HOST_KEY} not-this-host` } : {}) })),
                    },
                ],
            },
        });
        fs.writeFileSync(path.join(dir, "Pulumi.keys.yaml"), JSON.stringify(stackConfig(true), null, 2));
        const stack: Stack = await LocalWorkspace.createStack({ stackName: "keys", workDir: dir }, { pulumiCommand: e.command, envVars: e.env });
        try {
            await stack.setConfig("zkmigrate:sshPrivateKey", { value: fs.readFileSync(f.sshKey, "utf8"), secret: true });
            const logBefore = sshdLog(wrong);

            const t0 = Date.now();
            let message = "";
            await assert.rejects(stack.up(), (err: Error) => {
                message = err.message;
                return true;
            });
            console.log(`host keys: pulumi up with a wrong key for ${wrong.address} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
            assert.match(message, /host key mismatch/, message);
            console.log(`host keys: the refusal: ${message.split("\n").find((l) => /host key mismatch/.test(l))?.trim()}`);
            assert.match(message, new RegExp(`${ENSEMBLE}-preflight-${wrong.id}`), message);
            // Refused at the handshake: the provider dialled the host, and no session was ever
            // authenticated there (no command can have run); its zoo.cfg is as it was, and so is
            // every other host's (nothing is written before every preflight passed).
            const logAfter = sshdLog(wrong);
            assert.equal(logAfter.accepted, logBefore.accepted, "no SSH session was authenticated on the host with the wrong key");
            assert.ok(logAfter.preauth > logBefore.preauth, `the provider reached the host and gave up before auth (sshd log: ${JSON.stringify(logAfter)})`);
            for (const h of hosts) assert.equal(zooCfg(h), cfgBefore.get(h.id), `zoo.cfg of ${h.name} is untouched`);

            // The same update with the host's own key (from known_hosts): it runs there too.
            fs.writeFileSync(path.join(dir, "Pulumi.keys.yaml"), JSON.stringify(stackConfig(false), null, 2));
            await stack.setConfig("zkmigrate:sshPrivateKey", { value: fs.readFileSync(f.sshKey, "utf8"), secret: true });
            const up = await stack.up();
            assert.equal(up.summary.result, "succeeded", up.stdout);
            assert.ok(sshdLog(wrong).accepted > logAfter.accepted, "with its key, the host's commands ran");
        } finally {
            await stack.workspace.removeStack("keys", { force: true }).catch(() => undefined);
        }
    });
});
