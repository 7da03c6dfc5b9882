// Creating a fleet: the spec expanded into hosts, then network, keys, each host's files (the
// service script, zoo.cfg and myid, or a broker's files), sshd per host, and the ensembles that
// start at create running and serving (the brokers after them). Idempotent: an existing fleet of
// the same spec is completed.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HostSettings } from "../../src/types";
import { serverLine } from "../../src/format/zoo-cfg";
import { KAFKA_PORT, KAFKA_TOOLS, DEFAULT_KAFKA_VERSION, ensureKafka, kafkaService, log4jProperties, serverProperties, toolScript } from "../kafka";
import { DEBIAN_PACKAGES, JVM_OPTIONS, MAIN_CLASS, baseSettings, ensureZkCliClasspath, ensureZooKeeper, findCommand, renderSettings, resolveVersion, sleep } from "../zookeeper";
import { checkNetworkFree, ensureBridge, ensureHostNetwork, fleetNetwork, netnsList, netnsName, vethName } from "./network";
import { hostService, processMark, tcpOpen, zkPid } from "./processes";
import { renderServiceScript, type ServiceScriptSpec } from "./service-script";
import { ensureFleetKey, ensureSshd, installSshd, waitSshd, writeKnownHosts } from "./sshd";
import { checkName, fleetDir, kafkaConnect, loadFleet, saveFleet, type LocalFleet, type FleetHost, type FleetSpec } from "./state";
import { waitServing } from "./status";

const ENSEMBLE = /^[a-z][a-z0-9]{0,11}$/;

// ---------------------------------------------------------------------------------------------
// Prerequisites

/** What the fleet needs; throws one error naming every missing piece and its Debian package. */
export function checkPrerequisites(): Record<string, string> {
    const problems: string[] = [];
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
        problems.push("not root: network namespaces, the bridge, sshd on port 22 and iptables need root (run as root, e.g. sudo npm run test:integration)");
    }
    const found: Record<string, string> = {};
    const missing = new Map<string, string[]>();
    for (const cmd of ["ip", "iptables", "sshd", "ssh", "ssh-keygen", "java", "mvn", "unshare", "nsenter", "setsid", "timeout"]) {
        const p = findCommand(cmd);
        if (p) {
            found[cmd] = p;
        } else {
            const pkg = DEBIAN_PACKAGES[cmd] ?? cmd;
            missing.set(pkg, [...(missing.get(pkg) ?? []), cmd]);
        }
    }
    for (const [pkg, cmds] of missing) {
        problems.push(`${cmds.join(", ")} not found: install the Debian package ${pkg} (apt-get install ${pkg}; tools/setup.sh does it)`);
    }
    if (problems.length > 0) {
        throw new Error(`zkmigrate fleet: cannot run a local fleet here:\n  - ${problems.join("\n  - ")}`);
    }
    return found;
}
// ---------------------------------------------------------------------------------------------
// Create

/** Expands the spec into hosts (names, myids, versions, addresses). */
function layout(spec: FleetSpec, prefix: string): Omit<FleetHost, "dir" | "sshdConfig" | "zkPidFile" | "netns" | "veth">[] {
    if (spec.ensembles.length === 0) throw new Error("zkmigrate fleet: a fleet needs at least one ensemble");
    const out: Omit<FleetHost, "dir" | "sshdConfig" | "zkPidFile" | "netns" | "veth">[] = [];
    const ids = new Set<number>();
    let next = 1;
    for (const e of spec.ensembles) {
        if (!ENSEMBLE.test(e.name)) throw new Error(`zkmigrate fleet: ensemble name ${JSON.stringify(e.name)} must match ${ENSEMBLE}`);
        if (!Number.isInteger(e.servers) || e.servers < 1) throw new Error(`zkmigrate fleet: ensemble ${e.name} needs 1 or more servers`);
        const first = e.firstId ?? next;
        for (let i = 0; i < e.servers; i++) {
            const id = first + i;
            if (id < 1 || id > 255 || ids.has(id)) throw new Error(`zkmigrate fleet: myid ${id} of ensemble ${e.name} is outside 1..255 or used twice`);
            ids.add(id);
            out.push({ name: `${e.name}-${id}`, ensemble: e.name, id, version: resolveVersion(e.version ?? spec.version), address: "" });
        }
        next = first + e.servers;
    }
    if (spec.kafka) {
        const k = spec.kafka;
        if (!spec.ensembles.some((e) => e.name === k.zookeeper && e.start !== false)) {
            throw new Error(`zkmigrate fleet: kafka.zookeeper ${JSON.stringify(k.zookeeper)} must name an ensemble of the fleet that starts at create`);
        }
        if (spec.ensembles.some((e) => e.name === "kafka")) throw new Error('zkmigrate fleet: an ensemble named "kafka" would share host names with the brokers');
        if (!Number.isInteger(k.brokers) || k.brokers < 1) throw new Error("zkmigrate fleet: kafka.brokers must be 1 or more");
        for (let i = 0; i < k.brokers; i++) {
            const id = (k.firstId ?? 1) + i;
            out.push({ name: `kafka-${id}`, ensemble: "kafka", id, version: k.version ?? DEFAULT_KAFKA_VERSION, address: "", kind: "kafka" });
        }
    }
    if (out.length > 200) throw new Error("zkmigrate fleet: at most 200 hosts");
    out.forEach((h, i) => (h.address = `${prefix}.${11 + i}`));
    return out;
}

