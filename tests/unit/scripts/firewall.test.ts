// The firewall split: the rendered rules, input validation, and idempotency against a fake
// iptables (the real one runs in the integration tests, as root).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { firewallChainName, renderFirewallApply, renderFirewallRemove } from "../../../src/scripts";
import { binDir, runScript, tempDir } from "./harness";

const chain = firewallChainName("kafka-main");
const tag = "zkmigrate:kafka-main";

describe("firewallChainName", () => {
    it("is a short, valid, deterministic chain name", () => {
        for (const name of ["kafka-main", "a", "", "ünïcode ensemble/with spaces", "x".repeat(200), "shared"]) {
            const c = firewallChainName(name);
            assert.match(c, /^ZKM-[A-Za-z0-9_-]*[0-9a-f]{6}$/);
            assert.ok(c.length <= 20, c);
            assert.ok(`${c}-OUT`.length <= 28);
            assert.equal(firewallChainName(name), c);
        }
        assert.match(chain, /^ZKM-kafka-mai-[0-9a-f]{6}$/);
    });

    it("differs for different ensembles, also when the readable prefix is the same", () => {
        const names = ["kafka-main", "kafka-main-2", "kafka-mainx", "kafka main", "kafka_main", "kafka-mai"];
        assert.equal(new Set(names.map(firewallChainName)).size, names.length);
    });
});

describe("renderFirewallApply / renderFirewallRemove: the rendered rules", () => {
    const apply = renderFirewallApply({ chain, tag, peers: ["192.0.2.1", "192.0.2.0/28", "2001:db8::1", "2001:db8:1::/48"] });

    it("INPUT matches the peer as source, OUTPUT as destination, both with tcp-reset and the tag", () => {
        assert.match(apply, new RegExp(`readonly CHAIN_IN='${chain}-IN'`));
        assert.match(apply, new RegExp(`readonly CHAIN_OUT='${chain}-OUT'`));
        assert.match(apply, /readonly TAG='zkmigrate:kafka-main'/);
        assert.match(apply, /readonly -a PEERS_V4=\('192\.0\.2\.1' '192\.0\.2\.0\/28'\)/);
        assert.match(apply, /readonly -a PEERS_V6=\('2001:db8::1' '2001:db8:1::\/48'\)/);
        assert.match(apply, /-A "\$CHAIN_IN" -s "\$peer" -p tcp ! --tcp-flags RST RST -m comment --comment "\$TAG" -j REJECT --reject-with tcp-reset/);
        assert.match(apply, /-A "\$CHAIN_OUT" -d "\$peer" -p tcp ! --tcp-flags RST RST -m comment --comment "\$TAG" -j REJECT --reject-with tcp-reset/);
        assert.doesNotMatch(apply, /"\$CHAIN_IN" -d/, "INPUT never matches -d");
        assert.doesNotMatch(apply, /"\$CHAIN_OUT" -s/, "OUTPUT never matches -s");
        assert.match(apply, /-I "\$parent" 1 -m comment --comment "\$TAG" -j "\$chain"/);
        assert.match(apply, /ensure_jump "\$tool" INPUT "\$CHAIN_IN"/);
        assert.match(apply, /ensure_jump "\$tool" OUTPUT "\$CHAIN_OUT"/);
        assert.match(apply, /apply_family iptables "\$\{PEERS_V4\[@\]\}"/);
        assert.match(apply, /apply_family ip6tables "\$\{PEERS_V6\[@\]\}"/);
        assert.doesNotMatch(apply, /-j REJECT(?! --reject-with tcp-reset)/, "never a plain REJECT");
    });

    it("rejects what is not an IPv4/IPv6 address or CIDR, and bad chains or tags", () => {
        for (const bad of ["zk1.example.com", "192.0.2.256", "192.0.2.1/33", "2001:db8::1/129", "192.0.2.1; rm -rf /", "", " 192.0.2.1", "fe80::1%eth0", "192.0.2.1/"]) {
            assert.throws(() => renderFirewallApply({ chain, tag, peers: [bad] }), /not an IPv4\/IPv6 address or CIDR|bad prefix length/, bad);
            assert.throws(() => renderFirewallRemove({ chain, tag, peers: [bad] }), /firewall peer/, bad);
        }
        assert.throws(() => renderFirewallApply({ chain, tag, peers: [] }), /at least one peer/);
        assert.throws(() => renderFirewallApply({ chain: "x".repeat(25), tag, peers: ["192.0.2.1"] }), /1\.\.24/);
        assert.throws(() => renderFirewallApply({ chain: "bad chain", tag, peers: ["192.0.2.1"] }), /letters, digits/);
        assert.throws(() => renderFirewallApply({ chain, tag: "with space", peers: ["192.0.2.1"] }), /tag/);
    });
});

