// SSH host keys in the config: the key lines @pulumi/command can pin, known_hosts lookups (names,
// patterns, hashed entries, ports, markers, the choice among several keys), and the loader's
// refusals with their config paths, in the same one-pass list as every other config problem.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { checkConfig, rawConfigOf, type MitosisConfig, type RawConfig } from "../../../src/config";
import { knownHostsName, lookupKnownHosts, parseHostKey, parseKnownHosts } from "../../../src/config/host-keys";
import { blockCopyRaw, devRawConfig, edited, TEST_HOST_KEY, TEST_PRIVATE_KEY } from "../../fixtures";

const ED_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFm0me8ucWb1gYqU33WkVuzi8yYPr1f/kIBCchWMOdwy";
const ED_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPtRGvdbl2ppdYYIGFuk2Q9Y5DgcTDoFv3Nem6XOXj5N";
const ECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIWlZwFCGIgNgKvj0C8a2WFjDQxMVGrf+GlNARkbCeD8I0RIxPQmJ4wcRCss7+MKMmuiiS68nHbsjW1R7NbP/yY=";
const RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDAawRyYZCuiRmfkMGEB12GJUkqcoeyYrexKk45yOOmT4MTykUsmzqtYqoSYFzYxot0ubVpZHRpUx8c0cygC7Ox+3XYbkVJodxUnbD1zH04qiX0rCNnZsTDAXPN92YyhbSCw9OTfmEmWtHfNLHMcvT9rnZK4apbhbUusF97y5EyKw==";