/**
 * Creates the fleet, or completes an existing one with the same spec (idempotent): network,
 * keys, sshd per host, ZooKeeper installed (config and myid written only when missing), and the
 * ensembles with `start` running and serving.
 */
export async function createFleet(spec: FleetSpec, o: { log?: (line: string) => void } = {}): Promise<LocalFleet> {
    const say = o.log ?? (() => undefined);
    const tools = checkPrerequisites();
    checkName(spec.name);
    const net = fleetNetwork(spec.name);
    const dir = fleetDir(spec.name);
    const existing = loadFleet(spec.name);
    const normalized: FleetSpec = JSON.parse(JSON.stringify(spec));
    if (existing && JSON.stringify(existing.spec) !== JSON.stringify(normalized)) {
        throw new Error(`zkmigrate fleet ${spec.name} exists with another layout (${existing.stateFile}); destroy it first`);
    }
    await checkNetworkFree(spec.name);

    // ZooKeeper releases first: the slowest part on a fresh machine, and nothing to undo.
    const versions = [...new Set(layout(spec, net.prefix).filter((h) => h.kind !== "kafka").map((h) => h.version))];
    const classpaths = new Map<string, string>();
    for (const v of versions) {
        say(`ZooKeeper ${v}: resolving through Maven`);
        classpaths.set(v, (await ensureZooKeeper(v)).classpath);
    }
    // zkCli (bin/zk-cli on every ZooKeeper host) needs Commons CLI beside a release's jars.
    if (versions.length > 0) classpaths.set("zkcli", await ensureZkCliClasspath());
    if (spec.kafka) {
        const v = spec.kafka.version ?? DEFAULT_KAFKA_VERSION;
        say(`Kafka ${v}: resolving through Maven`);
        classpaths.set(`kafka-${v}`, (await ensureKafka(v)).classpath);
    }

    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const mountPoint = join(dir, "host");
    mkdirSync(mountPoint, { recursive: true });
    const sshDir = join(dir, "ssh");
    mkdirSync(sshDir, { recursive: true, mode: 0o700 });
    const { sshKey, knownHosts } = await ensureFleetKey(sshDir, spec.name, tools);
    const hostSettings: HostSettings = {
        paths: { configFile: join(mountPoint, "conf", "zoo.cfg"), myidFile: join(mountPoint, "data", "myid"), dataDir: join(mountPoint, "data") },
        service: {
            start: `${mountPoint}/bin/zk-service start`,
            stop: `${mountPoint}/bin/zk-service stop`,
            restart: `${mountPoint}/bin/zk-service restart`,
            status: `${mountPoint}/bin/zk-service status`,
            disable: `${mountPoint}/bin/zk-service disable`,
        },
        clientPort: 2181,
        healthTimeoutSeconds: spec.healthTimeoutSeconds ?? 60,
    };
    const hosts: FleetHost[] = layout(spec, net.prefix).map((h, i) => {
        const hdir = join(dir, "hosts", h.name);
        const prev = existing?.hosts.find((x) => x.name === h.name);
        return {
            ...h,
            netns: netnsName(spec.name, h.name),
            veth: vethName(net.bridge, i),
            dir: hdir,
            sshdConfig: join(hdir, "ssh", "sshd_config"),
            zkPidFile: join(hdir, "run", h.kind === "kafka" ? "kafka.pid" : "zookeeper.pid"),
            sshdPid: prev?.sshdPid,
        };
    });
    const fleet: LocalFleet = {
        name: spec.name,
        dir,
        stateFile: join(dir, "fleet.json"),
        subnet: net.subnet,
        bridge: net.bridge,
        bridgeAddress: net.bridgeAddress,
        mountPoint,
        sshKey,
        sshPublicKey: `${sshKey}.pub`,
        knownHosts,
        sshUser: "root",
        hostSettings,
        rootRules: existing?.rootRules ?? [],
        ...(spec.kafka
            ? {
                  kafkaSettings: {
                      serverProperties: join(mountPoint, "conf", "server.properties"),
                      binDir: join(mountPoint, "bin"),
                      port: KAFKA_PORT,
                      service: { restart: `${mountPoint}/bin/kafka-service restart`, status: `${mountPoint}/bin/kafka-service status` },
                      healthTimeoutSeconds: 180,
                      spacingSeconds: 5,
                      allowChrootChange: false,
                  },
              }
            : {}),
        hosts,
        spec: normalized,
        createdAt: existing?.createdAt ?? new Date().toISOString(),
    };
    // Recorded before anything is made, so that destroy finds whatever a failed create left.
    saveFleet(fleet);

    // The bridge, with the root namespace's address on it, and the root-namespace rules.
    await ensureBridge(fleet, say, (rules) => {
        fleet.rootRules = rules;
        saveFleet(fleet);
    });

    // Hosts: namespace, veth, address, route; files; sshd.
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege separation directory
    const existingNs = new Set(await netnsList());
    for (const h of hosts) {
        await ensureHostNetwork(fleet, h, existingNs, say);
        if (h.kind === "kafka") await installKafkaHost(fleet, h, classpaths.get(`kafka-${h.version}`)!, tools);
        else await installHost(fleet, h, classpaths.get(h.version)!, tools, classpaths.get("zkcli"));
    }
    await writeKnownHosts(fleet);
    for (const h of hosts) await ensureSshd(fleet, h, tools);
    saveFleet(fleet);
    await waitSshd(fleet, hosts);

    // ZooKeeper of the ensembles that start now, all at once.
    const starting = hosts.filter((h) => h.kind !== "kafka" && spec.ensembles.find((e) => e.name === h.ensemble)?.start !== false);
    if (starting.length > 0) {
        say(`starting ZooKeeper on ${starting.map((h) => h.name).join(", ")}`);
        await Promise.all(starting.map((h) => hostService(fleet, h, "start")));
        await waitServing(fleet, starting, 120_000);
    }
    // The brokers, once their ZooKeeper serves; bounded until each listens.
    const brokers = hosts.filter((h) => h.kind === "kafka");
    if (brokers.length > 0) {
        say(`starting Kafka on ${brokers.map((h) => h.name).join(", ")}`);
        for (const h of brokers) {
            const r = await hostService(fleet, h, "start");
            if (r.code !== 0) throw new Error(`zkmigrate fleet ${spec.name}: Kafka on ${h.name} did not start: ${(r.stderr || r.stdout).trim()}`);
        }
        const deadline = Date.now() + 180_000;
        for (const h of brokers) {
            while (!(await tcpOpen(h.address, KAFKA_PORT))) {
                if (Date.now() > deadline) throw new Error(`zkmigrate fleet ${spec.name}: Kafka on ${h.name} does not listen on ${h.address}:${KAFKA_PORT} after 180 s (log: ${join(h.dir, "logs", "kafka.log")})`);
                await sleep(250);
            }
        }
    }
    for (const h of hosts) h.zkPid = zkPid(fleet, h);
    saveFleet(fleet);
    return fleet;
}

