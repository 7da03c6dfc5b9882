// The EC2 user data: shellcheck-clean over a matrix of inputs, within EC2's 16 KiB (or gzipped),
// and run here (as any user, in a temp dir, ZKMIGRATE_SERVICE_MANAGER=none) with a fake java that
// serves four-letter words and a fake curl that serves a tarball: the download and its SHA-512
// check, ZKMIGRATE_ZK_DIST, a dormant server, and the refusals. The real run with real ZooKeeper
// on namespace hosts is tests/integration/ec2-user-data.test.ts.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { after, describe, it } from "node:test";
import { renderUserData, resolveEc2Ensemble, USER_DATA_LIMIT, userDataArgs, type Ec2EnsembleInput } from "../../../src/ec2";
import { asRemoteCommand, shellQuote } from "../../../src/scripts";
import { freePort, shellcheck, tempDir } from "../scripts/harness";

const FAKE_ZK = join(__dirname, "..", "scripts", "fake-zk.cjs");

const base: Ec2EnsembleInput = {
    owner: "tests",
    ttlHours: 1,
    version: "3.9.3",
    vpcId: "vpc-0abc",
    subnetId: "subnet-0abc",
    subnetCidr: "10.20.1.0/24",
    adminCidrs: ["198.51.100.0/24"],
    keyName: "k",
};

describe("user data: rendered", () => {
    const matrix: [string, Ec2EnsembleInput][] = [
        ["defaults", base],
        ["one server", { ...base, ids: [7] }],
        ["five servers, custom ports", { ...base, ids: [11, 12, 13, 14, 15], ports: { client: 2182, peer: 2889, election: 3889 } }],
        ["dormant (start false)", { ...base, start: false }],
        ["sha512 given, mirror", { ...base, sha512: "a".repeat(128), downloadBase: "https://mirror.example.com/apache/zookeeper/" }],
        ["debian arm64, own paths and unit", { ...base, amiFamily: "debian-12", architecture: "arm64", paths: { installDir: "/srv/zk", unitFile: "/etc/systemd/system/zk-test.service" } }],
        ["settings", { ...base, settings: { tickTime: 3000, maxClientCnxns: 0, "4lw.commands.whitelist": "srvr,ruok,mntr,conf,stat" } }],
    ];
    it("are clean under shellcheck (the servers of a case differ only in their myid)", { timeout: 120_000 }, () => {
        const findings: string[] = [];
        for (const [label, input] of matrix) {
            const e = resolveEc2Ensemble("ud", input);
            const last = e.servers[e.servers.length - 1].id;
            const f = shellcheck(renderUserData(e, last));
            if (f) findings.push(`${label}, myid ${last}:\n${f}`);
        }
        assert.deepEqual(findings, []);
    });
    it("stay within cloud-init's 16 KiB with nine servers and extra settings", () => {
        const e = resolveEc2Ensemble("a-long-ensemble-name-for-the-size-check", {
            ...base,
            ids: [1, 2, 3, 4, 5, 6, 7, 8, 9],
            settings: { tickTime: 3000, initLimit: 20, syncLimit: 10, maxClientCnxns: 200, "snapshot.trust.empty": true },
            paths: { installDir: "/opt/apache/zookeeper/current", configFile: "/etc/zookeeper/conf.rehearsal/zoo.cfg" },
        });
        const script = renderUserData(e, 9);
        const size = Buffer.byteLength(script);
        assert.ok(size < USER_DATA_LIMIT, `${size} bytes`);
        assert.deepEqual(userDataArgs(script), { userData: script }, "as text when it fits");
        console.log(`  user data of a 9-server ensemble: ${size} bytes (limit ${USER_DATA_LIMIT})`);
    });
    it("above 16 KiB go gzip-compressed (cloud-init unpacks them), the same bytes every time", () => {
        const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`zkmigrate.test.setting${i}`, `value-${i}-${"x".repeat(20)}`]));
        const script = renderUserData(resolveEc2Ensemble("big", { ...base, settings: many }), 1);
        assert.ok(Buffer.byteLength(script) > USER_DATA_LIMIT);
        const a = userDataArgs(script);
        assert.ok("userDataBase64" in a);
        assert.equal(gunzipSync(Buffer.from(a.userDataBase64, "base64")).toString("utf8"), script);
        assert.deepEqual(userDataArgs(script), a, "deterministic: no diff on the next update");
        assert.throws(() => userDataArgs("#!/bin/sh\n" + randomBytes(20_000).toString("base64")), /over EC2's 16384/);
    });
    it("start with a shebang (cloud-init runs it as a script) and refuse a myid that is not a member", () => {
        const e = resolveEc2Ensemble("ud", base);
        assert.match(renderUserData(e, 1), /^#!\/usr\/bin\/env bash\nset -euo pipefail\n/);
        assert.throws(() => renderUserData(e, 4), /myid 4 is not a server of ud/);
    });
});

