// The fleet's record: what it is made of (hosts, addresses, keys, pids), where it is kept
// (`<run root>/<fleet>/fleet.json`, run root $ZKMIGRATE_RUN_DIR or /run/zkmigrate, where another
// process finds the fleet), and what it answers (hosts by name, connect strings, the stack
// config's host part, the Kafka bootstrap).
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HostSettings, KafkaSettings } from "../../src/types";
import { KAFKA_PORT } from "../kafka";

export interface FleetEnsembleSpec {
    /** A label: host names are `<name>-<myid>`. */
    name: string;
    /** Number of servers. */
    servers: number;
    /** myid of the first server; the others follow. Default: after the previous ensemble's. */
    firstId?: number;
    /** ZooKeeper version (x.y.z or a line such as "3.8"); default: the fleet's. */
    version?: string;
    /** Start the servers at create and wait until they serve (default true). */
    start?: boolean;
    /**
     * Extra zoo.cfg settings of its servers (written at create, after the base settings), e.g.
     * `reconfigEnabled: "true"` and `skipACL: "yes"` for dynamic reconfig.
     */
    settings?: Record<string, string>;
}

export interface FleetSpec {
    /** [a-z][a-z0-9-]*, at most 24 characters. */
    name: string;
    ensembles: FleetEnsembleSpec[];
    /** Default ZooKeeper version of the ensembles (default: the newest 3.9). */
    version?: string;
    /** healthTimeoutSeconds of the fleet's HostSettings (default 60). */
    healthTimeoutSeconds?: number;
    /** JVM options after the defaults (a later -Xmx wins), e.g. ["-Xmx1g"] for large trees. */
    zkJvmOptions?: string[];
    /** Kafka brokers (ZooKeeper mode) on hosts of their own, started on one of the ensembles. */
    kafka?: FleetKafkaSpec;
}

export interface FleetKafkaSpec {
    /** Number of brokers; hosts are `kafka-<broker.id>`. */
    brokers: number;
    /** broker.id of the first broker (default 1). */
    firstId?: number;
    /** The ensemble whose servers the brokers' zookeeper.connect lists (it must start at create). */
    zookeeper: string;
    /** The chroot of that connect string (Kafka creates it). */
    chroot?: string;
    /** Kafka version (3.x.y; default the newest 3.9). */
    version?: string;
}

export interface FleetHost {
    /** `<ensemble>-<myid>`; also the host's host name (`uname -n` over SSH). */
    name: string;
    ensemble: string;
    id: number;
    version: string;
    netns: string;
    /** The root-namespace end of the host's veth (the host's end is eth0). */
    veth: string;
    address: string;
    /** The host's directory as seen from the root namespace (conf/, data/, logs/, run/, bin/, ssh/). */
    dir: string;
    sshdConfig: string;
    /** sshd's pid (root namespace), recorded at create. */
    sshdPid?: number;
    /** ZooKeeper's pid file, as seen from the root namespace. */
    zkPidFile: string;
    /** ZooKeeper's pid recorded at create (it changes with every restart; the pid file is current). */
    zkPid?: number;
    /** "kafka" for a broker host (id is then its broker.id, zkPidFile the broker's pid file); else ZooKeeper. */
    kind?: "kafka";
}

/** A fleet of local hosts (network namespaces) as fleet.json records it; not the Pulumi `Fleet` component. */
export interface LocalFleet {
    name: string;
    /** The fleet's directory (state, keys, hosts). */
    dir: string;
    stateFile: string;
    subnet: string;
    bridge: string;
    /** The bridge's address in the root namespace (the hosts' default gateway). */
    bridgeAddress: string;
    /** Where each host sees its own directory (in its own mount namespace). */
    mountPoint: string;
    sshKey: string;
    sshPublicKey: string;
    knownHosts: string;
    sshUser: string;
    /** The same for every host: paths and service commands as the host sees them. */
    hostSettings: HostSettings;
    /** Rules added to the root namespace's filter table (iptables arguments after -A/-D). */
    rootRules: string[][];
    /** The brokers' install as every broker host sees it (when the fleet has Kafka). */
    kafkaSettings?: KafkaSettings;
    hosts: FleetHost[];
    spec: FleetSpec;
    createdAt: string;
}

