// renderWriteConfig, run for real with bash on files in a temp directory.
import assert from "node:assert/strict";
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { renderWriteConfig, BLOCK_BEGIN, BLOCK_END } from "../../../src/scripts";
import type { Membership } from "../../../src/types";
import { binDir, FakeZk, runScript, tempDir } from "./harness";

const ZOO_CFG = [
    "# ZooKeeper config of this host",
    "tickTime=2000",
    "server.1=old-1.example:2888:3888",
    "initLimit=10",
    "  server.7 = weird.example:2888:3888",
    "# server.9=commented-out.example:2888:3888 stays: it is a comment",
    "syncLimit=5",
    "quorumListenOnAllIPs=true",
    "dataDir=/var/lib/zookeeper",
    "",
    "server.2=old-2.example:2888:3888;2181",
    "4lw.commands.whitelist=srvr,mntr",
    "clientPort=2181",
].join("\n") + "\n";

const KEPT = [
    "# ZooKeeper config of this host",
    "tickTime=2000",
    "initLimit=10",
    "# server.9=commented-out.example:2888:3888 stays: it is a comment",
    "syncLimit=5",
    "dataDir=/var/lib/zookeeper",
    "",
    "4lw.commands.whitelist=srvr,mntr",
    "clientPort=2181",
];

const membership: Membership = {
    members: [
        { id: 3, address: "10.0.0.3", peerPort: 2888, electionPort: 3888 },
        { id: 1, address: "10.0.0.1", peerPort: 2888, electionPort: 3888 },
        { id: 2, address: "2001:db8::2", peerPort: 2888, electionPort: 3888 },
    ],
    quorumListenOnAllIPs: false,
};
const SERVER_LINES = ["server.1=10.0.0.1:2888:3888", "server.2=[2001:db8::2]:2888:3888", "server.3=10.0.0.3:2888:3888"];

const backups = (dir: string) => readdirSync(dir).filter((f) => f.includes(".zkmigrate-") && f.endsWith(".bak"));
const lines = (file: string) => readFileSync(file, "utf8").split("\n");