// ---------------------------------------------------------------------------------------------
// Local runs

interface Run {
    code: number;
    stdout: string;
    stderr: string;
}

/** A bin dir with a fake java (serves four-letter words on zoo.cfg's clientPort) and a fake curl. */
function fakeBin(root: string, served: string): string {
    const bin = join(root, "bin");
    mkdirSync(bin, { recursive: true });
    const write = (name: string, text: string) => {
        writeFileSync(join(bin, name), text);
        chmodSync(join(bin, name), 0o755);
    };
    write(
        "java",
        `#!/bin/sh
# fake java: -version answers; anything else is the launcher's command line, ending in zoo.cfg.
if [ "$1" = -version ]; then echo 'openjdk version "17" (fake java of the zkmigrate tests)' >&2; exit 0; fi
for a in "$@"; do cfg="$a"; done
port="$(sed -n 's/^clientPort=//p' "$cfg")"
echo "fake java: $*" >&2
exec node ${shellQuote(FAKE_ZK)} --port "$port" --pidfile "$cfg.fake.pid" --mode standalone
`,
    );
    write(
        "curl",
        `#!/bin/sh
# fake curl: serves ${served}/<last path segment of the URL>; -o FILE or stdout; exit 22 when missing.
out=""; url=""
while [ $# -gt 0 ]; do
    case "$1" in
    -o) out="$2"; shift 2 ;;
    --retry|--retry-delay|--connect-timeout|--max-time) shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
    esac
done
echo "$url" >>${shellQuote(join(root, "curl.log"))}
file=${shellQuote(served)}/"\${url##*/}"
[ -f "$file" ] || { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }
if [ -n "$out" ]; then cp "$file" "$out"; else cat "$file"; fi
`,
    );
    return bin;
}

/** A release tarball as Apache publishes it (lib/zookeeper-<v>.jar, conf/), in `served`. */
function makeTarball(root: string, served: string, version: string): string {
    const top = join(root, "build", `apache-zookeeper-${version}-bin`);
    mkdirSync(join(top, "lib"), { recursive: true });
    mkdirSync(join(top, "conf"), { recursive: true });
    writeFileSync(join(top, "lib", `zookeeper-${version}.jar`), "not really a jar");
    writeFileSync(join(top, "lib", "zookeeper-jute.jar"), "not really a jar either");
    writeFileSync(join(top, "conf", "logback.xml"), "<configuration/>\n");
    mkdirSync(served, { recursive: true });
    const tarball = join(served, `apache-zookeeper-${version}-bin.tar.gz`);
    execFileSync("tar", ["-czf", tarball, "-C", join(root, "build"), `apache-zookeeper-${version}-bin`]);
    return createHash("sha512").update(readFileSync(tarball)).digest("hex");
}

function runLocal(script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
    return new Promise((resolve) => {
        execFile("sh", ["-c", asRemoteCommand(script)], { env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
            resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
        });
    });
}