describe("firewall scripts against a fake iptables", () => {
    let root: string;
    let bin: string;
    before(() => {
        root = tempDir("firewall");
        bin = binDir(root);
    });
    after(() => rmSync(root, { recursive: true, force: true }));

    const state = (dir: string, tool: string): Record<string, string[]> =>
        existsSync(join(dir, `${tool}.json`)) ? JSON.parse(readFileSync(join(dir, `${tool}.json`), "utf8")).chains : {};
    const fresh = (name: string) => {
        const dir = join(root, name);
        mkdirSync(dir);
        return { dir, env: { FAKE_IPTABLES_DIR: dir } };
    };
    const jump = (c: string) => `-m comment --comment ${tag} -j ${c}`;
    const rule = (dir: "-s" | "-d", peer: string) => `${dir} ${peer} -p tcp ! --tcp-flags RST RST -m comment --comment ${tag} -j REJECT --reject-with tcp-reset`;

    it("apply twice leaves exactly the intended rules; remove twice leaves nothing", async () => {
        const { dir, env } = fresh("v4");
        const peers = ["192.0.2.1", "192.0.2.2"];
        const expected = {
            INPUT: [jump(`${chain}-IN`)],
            FORWARD: [],
            OUTPUT: [jump(`${chain}-OUT`)],
            [`${chain}-IN`]: peers.map((p) => rule("-s", p)),
            [`${chain}-OUT`]: peers.map((p) => rule("-d", p)),
        };
        const first = await runScript(renderFirewallApply({ chain, tag, peers }), { binDir: bin, env });
        assert.equal(first.code, 0, first.stderr);
        assert.deepEqual(state(dir, "iptables"), expected);
        assert.match(first.stdout, /zkmigrate: iptables rules now:\n {4}-A INPUT .*-j ZKM-kafka-mai-[0-9a-f]{6}-IN\n/);
        assert.match(first.stdout, new RegExp(`-A ${chain}-OUT -d 192\\.0\\.2\\.2 -p tcp`));

        const callsBefore = readFileSync(join(dir, "calls.log"), "utf8").length;
        const second = await runScript(renderFirewallApply({ chain, tag, peers }), { binDir: bin, env });
        assert.equal(second.code, 0, second.stderr);
        assert.deepEqual(state(dir, "iptables"), expected);
        assert.match(second.stdout, /already hold the rules/);
        assert.match(second.stdout, /INPUT already jumps to/);
        const secondCalls = readFileSync(join(dir, "calls.log"), "utf8").slice(callsBefore);
        assert.doesNotMatch(secondCalls, / -[FIA] /, "an unchanged split is not flushed (no moment without it)");

        // Other peers: the chains are refilled, the jumps stay single.
        const third = await runScript(renderFirewallApply({ chain, tag, peers: ["192.0.2.3"] }), { binDir: bin, env });
        assert.equal(third.code, 0, third.stderr);
        assert.deepEqual(state(dir, "iptables"), { ...expected, [`${chain}-IN`]: [rule("-s", "192.0.2.3")], [`${chain}-OUT`]: [rule("-d", "192.0.2.3")] });

        for (let i = 0; i < 2; i++) {
            const r = await runScript(renderFirewallRemove({ chain, tag, peers: ["192.0.2.3"] }), { binDir: bin, env });
            assert.equal(r.code, 0, r.stderr);
            assert.deepEqual(state(dir, "iptables"), { INPUT: [], FORWARD: [], OUTPUT: [] });
        }
        assert.ok(readFileSync(join(dir, "calls.log"), "utf8").split("\n").filter(Boolean).every((l) => / -w 10 /.test(l)), "every call waits for the xtables lock");
    });

    it("inserts the jump at position 1, before rules that would accept the traffic", async () => {
        const { dir, env } = fresh("position");
        execFileSync(join(bin, "iptables"), ["-A", "INPUT", "-p", "tcp", "-j", "ACCEPT"], { env: { ...process.env, ...env } });
        const r = await runScript(renderFirewallApply({ chain, tag, peers: ["192.0.2.1"] }), { binDir: bin, env });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(state(dir, "iptables").INPUT, [jump(`${chain}-IN`), "-p tcp -j ACCEPT"]);
    });

    it("IPv6 peers go through ip6tables, IPv4 through iptables", async () => {
        const { dir, env } = fresh("v6");
        const r = await runScript(renderFirewallApply({ chain, tag, peers: ["2001:db8::1", "192.0.2.1"] }), { binDir: bin, env });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(state(dir, "ip6tables")[`${chain}-IN`], [rule("-s", "2001:db8::1")]);
        assert.deepEqual(state(dir, "ip6tables")[`${chain}-OUT`], [rule("-d", "2001:db8::1")]);
        assert.deepEqual(state(dir, "iptables")[`${chain}-IN`], [rule("-s", "192.0.2.1")]);
        assert.match(r.stdout, /zkmigrate: ip6tables rules now:/);

        // Only IPv4 now: the IPv6 split of the earlier apply goes.
        const v4 = await runScript(renderFirewallApply({ chain, tag, peers: ["192.0.2.1"] }), { binDir: bin, env });
        assert.equal(v4.code, 0, v4.stderr);
        assert.deepEqual(state(dir, "ip6tables"), { INPUT: [], FORWARD: [], OUTPUT: [] });

        const rm = await runScript(renderFirewallRemove({ chain, tag, peers: ["2001:db8::1", "192.0.2.1"] }), { binDir: bin, env });
        assert.equal(rm.code, 0, rm.stderr);
        assert.deepEqual(state(dir, "iptables"), { INPUT: [], FORWARD: [], OUTPUT: [] });
    });

    it("remove succeeds when nothing was ever applied", async () => {
        const { env } = fresh("nothing");
        const r = await runScript(renderFirewallRemove({ chain, tag, peers: ["192.0.2.1"] }), { binDir: bin, env });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /zkmigrate: firewall split removed/);
    });
});
