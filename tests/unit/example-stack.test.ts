// The example stack (Pulumi.dev.yaml) is safe to preview: its hosts are documentation addresses,
// and the leader probe (the only thing a preview dials: `srvr` on every ZooKeeper server, Kafka's
// /controller) is off there, saying why. Pulumi.yaml's description of the key says so too.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { loadConfig } from "../../src/config";
import { devFleet, devRawConfig, edited, ROOT } from "../fixtures";

const DEV = readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8");

/** RFC 5737's documentation networks: no host on the internet has these addresses. */
const DOCUMENTATION = [/^192\.0\.2\.\d+$/, /^198\.51\.100\.\d+$/, /^203\.0\.113\.\d+$/];

describe("the example stack dials nothing at preview", () => {
    it("sets leaderProbe: false, with a comment that says why", () => {
        assert.equal(devFleet().settings.leaderProbe, false);
        assert.match(DEV, /# Off in this example: its hosts are documentation addresses \(RFC 5737\) that no preview should\n {2}# dial\./);
        assert.match(DEV, /\n {2}zkmigrate:leaderProbe: false\n/);
        // The documented default stays on.
        assert.equal(loadConfig(edited(devRawConfig(), (r) => delete r.leaderProbe)).settings.leaderProbe, true);
    });

    it("uses only documentation addresses, in the config and in its comments", () => {
        const addresses = DEV.match(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g) ?? [];
        assert.ok(addresses.length >= 15, `found ${addresses.length}`);
        for (const a of addresses) assert.ok(DOCUMENTATION.some((r) => r.test(a)), `${a} is not a documentation address`);
    });

    it("Pulumi.yaml's description of leaderProbe names what it dials and the example's setting", () => {
        const project = parse(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as { config: Record<string, { description: string; default: unknown }> };
        const d = project.config.leaderProbe;
        assert.equal(d.default, true);
        assert.match(d.description, /at every preview and update/);
        assert.match(d.description, /Pulumi\.dev\.yaml sets it to false so that a preview never dials its documentation addresses/);
    });
});