describe("parseHostKey: what can be pinned", () => {
    const cases: { name: string; line: string; key?: string; reason?: RegExp }[] = [
        { name: "ed25519, as ssh-keyscan prints it without the host", line: ED_A, key: ED_A },
        { name: "a comment is dropped", line: `${ED_A} root@zk-1`, key: ED_A },
        { name: "surrounding blanks", line: `  ${ED_A}\n`, key: ED_A },
        { name: "ECDSA P-256", line: ECDSA, key: ECDSA },
        { name: "ssh-rsa: the provider would offer only SHA-1 ssh-rsa", line: RSA, reason: /ssh-rsa key cannot be pinned: .*OpenSSH 8\.8\+ refuses; pin the host's ssh-ed25519/ },
        { name: "a known_hosts line (host first)", line: `192.0.2.1 ${ED_A}`, reason: /key type "192\.0\.2\.1" cannot be pinned/ },
        { name: "a certificate", line: "ssh-ed25519-cert-v01@openssh.com AAAA", reason: /cannot be pinned .*certificates/ },
        { name: "only a type", line: "ssh-ed25519", reason: /not a public key line/ },
        { name: "empty", line: "", reason: /not a public key line/ },
        { name: "not base64", line: "ssh-ed25519 AAAA*AAA", reason: /not base64/ },
        { name: "the data of another type", line: `ssh-ed25519 ${ECDSA.split(" ")[1]}`, reason: /says ssh-ed25519 but its data is a ecdsa-sha2-nistp256 key/ },
        { name: "truncated", line: ED_A.slice(0, -8), reason: /not base64|not 32 bytes/ },
    ];
    for (const c of cases) {
        it(c.name, () => {
            const r = parseHostKey(c.line);
            if (c.key) assert.deepEqual(r, { key: c.key });
            else assert.match("reason" in r ? r.reason : "(accepted)", c.reason!);
        });
    }
});

describe("known_hosts: the key for the name pulumi connects to", () => {
    // Hashed with ssh-keygen -H: db.example -> ED_A, [db.example]:2222 -> ED_B.
    const HASHED = [
        `|1|ozT/H12vGQFzHhInd5xTy3e6alE=|Hoobvkf5TNyT8B/mMfJyjgATo3s= ${ED_A}`,
        `|1|QTVivoNmZiT8A5yY157SO5EbT64=|CD0fKGtUBabW9deoOw2/ysmmSqA= ${ED_B}`,
    ].join("\n");
    const cases: { name: string; text: string; host: string; port?: number; key?: string; reason?: RegExp }[] = [
        { name: "a plain name", text: `10.0.0.1 ${ED_A}\n10.0.0.2 ${ED_B}\n`, host: "10.0.0.2", key: ED_B },
        { name: "one of a comma list, case-insensitive", text: `zk-1.Example,10.0.0.1 ${ED_A}`, host: "ZK-1.example", key: ED_A },
        { name: "comments and blank lines", text: `# keys\n\n10.0.0.1 ${ED_A} root@zk-1\n`, host: "10.0.0.1", key: ED_A },
        { name: "a hashed entry", text: HASHED, host: "db.example", key: ED_A },
        { name: "a hashed entry of a port", text: HASHED, host: "db.example", port: 2222, key: ED_B },
        { name: "[host]:port when the port is not 22", text: `10.0.0.1 ${ED_A}\n[10.0.0.1]:2222 ${ED_B}`, host: "10.0.0.1", port: 2222, key: ED_B },
        { name: "the port-22 entry is not the 2222 one", text: `10.0.0.1 ${ED_A}`, host: "10.0.0.1", port: 2222, reason: /has no entry for \[10\.0\.0\.1\]:2222/ },
        { name: "a wildcard pattern", text: `10.0.0.* ${ED_A}`, host: "10.0.0.7", key: ED_A },
        { name: "a negated pattern excludes", text: `10.0.0.*,!10.0.0.7 ${ED_A}`, host: "10.0.0.7", reason: /has no entry for 10\.0\.0\.7/ },
        { name: "? is one character", text: `zk-? ${ED_A}`, host: "zk-10", reason: /has no entry/ },
        { name: "ed25519 is chosen over ECDSA and RSA", text: `h ${RSA}\nh ${ECDSA}\nh ${ED_B}`, host: "h", key: ED_B },
        { name: "ECDSA over RSA", text: `h ${RSA}\nh ${ECDSA}`, host: "h", key: ECDSA },
        { name: "only RSA", text: `h ${RSA}`, host: "h", reason: /has only ssh-rsa for h, none of which can be pinned/ },
        { name: "a revoked key is never chosen", text: `h ${ED_A}\n@revoked * ${ED_A}\nh ${ECDSA}`, host: "h", key: ECDSA },
        { name: "only revoked keys", text: `h ${ED_A}\n@revoked h ${ED_A}`, host: "h", reason: /only revoked keys for h/ },
        { name: "a CA line is not a host key", text: `@cert-authority *.example ${ED_A}`, host: "zk.example", reason: /has no entry/ },
    ];
    for (const c of cases) {
        it(c.name, () => {
            const { knownHosts, problems } = parseKnownHosts(c.text, "known_hosts");
            assert.deepEqual(problems, []);
            const r = lookupKnownHosts(knownHosts, knownHostsName(c.host, c.port ?? 22));
            if (c.key) assert.deepEqual(r, { key: c.key });
            else assert.match("reason" in r ? r.reason : "(found)", c.reason!);
        });
    }

    it("reports lines that are not entries, with their numbers", () => {
        const { problems } = parseKnownHosts(`10.0.0.1 ${ED_A}\n10.0.0.2 ssh-ed25519\n@trusted h ${ED_A}\nh ssh-ed25519 AA*A\n`, "kh");
        assert.deepEqual(problems, ['line 2: not "<hosts> <type> <base64-key> [comment]"', "line 3: unknown marker @trusted (@cert-authority or @revoked)", "line 4: the key is not base64"]);
    });
});

describe("the loader pins every SSH host's key, or says where one is missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "zkmigrate-keys-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const noKnownHosts = (raw: RawConfig) => edited(raw, (x) => delete x.sshKnownHosts);
    const paths = (raw: RawConfig, baseDir = dir) => checkConfig(raw, () => true, { baseDir }).issues.map((i) => i.path);

    it("the dev stack: every server and broker pinned from its known_hosts", () => {
        const r = checkConfig(devRawConfig());
        assert.deepEqual(r.issues, []);
        const m = r.config!.ensembles[0] as MitosisConfig;
        assert.equal(m.source[0].hostKey, ED_A, "192.0.2.1's line of Pulumi.dev.yaml");
        assert.ok([...m.source, ...m.target, ...m.kafka!.brokers].every((s) => s.hostKey?.startsWith("ssh-ed25519 ")));
        assert.deepEqual(r.warnings, []);
    });

    it("without keys: one issue per host a remote command reaches, at its path, with how to collect the key, beside the other problems", () => {
        const raw = edited(noKnownHosts(devRawConfig()), (x) => (x.ensembles[1].phase = "podz"));
        const r = checkConfig(raw, () => true, { baseDir: dir });
        const got = r.issues.map((i) => i.path);
        assert.deepEqual(got, [
            ...["source[0]", "source[1]", "source[2]", "target[0]", "target[1]", "target[2]", "clients.kafka.brokers[0]", "clients.kafka.brokers[1]", "clients.kafka.brokers[2]"].map(
                (p) => `zkmigrate:ensembles[kafka-main].${p}.hostKey`,
            ),
            "zkmigrate:ensembles[shared].phase", // the schema failed: its servers are not checked
        ]);
        assert.match(r.issues[0].reason, /^no SSH host key for 192\.0\.2\.1 \(no zkmigrate:sshKnownHosts is set; set hostKey here, e\.g\. "ssh-ed25519 AAAAC3Nza\.\.\."\): collect it over a trusted path \(ssh-keyscan -t ed25519/);
        assert.match(r.issues[0].reason, /README, SSH host keys/);
    });

    it("a server's own hostKey wins over known_hosts, and is checked by the schema", () => {
        const raw = edited(devRawConfig(), (x) => {
            x.ensembles[0].source[0].hostKey = `${ED_B} comment`;
            x.ensembles[0].source[1].hostKey = RSA;
        });
        const r = checkConfig(raw);
        assert.deepEqual(r.issues.map((i) => i.path), ["zkmigrate:ensembles[kafka-main].source[1].hostKey"]);
        assert.match(r.issues[0].reason, /ssh-rsa key cannot be pinned/);
        const ok = checkConfig(edited(raw, (x) => delete x.ensembles[0].source[1].hostKey));
        assert.equal((ok.config!.ensembles[0] as MitosisConfig).source[0].hostKey, ED_B);
    });

    it("known_hosts is looked up by sshHost when there is one, on sshPort", () => {
        const kh = `192.0.2.1 ${ED_A}\n[jump-1.example]:2222 ${ED_B}\n`;
        const raw: RawConfig = {
            sshPrivateKey: TEST_PRIVATE_KEY,
            sshPort: 2222,
            sshKnownHosts: kh,
            ensembles: [{ name: "one", procedure: "kubernetes", phase: "hosts", allowSingleServer: true, servers: [{ id: 1, host: "192.0.2.1", sshHost: "jump-1.example" }] }],
        };
        const r = checkConfig(raw);
        assert.deepEqual(r.issues, []);
        assert.equal((r.config!.ensembles[0] as { servers: { hostKey?: string }[] }).servers[0].hostKey, ED_B);
        const wrongPort = checkConfig({ ...raw, sshPort: 22 });
        assert.match(wrongPort.issues[0].reason, /no SSH host key for jump-1\.example \(zkmigrate:sshKnownHosts has no entry for jump-1\.example; add it there or set hostKey here/);
    });

    it("block & copy: where the copy runs and the client hosts, not its servers (reached on their client port)", () => {
        const raw = edited(blockCopyRaw("precopy", { copy: { runOn: { host: "192.0.2.30" } } }), (x) => delete x.sshKnownHosts);
        assert.deepEqual(paths(raw), ["copy.runOn", "clients.hosts[0]", "clients.hosts[1]"].map((p) => `zkmigrate:ensembles[kafka-bc].${p}.hostKey`));
        assert.deepEqual(paths(blockCopyRaw("precopy", { copy: { runOn: { host: "192.0.2.30" } } })), [], "the test known_hosts (*) covers them");
    });

    it("a known_hosts path, relative to the project directory; an unreadable or bad one is one issue", () => {
        writeFileSync(join(dir, "known_hosts"), `* ${TEST_HOST_KEY}\n`);
        const withFile = (v: string) => edited(devRawConfig(), (x) => (x.sshKnownHosts = v));
        assert.deepEqual(paths(withFile("known_hosts")), []);
        assert.deepEqual(paths(withFile(join(dir, "known_hosts")), "/"), []);
        const missing = checkConfig(withFile("nope/known_hosts"), () => true, { baseDir: dir });
        assert.deepEqual(missing.issues.map((i) => i.path), ["zkmigrate:sshKnownHosts"]);
        assert.match(missing.issues[0].reason, new RegExp(`cannot read the known_hosts file ${dir}/nope/known_hosts: ENOENT`));
        // One line without its line break (as "$(cat known_hosts)" gives it) is still the text.
        assert.deepEqual(paths(withFile(`* ${TEST_HOST_KEY}`)), []);
        const bad = checkConfig(withFile(`192.0.2.1 ssh-ed25519\n`), () => true, { baseDir: dir });
        assert.deepEqual(bad.issues.map((i) => [i.path, i.reason]), [["zkmigrate:sshKnownHosts", 'zkmigrate:sshKnownHosts: line 1: not "<hosts> <type> <base64-key> [comment]"']]);
    });

    it("sshHostKeyCheck false: hosts without a key are allowed, named in a warning; configured keys still apply", () => {
        const raw = edited(noKnownHosts(devRawConfig()), (x) => {
            x.sshHostKeyCheck = false;
            x.ensembles[0].source[0].hostKey = ED_A;
        });
        const r = checkConfig(raw, () => true, { baseDir: dir });
        assert.deepEqual(r.issues, []);
        assert.equal((r.config!.ensembles[0] as MitosisConfig).source[0].hostKey, ED_A);
        assert.equal(r.warnings.length, 1);
        assert.match(r.warnings[0], /^zkmigrate:sshHostKeyCheck is false: SSH to 192\.0\.2\.2, 192\.0\.2\.3, .*198\.51\.100\.13 accepts ANY host key/);
        assert.doesNotMatch(r.warnings[0], /192\.0\.2\.1,/);
        // As the engine hands it over: a string.
        const fromEngine = rawConfigOf({ "zkmigrate:sshHostKeyCheck": "false" });
        assert.equal(fromEngine.sshHostKeyCheck, false);
    });
});