export interface ScriptResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
    timedOut: boolean;
}

// ---------------------------------------------------------------------------------------------
// Names

/** A fleet's name: it names namespaces and devices. */
export const FLEET_NAME = /^[a-z][a-z0-9-]{0,23}$/;

/** The root of all fleets' directories: $ZKMIGRATE_RUN_DIR or /run/zkmigrate. */
export function runRoot(): string {
    const env = process.env.ZKMIGRATE_RUN_DIR;
    return env && env.length > 0 ? env : "/run/zkmigrate";
}

export function fleetDir(name: string): string {
    checkName(name);
    return join(runRoot(), name);
}

export function checkName(name: string): void {
    if (!FLEET_NAME.test(name)) throw new Error(`zkmigrate fleet: name ${JSON.stringify(name)} must match ${FLEET_NAME} (it names namespaces and devices)`);
}

// ---------------------------------------------------------------------------------------------
// The record

export function loadFleet(name: string): LocalFleet | undefined {
    const file = join(fleetDir(name), "fleet.json");
    if (!existsSync(file)) return undefined;
    return JSON.parse(readFileSync(file, "utf8")) as LocalFleet;
}

export function listFleets(): string[] {
    if (!existsSync(runRoot())) return [];
    return readdirSync(runRoot()).filter((n) => FLEET_NAME.test(n) && existsSync(join(runRoot(), n, "fleet.json")));
}

export function saveFleet(f: LocalFleet): void {
    const tmp = `${f.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(f, null, 2) + "\n", { mode: 0o600 });
    renameSync(tmp, f.stateFile);
}

export function host(f: LocalFleet, name: string | number): FleetHost {
    const h = f.hosts.find((x) => x.name === name || x.id === name);
    if (!h) throw new Error(`zkmigrate fleet ${f.name}: no host ${name} (hosts: ${f.hosts.map((x) => `${x.name} (myid ${x.id})`).join(", ")})`);
    return h;
}

export function hostsOf(f: LocalFleet, ensemble: string): FleetHost[] {
    return f.hosts.filter((h) => h.ensemble === ensemble);
}

/** `addr:2181,...` of an ensemble (or of the given hosts). */
export function connectString(f: LocalFleet, hosts: string | FleetHost[]): string {
    const list = typeof hosts === "string" ? hostsOf(f, hosts) : hosts;
    return list.map((h) => `${h.address}:${f.hostSettings.clientPort}`).join(",");
}

/**
 * The fleet's part of a stack config: per-ensemble `zookeeper`, `service` and
 * `healthTimeoutSeconds` keys (the same for every ensemble of the fleet).
 */
export function stackHostConfig(f: LocalFleet): Record<string, unknown> {
    const s = f.hostSettings;
    return {
        zookeeper: { clientPort: s.clientPort, configFile: s.paths.configFile, dataDir: s.paths.dataDir, myidFile: s.paths.myidFile },
        service: { ...s.service },
        healthTimeoutSeconds: s.healthTimeoutSeconds,
    };
}

/**
 * The fleet's SSH part of a stack config: the login user and every host's pinned host key (the
 * fleet's known_hosts, as text), so that every remote command verifies the host it reaches.
 */
export function stackSshConfig(f: LocalFleet): { sshUser: string; sshKnownHosts: string } {
    return { sshUser: f.sshUser, sshKnownHosts: readFileSync(f.knownHosts, "utf8") };
}

/** `host:port,...[/chroot]` the brokers start with (their ensemble's servers and the chroot). */
export function kafkaConnect(f: LocalFleet): string {
    const k = f.spec.kafka;
    if (!k) throw new Error(`zkmigrate fleet ${f.name} has no Kafka`);
    return `${connectString(f, k.zookeeper)}${k.chroot ?? ""}`;
}

/** `address:9092` of every broker. */
export function kafkaBootstrap(f: LocalFleet): string[] {
    return f.hosts.filter((h) => h.kind === "kafka").map((h) => `${h.address}:${KAFKA_PORT}`);
}