describe("renderWriteConfig", () => {
    let root: string;
    let bin: string;
    before(() => {
        root = tempDir("config");
        bin = binDir(root);
    });
    // No fake server runs in these tests: only files to remove.
    after(() => rmSync(root, { recursive: true, force: true }));

    const fresh = (name: string) => {
        const zk = new FakeZk(join(root, name), 1);
        writeFileSync(join(zk.conf, "zoo.cfg"), ZOO_CFG);
        chmodSync(join(zk.conf, "zoo.cfg"), 0o640);
        return zk;
    };

    it("rewrites only the membership: other lines kept in order, block at the end, backup, myid", async () => {
        const z = fresh("static");
        const host = z.host();
        const r = await runScript(renderWriteConfig({ host, myid: 2, membership }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(lines(host.paths.configFile), [...KEPT, BLOCK_BEGIN, ...SERVER_LINES, "quorumListenOnAllIPs=false", BLOCK_END, ""]);
        const b = backups(z.conf);
        assert.equal(b.length, 1);
        assert.match(b[0], /^zoo\.cfg\.zkmigrate-\d{8}T\d{6}Z\.bak$/);
        assert.equal(readFileSync(join(z.conf, b[0]), "utf8"), ZOO_CFG, "the backup is the old file");
        assert.equal(statSync(host.paths.configFile).mode & 0o777, 0o640, "mode kept");
        assert.equal(readFileSync(host.paths.myidFile, "utf8"), "2\n");
        assert.deepEqual(readdirSync(z.conf).filter((f) => f.startsWith(".")), [], "no temp file left");
        assert.match(r.stdout, /zkmigrate: backup of .*zoo\.cfg: .*\.bak/);
        assert.match(r.stdout, /zkmigrate: wrote .*zoo\.cfg/);
        assert.match(r.stdout, /server\.2=\[2001:db8::2\]:2888:3888/);

        // Twice: nothing changes, no second backup.
        const before = readFileSync(host.paths.configFile, "utf8");
        const mtime = statSync(host.paths.configFile).mtimeMs;
        const again = await runScript(renderWriteConfig({ host, myid: 2, membership }), { binDir: bin });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /zoo\.cfg unchanged/);
        assert.match(again.stdout, /myid unchanged \(holds 2\)/);
        assert.equal(readFileSync(host.paths.configFile, "utf8"), before);
        assert.equal(statSync(host.paths.configFile).mtimeMs, mtime);
        assert.equal(backups(z.conf).length, 1);
        assert.equal(backups(z.dataDir).length, 0, "myid was new: no backup of it");
    });

    it("moves the block when the membership changes, keeping the other lines", async () => {
        const z = fresh("change");
        const host = z.host();
        assert.equal((await runScript(renderWriteConfig({ host, myid: 1, membership }), { binDir: bin })).code, 0);
        const smaller: Membership = { members: membership.members.filter((m) => m.id !== 2), quorumListenOnAllIPs: true };
        // A second, later write (backups are per second).
        await new Promise((r) => setTimeout(r, 1100));
        const r = await runScript(renderWriteConfig({ host, myid: 1, membership: smaller }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(lines(host.paths.configFile), [
            ...KEPT,
            BLOCK_BEGIN,
            "server.1=10.0.0.1:2888:3888",
            "server.3=10.0.0.3:2888:3888",
            "quorumListenOnAllIPs=true",
            BLOCK_END,
            "",
        ]);
        assert.equal(backups(z.conf).length, 2);
    });

    it("rewrites a wrong myid (with a backup) and leaves a right one alone", async () => {
        const z = fresh("myid");
        const host = z.host();
        writeFileSync(host.paths.myidFile, "7\n");
        const r = await runScript(renderWriteConfig({ host, myid: 3, membership }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(readFileSync(host.paths.myidFile, "utf8"), "3\n");
        assert.equal(backups(z.dataDir).length, 1);
        writeFileSync(host.paths.myidFile, "3"); // no newline: the same id
        const again = await runScript(renderWriteConfig({ host, myid: 3, membership }), { binDir: bin });
        assert.match(again.stdout, /myid unchanged/);
        assert.equal(readFileSync(host.paths.myidFile, "utf8"), "3");
    });

    it("with a dynamic config file: server lines there (whole file), quorumListenOnAllIPs in zoo.cfg", async () => {
        const z = fresh("dynamic");
        const host = z.host({ dynamic: true });
        writeFileSync(host.paths.configFile, ZOO_CFG + `dynamicConfigFile=${host.paths.dynamicConfigFile}\n`);
        writeFileSync(host.paths.dynamicConfigFile!, "server.1=old-1.example:2888:3888:participant;0.0.0.0:2181\nserver.5=x:1:2\n");
        const m = { ...membership, quorumListenOnAllIPs: true };
        const r = await runScript(renderWriteConfig({ host, myid: 1, membership: m }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(lines(host.paths.configFile), [
            ...KEPT,
            `dynamicConfigFile=${host.paths.dynamicConfigFile}`,
            BLOCK_BEGIN,
            "quorumListenOnAllIPs=true",
            BLOCK_END,
            "",
        ]);
        assert.deepEqual(lines(host.paths.dynamicConfigFile!), [...SERVER_LINES, ""]);
        assert.equal(backups(z.conf).length, 2, "zoo.cfg and the dynamic file backed up");
        assert.doesNotMatch(r.stderr, /warning/);

        const again = await runScript(renderWriteConfig({ host, myid: 1, membership: m }), { binDir: bin });
        assert.equal(again.code, 0, again.stderr);
        assert.equal(backups(z.conf).length, 2, "idempotent");
        assert.match(again.stdout, /zoo\.cfg\.dynamic unchanged/);
    });

    it("creates a missing dynamic config file and warns when zoo.cfg does not point at it", async () => {
        const z = fresh("dynamic-new");
        const host = z.host({ dynamic: true });
        const r = await runScript(renderWriteConfig({ host, myid: 1, membership }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(lines(host.paths.dynamicConfigFile!), [...SERVER_LINES, ""]);
        assert.equal(statSync(host.paths.dynamicConfigFile!).mode & 0o777, 0o640, "mode of zoo.cfg");
        assert.match(r.stderr, /warning: .*has no line dynamicConfigFile=/);
    });

    it("writes through a symlinked zoo.cfg and keeps the link", async () => {
        const z = fresh("symlink");
        const host = z.host();
        const real = join(z.conf, "zoo.cfg.real");
        writeFileSync(real, ZOO_CFG);
        unlinkSync(host.paths.configFile);
        symlinkSync(real, host.paths.configFile);
        const r = await runScript(renderWriteConfig({ host, myid: 1, membership }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        assert.ok(statSync(host.paths.configFile).isFile());
        assert.ok(lstatSync(host.paths.configFile).isSymbolicLink(), "the link is still a link");
        assert.match(readFileSync(real, "utf8"), /server\.3=10\.0\.0\.3:2888:3888/);
    });

    it("fails clearly when zoo.cfg does not exist, and changes nothing", async () => {
        const z = fresh("missing");
        const host = z.host();
        unlinkSync(host.paths.configFile);
        const r = await runScript(renderWriteConfig({ host, myid: 1, membership }), { binDir: bin });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^zkmigrate: zoo\.cfg .*\/conf\/zoo\.cfg does not exist/m);
        assert.equal(existsSync(host.paths.myidFile), false);
    });

    // Observers: zkmigrate writes voters only; a config with observers is refused, not rewritten.
    const observerCases: { name: string; zooCfg: string; dynamic?: string; found: RegExp }[] = [
        { name: "an observer server line", zooCfg: ZOO_CFG + "server.4=obs.example:2888:3888:observer\n", found: /zoo\.cfg: server\.4=obs\.example:2888:3888:observer$/m },
        { name: "an observer line with a client port", zooCfg: ZOO_CFG + "server.2 = old-2.example:2888:3888:observer;2181\r\n", found: /server\.2 = old-2\.example:2888:3888:observer;2181$/m },
        { name: "peerType=observer (this server is an observer)", zooCfg: ZOO_CFG + "peerType=observer\n", found: /zoo\.cfg: peerType=observer$/m },
        { name: "an observer in the dynamic config file", zooCfg: ZOO_CFG, dynamic: "server.1=a:2888:3888:participant;2181\nserver.9=b:2888:3888:observer;2181\n", found: /zoo\.cfg\.dynamic: server\.9=b:2888:3888:observer;2181$/m },
    ];
    for (const c of observerCases) {
        it(`refuses ${c.name}, naming the line, and changes nothing`, async () => {
            const z = fresh(`observer-${observerCases.indexOf(c)}`);
            const host = z.host({ dynamic: c.dynamic !== undefined });
            writeFileSync(host.paths.configFile, c.zooCfg);
            if (c.dynamic !== undefined) writeFileSync(host.paths.dynamicConfigFile!, c.dynamic);
            const r = await runScript(renderWriteConfig({ host, myid: 1, membership }), { binDir: bin });
            assert.equal(r.code, 1, r.stdout);
            assert.match(r.stderr, /^zkmigrate: observer found:$/m);
            assert.match(r.stderr, c.found);
            assert.match(r.stderr, /zkmigrate writes only the observers its plan declares \(joinAs: observer\): the membership it writes would make these observers voters, or drop them\. .*nothing was changed$/m);
            assert.equal(readFileSync(host.paths.configFile, "utf8"), c.zooCfg, "zoo.cfg untouched");
            assert.equal(existsSync(host.paths.myidFile), false, "no myid written");
            assert.deepEqual(backups(z.conf), []);
        });
    }

    // The observer join: the observers the plan declares are written (with peerType on the observer) and accepted.
    const joint = {
        members: [
            ...membership.members,
            { id: 4, address: "10.0.0.4", peerPort: 2888, electionPort: 3888, observer: true as const },
            { id: 5, address: "10.0.0.5", peerPort: 2888, electionPort: 3888, observer: true as const },
        ],
        quorumListenOnAllIPs: false,
    };
    it("writes the planned observers: their lines with :observer, peerType=observer on an observer only, and re-runs unchanged", async () => {
        const z = fresh("observer-planned");
        const host = z.host();
        writeFileSync(host.paths.configFile, ZOO_CFG + "peerType=participant\n");
        const r = await runScript(renderWriteConfig({ host, myid: 4, membership: joint }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
        const cfg = readFileSync(host.paths.configFile, "utf8");
        assert.match(cfg, /^server\.4=10\.0\.0\.4:2888:3888:observer$/m);
        assert.match(cfg, /^server\.5=10\.0\.0\.5:2888:3888:observer$/m);
        assert.match(cfg, /^server\.1=10\.0\.0\.1:2888:3888$/m);
        assert.match(cfg, /^peerType=observer$/m);
        assert.doesNotMatch(cfg, /peerType=participant/, "the old peerType line is replaced");
        const again = await runScript(renderWriteConfig({ host, myid: 4, membership: joint }), { binDir: bin });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /unchanged/);
        // A voter of the same membership gets no peerType line.
        const v = fresh("observer-planned-voter");
        const vh = v.host();
        const rv = await runScript(renderWriteConfig({ host: vh, myid: 1, membership: joint }), { binDir: bin });
        assert.equal(rv.code, 0, rv.stderr);
        assert.doesNotMatch(readFileSync(vh.paths.configFile, "utf8"), /peerType/);
    });

    it("refuses an observer the plan does not declare, even beside planned ones", async () => {
        const z = fresh("observer-unplanned");
        const host = z.host();
        const cfg = ZOO_CFG + "server.9=x.example:2888:3888:observer\n";
        writeFileSync(host.paths.configFile, cfg);
        const r = await runScript(renderWriteConfig({ host, myid: 4, membership: joint }), { binDir: bin });
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, /zoo\.cfg: server\.9=x\.example:2888:3888:observer$/m);
        assert.equal(readFileSync(host.paths.configFile, "utf8"), cfg, "zoo.cfg untouched");
    });

    it("a commented-out observer line or a participant is no observer", async () => {
        const z = fresh("observer-comment");
        const host = z.host();
        writeFileSync(host.paths.configFile, ZOO_CFG + "# server.4=obs.example:2888:3888:observer\npeerType=participant\n");
        const r = await runScript(renderWriteConfig({ host, myid: 1, membership }), { binDir: bin });
        assert.equal(r.code, 0, r.stderr);
    });

    it("validates its input", () => {
        const host = new FakeZk(join(root, "validate"), 1).host();
        assert.throws(() => renderWriteConfig({ host, myid: 4, membership }), /myid 4 is not a member/);
        assert.throws(() => renderWriteConfig({ host, myid: 0, membership }), /myid must be an integer in 1..255/);
        const dup = { ...membership, members: [...membership.members, membership.members[0]] };
        assert.throws(() => renderWriteConfig({ host, myid: 1, membership: dup }), /server id 3 appears twice/);
        const bad = { ...membership, members: [{ id: 1, address: "a b", peerPort: 2888, electionPort: 3888 }] };
        assert.throws(() => renderWriteConfig({ host, myid: 1, membership: bad }), /address of server\.1/);
        const relative = { ...host, paths: { ...host.paths, configFile: "zoo.cfg" } };
        assert.throws(() => renderWriteConfig({ host: relative, myid: 1, membership }), /paths\.configFile must be an absolute path/);
    });
});