const roots: string[] = [];
const pids: number[] = [];
after(() => {
    for (const p of pids) {
        try {
            process.kill(p, "SIGKILL");
        } catch {
            /* gone */
        }
    }
    for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** An ensemble of one server whose paths are all under a fresh temp dir, and the environment to run it. */
async function setup(o: { input?: Partial<Ec2EnsembleInput>; dist?: string; sha512File?: (hex: string, name: string) => string } = {}) {
    const root = tempDir("ec2-ud");
    roots.push(root);
    const served = join(root, "served");
    const version = o.input?.version ?? "3.9.3";
    const sha = makeTarball(root, served, version);
    const tarName = `apache-zookeeper-${version}-bin.tar.gz`;
    writeFileSync(join(served, `${tarName}.sha512`), (o.sha512File ?? ((h, n) => `${h}  ${n}\n`))(sha, tarName));
    const port = await freePort();
    const e = resolveEc2Ensemble("local", {
        ...base,
        ids: [1],
        ports: { client: port },
        readyTimeoutSeconds: 20,
        downloadBase: "https://archive.example.com/zookeeper",
        paths: {
            configFile: `${root}/etc/zoo.cfg`,
            dataDir: `${root}/data`,
            installDir: `${root}/opt/zookeeper`,
            logDir: `${root}/log`,
            unitFile: `${root}/systemd/zookeeper.service`,
        },
        ...o.input,
    });
    const bin = fakeBin(root, served);
    const env: Record<string, string> = { PATH: `${bin}:${process.env.PATH}`, ZKMIGRATE_SERVICE_MANAGER: "none", ZKMIGRATE_JAVA: join(bin, "java") };
    if (o.dist) {
        const dist = join(root, "dist");
        mkdirSync(dist, { recursive: true });
        writeFileSync(join(dist, `zookeeper-${o.dist}.jar`), "jar");
        writeFileSync(join(dist, "slf4j-api-2.0.13.jar"), "jar");
        env.ZKMIGRATE_ZK_DIST = dist;
    }
    const track = () => {
        const pidFile = `${e.paths.dataDir}/zookeeper_server.pid`;
        if (existsSync(pidFile)) pids.push(Number(readFileSync(pidFile, "utf8").trim()));
    };
    return { root, e, env, sha, track, curlLog: () => (existsSync(join(root, "curl.log")) ? readFileSync(join(root, "curl.log"), "utf8") : "") };
}

describe("user data: run here with a fake java and a fake download", { timeout: 180_000 }, () => {
    it("downloads the release, checks its published SHA-512, installs, configures, starts and waits until it serves", async () => {
        const s = await setup();
        const r = await runLocal(renderUserData(s.e, 1), s.env);
        s.track();
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.deepEqual(s.curlLog().trim().split("\n"), [
            "https://archive.example.com/zookeeper/zookeeper-3.9.3/apache-zookeeper-3.9.3-bin.tar.gz",
            "https://archive.example.com/zookeeper/zookeeper-3.9.3/apache-zookeeper-3.9.3-bin.tar.gz.sha512",
        ]);
        assert.match(r.stdout, /apache-zookeeper-3\.9\.3-bin\.tar\.gz: SHA-512 verified/);
        assert.match(r.stdout, /serving: myid 1 of local, ZooKeeper 3\.9\.3, Mode: standalone/);
        assert.equal(readFileSync(`${s.e.paths.installDir}/lib/zookeeper-3.9.3.jar`, "utf8"), "not really a jar");
        assert.ok(existsSync(`${s.e.paths.installDir}/conf/logback.xml`), "the release's conf/ is installed");
        assert.equal(readFileSync(s.e.paths.myidFile, "utf8"), "1\n");
        assert.ok(!readFileSync(s.e.paths.unitFile, "utf8").includes("undefined"));
    });

    it("reads gpg's checksum format too (file name, colon, hex in groups)", async () => {
        const s = await setup({
            sha512File: (hex, name) => `${name}: ${hex.toUpperCase().match(/.{1,8}/g)!.join(" ").replace(/(.{72})/, "$1\n")}\n`,
        });
        const r = await runLocal(renderUserData(s.e, 1), s.env);
        s.track();
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /SHA-512 verified/);
    });

    it("a tarball that does not match its SHA-512 is refused, and nothing is installed", async () => {
        const s = await setup({ input: { sha512: "0".repeat(128) } });
        const r = await runLocal(renderUserData(s.e, 1), s.env);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, new RegExp(`apache-zookeeper-3\\.9\\.3-bin\\.tar\\.gz: SHA-512 ${s.sha} does not match the expected 0{128}`));
        assert.ok(!existsSync(s.e.paths.installDir), "no release installed");
        assert.ok(!existsSync(s.e.paths.configFile), "no zoo.cfg written");
        assert.doesNotMatch(s.curlLog(), /\.sha512/, "a given sha512 is not fetched");
    });

    it("a release missing from the mirror fails with the URL", async () => {
        const s = await setup({ input: { version: "3.9.3", downloadBase: "https://archive.example.com/elsewhere" } });
        rmSync(join(s.root, "served", "apache-zookeeper-3.9.3-bin.tar.gz"));
        const r = await runLocal(renderUserData(s.e, 1), s.env);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /download of https:\/\/archive\.example\.com\/elsewhere\/zookeeper-3\.9\.3\/apache-zookeeper-3\.9\.3-bin\.tar\.gz failed/);
    });

    it("ZKMIGRATE_ZK_DIST: the jars come from there and nothing is downloaded", async () => {
        const s = await setup({ dist: "3.9.3" });
        const r = await runLocal(renderUserData(s.e, 1), s.env);
        s.track();
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /ZooKeeper 3\.9\.3 from ZKMIGRATE_ZK_DIST=.* \(2 jars\), not downloaded/);
        assert.equal(s.curlLog(), "");
        assert.ok(existsSync(`${s.e.paths.installDir}/lib/slf4j-api-2.0.13.jar`));
    });

    it("ZKMIGRATE_ZK_DIST without the version's jar is refused with what it holds", async () => {
        const s = await setup({ dist: "3.9.3", input: { version: "3.8.4" } });
        const r = await runLocal(renderUserData(s.e, 1), s.env);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /ZKMIGRATE_ZK_DIST=.* holds no zookeeper-3\.8\.4\.jar \(in it or in lib\/\): zookeeper-3\.9\.3\.jar/);
    });

    it("start false: installed and configured, not started (a dormant mitosis target)", async () => {
        const s = await setup({ dist: "3.9.3", input: { start: false } });
        const r = await runLocal(renderUserData(s.e, 1), s.env);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /not started \(args\.start is false\)/);
        assert.ok(existsSync(s.e.paths.configFile));
        assert.ok(!existsSync(`${s.e.paths.dataDir}/zookeeper_server.pid`));
    });

    it("a server that exits at once fails the user data with its output, without waiting out the timeout", async () => {
        const s = await setup({ dist: "3.9.3" });
        writeFileSync(s.env.ZKMIGRATE_JAVA, '#!/bin/sh\n[ "$1" = -version ] && exit 0\necho "Invalid config, exiting abnormally" >&2\nexit 2\n');
        const started = Date.now();
        const r = await runLocal(renderUserData(s.e, 1), s.env);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /myid 1 did not serve within 20 s: connection refused/);
        assert.match(r.stderr, /the server does not run/);
        assert.match(r.stderr, /Invalid config, exiting abnormally/);
        assert.ok(Date.now() - started < 15_000, `${Date.now() - started} ms`);
    });

    it("refuses an unknown service manager and a java that is not executable", async () => {
        const s = await setup({ dist: "3.9.3" });
        const r1 = await runLocal(renderUserData(s.e, 1), { ...s.env, ZKMIGRATE_SERVICE_MANAGER: "openrc" });
        assert.equal(r1.code, 1);
        assert.match(r1.stderr, /ZKMIGRATE_SERVICE_MANAGER=openrc: expected systemd \(the default\) or none/);
        const r2 = await runLocal(renderUserData(s.e, 1), { ...s.env, ZKMIGRATE_JAVA: "/nonexistent/java" });
        assert.equal(r2.code, 1);
        assert.match(r2.stderr, /ZKMIGRATE_JAVA=\/nonexistent\/java is not an executable/);
    });
});