/** zk-service of a ZooKeeper host: QuorumPeerMain on conf/zoo.cfg; `disable` for a host replaced by a pod. */
function zooKeeperService(f: LocalFleet, h: FleetHost, java: string, classpath: string): ServiceScriptSpec {
    return {
        command: "zk-service",
        product: "ZooKeeper",
        version: h.version,
        fleet: f.name,
        host: h.name,
        home: f.mountPoint,
        java,
        mark: processMark(f.name, h.name),
        jvmOptions: [...JVM_OPTIONS, ...(f.spec.zkJvmOptions ?? [])],
        classpath,
        mainClass: MAIN_CLASS,
        configFile: "conf/zoo.cfg",
        pidFile: "run/zookeeper.pid",
        logFile: "logs/zookeeper.log",
        stopTimeoutSeconds: 20,
        disable: true,
    };
}

/** A broker host: the common host files, server.properties (when missing), log4j configs, kafka-service and the tools. */
async function installKafkaHost(f: LocalFleet, h: FleetHost, classpath: string, tools: Record<string, string>): Promise<void> {
    await installHost(f, h, "", tools);
    const props = join(h.dir, "conf", "server.properties");
    if (!existsSync(props)) {
        writeFileSync(props, serverProperties({ brokerId: h.id, address: h.address, zookeeperConnect: kafkaConnect(f), home: f.mountPoint }));
    }
    writeFileSync(join(h.dir, "conf", "log4j.properties"), log4jProperties({ tools: false }));
    writeFileSync(join(h.dir, "conf", "tools-log4j.properties"), log4jProperties({ tools: true }));
    writeFileSync(
        join(h.dir, "bin", "kafka-service"),
        renderServiceScript(kafkaService({ fleet: f.name, host: h.name, version: h.version, java: tools.java, classpath, home: f.mountPoint, mark: processMark(f.name, h.name) })),
        { mode: 0o755 },
    );
    for (const [name, mainClass] of Object.entries(KAFKA_TOOLS)) {
        writeFileSync(join(h.dir, "bin", name), toolScript({ java: tools.java, classpath, home: f.mountPoint, mainClass }), { mode: 0o755 });
    }
}

/** Host files: directories, host key, sshd config, zoo.cfg and myid (when missing), the service script. */
async function installHost(f: LocalFleet, h: FleetHost, classpath: string, tools: Record<string, string>, cliClasspath?: string): Promise<void> {
    for (const d of ["conf", "data", "logs", "run", "bin", "ssh", "etc"]) mkdirSync(join(h.dir, d), { recursive: true });
    writeFileSync(
        join(h.dir, "etc", "hosts"),
        `127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n` +
            f.hosts.map((x) => `${x.address} ${x.name}\n`).join("") +
            `${f.bridgeAddress} ${f.name}-gateway\n`,
    );
    writeFileSync(join(h.dir, "etc", "resolv.conf"), `# zkmigrate fleet ${f.name}: no DNS on the fleet's network (names are in /etc/hosts)\noptions timeout:1 attempts:1\n`);
    await installSshd(f, h, tools);
    if (h.kind === "kafka") return;
    const cfg = join(h.dir, "conf", "zoo.cfg");
    if (!existsSync(cfg)) {
        const members = f.hosts.filter((x) => x.ensemble === h.ensemble);
        const extra = f.spec.ensembles.find((e) => e.name === h.ensemble)?.settings ?? {};
        const settings = { ...baseSettings({ dataDir: f.hostSettings.paths.dataDir, clientPort: f.hostSettings.clientPort }), ...extra };
        writeFileSync(
            cfg,
            `# ZooKeeper ${h.version} of host ${h.name} (zkmigrate fleet ${f.name})\n` +
                renderSettings(settings) +
                // Unmarked, as an install leaves it: the first config step puts it in zkmigrate's block.
                members.map((m) => `${serverLine({ id: m.id, address: m.address, peerPort: 2888, electionPort: 3888 })}\n`).join(""),
        );
    }
    const myid = join(h.dir, "data", "myid");
    if (!existsSync(myid)) writeFileSync(myid, `${h.id}\n`);
    const script = join(h.dir, "bin", "zk-service");
    writeFileSync(script, renderServiceScript(zooKeeperService(f, h, tools.java, classpath)), { mode: 0o755 });
    // zkCli of the host's release, as a release's bin/zkCli.sh (the reconfig steps run it).
    const q = (x: string) => `'${x.replace(/'/g, `'\\''`)}'`;
    writeFileSync(
        join(h.dir, "bin", "zk-cli"),
        `#!/usr/bin/env bash\n# zkCli of ZooKeeper ${h.version} (zkmigrate fleet ${f.name})\nexec ${q(tools.java)} -Xmx64m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp ${q(`${classpath}:${cliClasspath ?? ""}`)} org.apache.zookeeper.ZooKeeperMain "$@"\n`,
        { mode: 0o755 },
    );
}
