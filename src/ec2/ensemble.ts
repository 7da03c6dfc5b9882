// Ephemeral test ensembles on EC2 (the seed's "ephemeral clusters" for rehearsing against real
// cloud hosts): the inputs, their checks, and everything the component declares, as plain data.
// No Pulumi here: components/ec2-ensemble.ts turns this into resources.
import { FOUR_LETTER_WHITELIST, renderZooCfg as layoutZooCfg, ZOO_CFG_BASE } from "../format/zoo-cfg";
import { serverLines } from "../scripts/config";
import type { HostSettings, ServerId } from "../types";
import { checkRuleCidr, contains, nthAddress, parseCidr, sizeOf, type Cidr } from "./cidr";

/** AMI families the user data is written for (package manager, JRE package, login user). */
export type AmiFamily = "amazon-linux-2023" | "debian-12";
export type Architecture = "x86_64" | "arm64";

/** The public SSM parameters that name the newest AMI of each family. */
export const AMI_PARAMETERS: Record<AmiFamily, Record<Architecture, string>> = {
    "amazon-linux-2023": {
        x86_64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        arm64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    },
    "debian-12": {
        x86_64: "/aws/service/debian/release/12/latest/amd64",
        arm64: "/aws/service/debian/release/12/latest/arm64",
    },
};

/** The login user of each family's images (the key pair's key is installed for it). */
export const SSH_USERS: Record<AmiFamily, string> = { "amazon-linux-2023": "ec2-user", "debian-12": "admin" };

/** Where the release tarballs are: every version stays on the archive (the mirrors keep the newest only). */
export const DEFAULT_DOWNLOAD_BASE = "https://archive.apache.org/dist/zookeeper";

/** At most this far ahead: the ensemble is a throwaway. */
export const MAX_TTL_HOURS = 30 * 24;

/** The tag keys every resource carries (a reaper finds expired ensembles by them). */
export const TAG_OWNER = "Owner";
export const TAG_EXPIRES = "ExpiresAt";
export const TAG_ENSEMBLE = "zkmigrate:ensemble";

/** The inputs of an ephemeral ensemble (the component's args). */
export interface Ec2EnsembleInput {
    /** Who answers for the instances: the `Owner` tag. Required. */
    owner: string;
    /** When the ensemble may be deleted: an ISO 8601 timestamp (`2026-12-01T18:00:00Z`). One of expiresAt and ttlHours is required. */
    expiresAt?: string;
    /** Hours from the first `pulumi up` until expiry (1..720); the tag is written at creation and kept. */
    ttlHours?: number;
    /** ZooKeeper release, x.y.z (3.5.5 or newer: the first with an `apache-zookeeper-<v>-bin.tar.gz`). */
    version: string;
    /** The myids, one instance each; an odd count. Default [1, 2, 3]. */
    ids?: ServerId[];
    /** The VPC of the subnet (the security group lives there). */
    vpcId: string;
    /** The subnet the instances go into. */
    subnetId: string;
    /** The subnet's IPv4 CIDR: the instances get fixed private addresses in it, so every zoo.cfg is known before launch. */
    subnetCidr: string;
    /** The private addresses, in the order of `ids`. Default: `firstHostIndex` onwards in the subnet. */
    privateIps?: string[];
    /** Offset in the subnet of the first instance's address when privateIps is not given. Default 10 (AWS reserves the first four). */
    firstHostIndex?: number;
    /** Admitted on the client, peer and election ports (clients, and the source hosts of a mitosis rehearsal). Default none. */
    clientCidrs?: string[];
    /** Admitted on SSH (22): where pulumi and operators connect from. Required; never 0.0.0.0/0 or ::/0. */
    adminCidrs: string[];
    /** Image family (package manager and login user). Default `amazon-linux-2023`. */
    amiFamily?: AmiFamily;
    /** Default `x86_64`; must match the instance type. */
    architecture?: Architecture;
    /** An AMI id of the family instead of the newest one from its SSM parameter. */
    ami?: string;
    /** Default `t3.small`. */
    instanceType?: string;
    /** Root volume size in GiB (encrypted gp3). Default 16. */
    rootVolumeGb?: number;
    /** KMS key for the root volumes; default: the account's EBS default key. */
    kmsKeyId?: string;
    /** An existing EC2 key pair. One of keyName and sshPublicKey is required. */
    keyName?: string;
    /** An OpenSSH public key; a key pair is created for it. */
    sshPublicKey?: string;
    /** Give the instances public addresses (pulumi then reaches them there over SSH). Default false. */
    publicIp?: boolean;
    /** JVM heap in MiB. Default 512. */
    heapMb?: number;
    /** Extra zoo.cfg settings (tickTime, autopurge...). */
    settings?: Record<string, string | number | boolean>;
    /** Default 2181 / 2888 / 3888. */
    ports?: { client?: number; peer?: number; election?: number };
    /** Where the release tarballs are (`<base>/zookeeper-<v>/apache-zookeeper-<v>-bin.tar.gz`). Default the Apache archive. */
    downloadBase?: string;
    /** The tarball's SHA-512; default: the `.sha512` file published beside it. */
    sha512?: string;
    /** How long the user data waits for `srvr` to answer with a Mode (the peers boot too). Default 600. */
    readyTimeoutSeconds?: number;
    /** Start ZooKeeper at boot. false: installed and configured, not started (a dormant mitosis target). Default true. */
    start?: boolean;
    /** Where things go on the instances; the defaults are the fleet config's defaults. */
    paths?: Partial<Ec2Paths>;
    /** More tags on every resource (`Owner`, `ExpiresAt` and the `zkmigrate:` keys are set by the component). */
    tags?: Record<string, string>;
}

/** Where ZooKeeper lives on an instance. */
export interface Ec2Paths {
    /** Default /etc/zookeeper/conf/zoo.cfg (the fleet config's default). */
    configFile: string;
    /** Default /var/lib/zookeeper. */
    dataDir: string;
    /** Default <dataDir>/myid. */
    myidFile: string;
    /** lib/ (the release's jars), conf/ (its logging config), bin/zookeeper-server. Default /opt/zookeeper. */
    installDir: string;
    /** Default /var/log/zookeeper. */
    logDir: string;
    /** The systemd unit; its name is the service name. Default /etc/systemd/system/zookeeper.service. */
    unitFile: string;
}

export interface Ec2Server {
    id: ServerId;
    /** The fixed private address (the `server.N` address and the fleet config's `host`). */
    privateIp: string;
}

export type RulePeer = { kind: "self" } | { kind: "cidr"; cidr: string; family: 4 | 6 };

/** One security group rule (TCP, one port). */
export interface SecurityRule {
    /** Unique in the ensemble: `in-2181-self`, `in-22-admin-0`, `out-443-any`... */
    name: string;
    direction: "ingress" | "egress";
    port: number;
    peer: RulePeer;
    description: string;
}

/** The checked, defaulted ensemble: what the component declares. */
export interface Ec2Ensemble {
    name: string;
    owner: string;
    /** ISO 8601, seconds precision, UTC. */
    expiresAt: string;
    /** The expiry came from ttlHours: keep the tag written at creation (no diff on every update). */
    expiryFromTtl: boolean;
    version: string;
    servers: Ec2Server[];
    vpcId: string;
    subnetId: string;
    ports: { client: number; peer: number; election: number };
    clientCidrs: string[];
    adminCidrs: string[];
    amiFamily: AmiFamily;
    architecture: Architecture;
    ami: { id: string } | { ssmParameter: string };
    sshUser: string;
    instanceType: string;
    rootVolumeGb: number;
    kmsKeyId?: string;
    key: { name: string } | { publicKey: string };
    publicIp: boolean;
    heapMb: number;
    settings: [string, string][];
    downloadBase: string;
    sha512?: string;
    readyTimeoutSeconds: number;
    start: boolean;
    paths: Ec2Paths;
    /** The systemd unit's name without `.service`. */
    serviceName: string;
    /** Tags on every resource. */
    tags: Record<string, string>;
    rules: SecurityRule[];
}

export interface Ec2Issue {
    /** The argument, e.g. `args.adminCidrs[0]`. */
    arg: string;
    reason: string;
}

export class Ec2EnsembleError extends Error {
    constructor(
        readonly ensemble: string,
        readonly issues: Ec2Issue[],
    ) {
        super(
            `invalid EC2 ensemble ${JSON.stringify(ensemble)} (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
                issues.map((i) => `  - ${i.arg}: ${i.reason}`).join("\n"),
        );
        this.name = "Ec2EnsembleError";
    }
}

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** Characters AWS admits in tag keys and values. */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const VERSION = /^(\d+)\.(\d+)\.(\d+)$/;
/** Absolute, no whitespace or quotes: the paths go into a systemd unit and zoo.cfg as they are. */
const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]*$/;
/** zoo.cfg settings the component writes itself. */
const RESERVED_SETTINGS: [RegExp, string][] = [
    [/^dataDir$/, "comes from args.paths.dataDir"],
    [/^clientPort$/, "comes from args.ports.client"],
    [/^server\.\d+$/, "the membership comes from args.ids and the private addresses"],
    [/^(group|weight)\.\d+$/, "hierarchical quorums change what a majority is"],
    [/^quorumListenOnAllIPs$/, "written with the membership (zkmigrate's config step owns it)"],
    [/^dynamicConfigFile$/, "the membership lives in zoo.cfg, where zkmigrate's config step rewrites it"],
    [/^reconfigEnabled$/, "the membership is changed by zkmigrate's rolling restarts, not by reconfig"],
];

export const DEFAULT_PATHS: Ec2Paths = {
    configFile: "/etc/zookeeper/conf/zoo.cfg",
    dataDir: "/var/lib/zookeeper",
    myidFile: "/var/lib/zookeeper/myid",
    installDir: "/opt/zookeeper",
    logDir: "/var/log/zookeeper",
    unitFile: "/etc/systemd/system/zookeeper.service",
};

function isoSeconds(d: Date): string {
    return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Checks the inputs and resolves every default. `name` is the component's name (a DNS label: it
 * names resources and tags). `now` is the time of the update (expiry from ttlHours). Throws an
 * Ec2EnsembleError listing every problem, each naming its argument.
 */
export function resolveEc2Ensemble(name: string, input: Ec2EnsembleInput, now: Date = new Date()): Ec2Ensemble {
    const issues: Ec2Issue[] = [];
    const bad = (arg: string, reason: string) => issues.push({ arg, reason });
    const a = (input ?? {}) as Partial<Ec2EnsembleInput>;

    if (typeof name !== "string" || !DNS_LABEL.test(name) || name.length > 40) {
        bad("name", `${JSON.stringify(name)} is not a DNS label of at most 40 characters (a-z, 0-9, -): it names the instances and their tags`);
    }

    // Owner and expiry: a throwaway must say whose it is and when it may go.
    const owner = typeof a.owner === "string" ? a.owner.trim() : "";
    if (owner.length === 0) bad("args.owner", "required: who answers for these instances (the Owner tag), e.g. an e-mail address or team");
    else if (owner.length > 256 || !TAG_TEXT.test(owner)) bad("args.owner", `${JSON.stringify(a.owner)} is not a tag value (at most 256 letters, digits, spaces and _ . : / = + - @)`);

    let expiresAt = "";
    const expiryFromTtl = a.expiresAt === undefined && a.ttlHours !== undefined;
    const maxAt = now.getTime() + MAX_TTL_HOURS * 3600_000;
    if (a.expiresAt !== undefined && a.ttlHours !== undefined) {
        bad("args.expiresAt", "give expiresAt or ttlHours, not both");
    } else if (a.expiresAt !== undefined) {
        const t = typeof a.expiresAt === "string" && /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(a.expiresAt) ? Date.parse(a.expiresAt) : NaN;
        if (Number.isNaN(t)) bad("args.expiresAt", `${JSON.stringify(a.expiresAt)} is not an ISO 8601 date or timestamp with a zone, e.g. 2026-12-01T18:00:00Z`);
        else if (t <= now.getTime()) bad("args.expiresAt", `${isoSeconds(new Date(t))} has passed: extend it, or destroy the ensemble (pulumi destroy)`);
        else if (t > maxAt) bad("args.expiresAt", `${isoSeconds(new Date(t))} is more than ${MAX_TTL_HOURS / 24} days ahead: an ephemeral ensemble is a throwaway`);
        else expiresAt = isoSeconds(new Date(t));
    } else if (a.ttlHours !== undefined) {
        if (!Number.isInteger(a.ttlHours) || a.ttlHours < 1 || a.ttlHours > MAX_TTL_HOURS) bad("args.ttlHours", `must be a whole number of hours in 1..${MAX_TTL_HOURS}, got ${a.ttlHours}`);
        else expiresAt = isoSeconds(new Date(now.getTime() + a.ttlHours * 3600_000));
    } else {
        bad("args.expiresAt", "required (or args.ttlHours): when the ensemble may be deleted (the ExpiresAt tag)");
    }

    const vm = typeof a.version === "string" ? VERSION.exec(a.version) : null;
    if (!vm) bad("args.version", `${JSON.stringify(a.version)} is not a ZooKeeper release x.y.z, e.g. 3.9.3`);
    else if (Number(vm[1]) < 3 || (Number(vm[1]) === 3 && (Number(vm[2]) < 5 || (Number(vm[2]) === 5 && Number(vm[3]) < 5)))) {
        bad("args.version", `${a.version} is older than 3.5.5, the first release published as apache-zookeeper-<v>-bin.tar.gz`);
    }

    // Members: myids and fixed private addresses in the subnet.
    const ids = a.ids ?? [1, 2, 3];
    if (!Array.isArray(ids) || ids.length === 0) bad("args.ids", "a list of myids, one per instance");
    else {
        ids.forEach((id, i) => {
            if (!Number.isInteger(id) || id < 1 || id > 255) bad(`args.ids[${i}]`, `a myid is an integer in 1..255, got ${id}`);
            else if (ids.indexOf(id) !== i) bad(`args.ids[${i}]`, `myid ${id} is listed twice`);
        });
        if (ids.length % 2 === 0) bad("args.ids", `${ids.length} servers: an even ensemble survives no more failures than one server fewer; use an odd count`);
    }
    for (const k of ["vpcId", "subnetId"] as const) {
        if (typeof a[k] !== "string" || a[k]!.trim() === "") bad(`args.${k}`, "required");
    }
    let subnet: Cidr | undefined;
    try {
        subnet = parseCidr(a.subnetCidr as string);
        if (subnet.family !== 4) throw new Error("the fixed private addresses are IPv4: give the subnet's IPv4 CIDR");
        if (subnet.prefix > 28 || subnet.prefix < 16) throw new Error(`AWS subnets are /16 to /28, got /${subnet.prefix}`);
    } catch (e) {
        bad("args.subnetCidr", (e as Error).message);
        subnet = undefined;
    }
    const servers: Ec2Server[] = [];
    if (subnet && Array.isArray(ids)) {
        const size = Number(sizeOf(subnet));
        // AWS keeps the first four addresses of a subnet and the last one.
        const usable = (ip: string, arg: string): boolean => {
            if (!contains(subnet!, ip)) {
                bad(arg, `${ip} is not in the subnet ${subnet!.text}`);
                return false;
            }
            const off = Number(parseCidr(`${ip}/32`).network - subnet!.network);
            if (off < 4 || off === size - 1) {
                bad(arg, `${ip} is reserved by AWS in ${subnet!.text} (the first four addresses and the last one)`);
                return false;
            }
            return true;
        };
        if (a.privateIps !== undefined) {
            if (!Array.isArray(a.privateIps) || a.privateIps.length !== ids.length) {
                bad("args.privateIps", `one address per myid: ${ids.length} expected, got ${Array.isArray(a.privateIps) ? a.privateIps.length : JSON.stringify(a.privateIps)}`);
            } else {
                a.privateIps.forEach((ip, i) => {
                    let ok = false;
                    try {
                        ok = parseCidr(`${ip}/32`).family === 4;
                    } catch {
                        ok = false;
                    }
                    if (!ok) bad(`args.privateIps[${i}]`, `${JSON.stringify(ip)} is not an IPv4 address`);
                    else if (a.privateIps!.indexOf(ip) !== i) bad(`args.privateIps[${i}]`, `${ip} is listed twice`);
                    else if (usable(ip, `args.privateIps[${i}]`)) servers.push({ id: ids[i], privateIp: ip });
                });
            }
        } else {
            const first = a.firstHostIndex ?? 10;
            if (!Number.isInteger(first) || first < 4) bad("args.firstHostIndex", `an integer of at least 4 (AWS reserves the first four addresses), got ${first}`);
            else if (first + ids.length > size - 1) bad("args.firstHostIndex", `${ids.length} addresses from offset ${first} do not fit in ${subnet.text}`);
            else ids.forEach((id, i) => servers.push({ id, privateIp: nthAddress(subnet!, first + i) }));
        }
    }

    // Ports.
    const ports = { client: a.ports?.client ?? 2181, peer: a.ports?.peer ?? 2888, election: a.ports?.election ?? 3888 };
    for (const [k, p] of Object.entries(ports)) {
        if (!Number.isInteger(p) || p < 1 || p > 65535) bad(`args.ports.${k}`, `a TCP port in 1..65535, got ${p}`);
        else if (p === 22) bad(`args.ports.${k}`, "22 is SSH, admitted from args.adminCidrs only");
    }
    if (new Set(Object.values(ports)).size !== 3) bad("args.ports", `the client, peer and election ports must differ, got ${JSON.stringify(ports)}`);

    // CIDRs: never the Internet.
    const cidrList = (arg: string, list: unknown, required: boolean): string[] => {
        if (list === undefined && !required) return [];
        if (!Array.isArray(list) || (required && list.length === 0)) {
            bad(arg, required ? "required: a non-empty list of CIDR blocks, e.g. [203.0.113.0/24]" : "a list of CIDR blocks");
            return [];
        }
        const out: string[] = [];
        list.forEach((c, i) => {
            try {
                checkRuleCidr(c as string);
                if (list.indexOf(c) !== i) throw new Error(`${c} is listed twice`);
                out.push(c as string);
            } catch (e) {
                bad(`${arg}[${i}]`, (e as Error).message);
            }
        });
        return out;
    };
    const adminCidrs = cidrList("args.adminCidrs", a.adminCidrs, true);
    const clientCidrs = cidrList("args.clientCidrs", a.clientCidrs, false);

    // Image, instance, key.
    const amiFamily = a.amiFamily ?? "amazon-linux-2023";
    if (!(amiFamily in AMI_PARAMETERS)) bad("args.amiFamily", `${JSON.stringify(amiFamily)}: one of ${Object.keys(AMI_PARAMETERS).join(", ")}`);
    const architecture = a.architecture ?? "x86_64";
    if (architecture !== "x86_64" && architecture !== "arm64") bad("args.architecture", `${JSON.stringify(architecture)}: x86_64 or arm64`);
    if (a.ami !== undefined && !/^ami-[0-9a-f]{8,17}$/.test(a.ami)) bad("args.ami", `${JSON.stringify(a.ami)} is not an AMI id (ami-0123456789abcdef0)`);
    const instanceType = a.instanceType ?? "t3.small";
    if (!/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(instanceType)) bad("args.instanceType", `${JSON.stringify(instanceType)} is not an instance type such as t3.small`);
    const rootVolumeGb = a.rootVolumeGb ?? 16;
    if (!Number.isInteger(rootVolumeGb) || rootVolumeGb < 8 || rootVolumeGb > 1024) bad("args.rootVolumeGb", `an integer in 8..1024 GiB, got ${rootVolumeGb}`);
    if (a.keyName !== undefined && a.sshPublicKey !== undefined) bad("args.keyName", "give keyName or sshPublicKey, not both");
    else if (a.keyName === undefined && a.sshPublicKey === undefined) bad("args.keyName", "required (or args.sshPublicKey): zkmigrate reaches the hosts over SSH");
    else if (a.keyName !== undefined && (typeof a.keyName !== "string" || a.keyName.trim() === "")) bad("args.keyName", "an EC2 key pair name");
    else if (a.sshPublicKey !== undefined && !/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( [^\n]*)?$/.test(String(a.sshPublicKey).trim())) {
        bad("args.sshPublicKey", "not an OpenSSH public key line (ssh-ed25519 AAAA... or ssh-rsa AAAA...)");
    }

    // ZooKeeper on the instance.
    const heapMb = a.heapMb ?? 512;
    if (!Number.isInteger(heapMb) || heapMb < 64 || heapMb > 65536) bad("args.heapMb", `an integer in 64..65536, got ${heapMb}`);
    const settings: [string, string][] = [];
    for (const [k, v] of Object.entries(a.settings ?? {})) {
        const arg = `args.settings.${k}`;
        const reserved = RESERVED_SETTINGS.find(([re]) => re.test(k));
        const value = String(v).trim();
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(k)) bad(arg, "not a zoo.cfg property name");
        else if (reserved) bad(arg, `cannot be set: ${reserved[1]}`);
        else if (!["string", "number", "boolean"].includes(typeof v) || value === "" || /[\n\r\0]/.test(value)) bad(arg, "a non-empty value on one line");
        else if (k === "4lw.commands.whitelist" && (value.includes("*") || !value.split(",").map((w) => w.trim()).includes("srvr"))) {
            bad(arg, "must list srvr (zkmigrate's health gates and the user data's readiness check ask it) and never *");
        } else settings.push([k, value]);
    }
    const downloadBase = (a.downloadBase ?? DEFAULT_DOWNLOAD_BASE).replace(/\/+$/, "");
    if (!/^https?:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~%/-]*)?$/.test(downloadBase)) bad("args.downloadBase", `${JSON.stringify(a.downloadBase)} is not an http(s) URL`);
    if (a.sha512 !== undefined && !/^[0-9a-fA-F]{128}$/.test(a.sha512)) bad("args.sha512", "128 hex digits (the tarball's SHA-512)");
    const readyTimeoutSeconds = a.readyTimeoutSeconds ?? 600;
    if (!Number.isInteger(readyTimeoutSeconds) || readyTimeoutSeconds < 10 || readyTimeoutSeconds > 3600) bad("args.readyTimeoutSeconds", `an integer in 10..3600, got ${readyTimeoutSeconds}`);

    const p = a.paths ?? {};
    const dataDir = p.dataDir ?? DEFAULT_PATHS.dataDir;
    const paths: Ec2Paths = {
        ...DEFAULT_PATHS,
        ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)),
        myidFile: p.myidFile ?? `${dataDir}/myid`,
    };
    for (const [k, v] of Object.entries(paths)) {
        if (!(k in DEFAULT_PATHS)) bad(`args.paths.${k}`, `unknown path (known: ${Object.keys(DEFAULT_PATHS).join(", ")})`);
        else if (typeof v !== "string" || !SAFE_PATH.test(v) || v === "/" || v.split("/").includes("..")) bad(`args.paths.${k}`, `${JSON.stringify(v)} is not an absolute path of letters, digits and . _ - / @ +`);
    }
    const unit = /\/([A-Za-z0-9_.@-]+)\.service$/.exec(paths.unitFile);
    if (!unit) bad("args.paths.unitFile", `${JSON.stringify(paths.unitFile)} must end in <name>.service`);

    // Tags: the component's keys win over args.tags.
    const own = new Set([TAG_OWNER, TAG_EXPIRES, "Name"]);
    const extra: Record<string, string> = {};
    for (const [k, v] of Object.entries(a.tags ?? {})) {
        const arg = `args.tags.${k}`;
        if (own.has(k) || k.startsWith("zkmigrate:")) bad(arg, `set by the component`);
        else if (k.toLowerCase().startsWith("aws:")) bad(arg, "the aws: prefix is reserved by AWS");
        else if (k.length === 0 || k.length > 128 || !TAG_TEXT.test(k)) bad(arg, "not a tag key (1..128 letters, digits, spaces and _ . : / = + - @)");
        else if (typeof v !== "string" || v.length > 256 || !TAG_TEXT.test(v)) bad(arg, "not a tag value (at most 256 letters, digits, spaces and _ . : / = + - @)");
        else extra[k] = v;
    }

    if (issues.length > 0) throw new Ec2EnsembleError(String(name), issues);

    const tags: Record<string, string> = {
        ...extra,
        [TAG_OWNER]: owner,
        [TAG_EXPIRES]: expiresAt,
        [TAG_ENSEMBLE]: name,
        "zkmigrate:purpose": "ephemeral-test-ensemble",
    };
    const ens: Ec2Ensemble = {
        name,
        owner,
        expiresAt,
        expiryFromTtl,
        version: a.version!,
        servers,
        vpcId: a.vpcId!,
        subnetId: a.subnetId!,
        ports,
        clientCidrs,
        adminCidrs,
        amiFamily,
        architecture,
        ami: a.ami !== undefined ? { id: a.ami } : { ssmParameter: AMI_PARAMETERS[amiFamily][architecture] },
        sshUser: SSH_USERS[amiFamily],
        instanceType,
        rootVolumeGb,
        kmsKeyId: a.kmsKeyId,
        key: a.keyName !== undefined ? { name: a.keyName } : { publicKey: String(a.sshPublicKey).trim() },
        publicIp: a.publicIp ?? false,
        heapMb,
        settings,
        downloadBase,
        sha512: a.sha512?.toLowerCase(),
        readyTimeoutSeconds,
        start: a.start ?? true,
        paths,
        serviceName: unit![1],
        tags,
        rules: [],
    };
    ens.rules = securityRules(ens);
    return ens;
}

/**
 * The security group's rules. In: the three ZooKeeper ports from the group itself and from
 * clientCidrs, SSH from adminCidrs only. Out: the ZooKeeper ports to the same peers (a joint
 * mitosis ensemble connects both ways), and HTTP(S) anywhere for the packages and the release.
 */
export function securityRules(e: Pick<Ec2Ensemble, "ports" | "clientCidrs" | "adminCidrs">): SecurityRule[] {
    const zk: [number, string][] = [
        [e.ports.client, "ZooKeeper clients"],
        [e.ports.peer, "ZooKeeper peers (followers to the leader)"],
        [e.ports.election, "ZooKeeper leader election"],
    ];
    const cidrPeer = (c: string): RulePeer => ({ kind: "cidr", cidr: c, family: parseCidr(c).family });
    const rules: SecurityRule[] = [];
    for (const [port, what] of zk) {
        rules.push({ name: `in-${port}-self`, direction: "ingress", port, peer: { kind: "self" }, description: `${what}, from the ensemble` });
        e.clientCidrs.forEach((c, i) => rules.push({ name: `in-${port}-client-${i}`, direction: "ingress", port, peer: cidrPeer(c), description: `${what}, from ${c}` }));
    }
    e.adminCidrs.forEach((c, i) => rules.push({ name: `in-22-admin-${i}`, direction: "ingress", port: 22, peer: cidrPeer(c), description: `SSH from ${c}` }));
    for (const [port, what] of zk) {
        rules.push({ name: `out-${port}-self`, direction: "egress", port, peer: { kind: "self" }, description: `${what}, to the ensemble` });
        e.clientCidrs.forEach((c, i) => rules.push({ name: `out-${port}-client-${i}`, direction: "egress", port, peer: cidrPeer(c), description: `${what}, to ${c}` }));
    }
    for (const port of [443, 80]) {
        rules.push({ name: `out-${port}-any`, direction: "egress", port, peer: { kind: "cidr", cidr: "0.0.0.0/0", family: 4 }, description: "packages and the ZooKeeper release" });
    }
    return rules;
}

/** Tags of one instance (and its root volume). */
export function instanceTags(e: Ec2Ensemble, id: ServerId): Record<string, string> {
    return { ...e.tags, Name: `${e.name}-${id}`, "zkmigrate:myid": String(id), "zkmigrate:zookeeper-version": e.version };
}

/** The membership every instance starts with: all of the ensemble, by private address. */
export function membershipOf(e: Ec2Ensemble) {
    return {
        members: e.servers.map((s) => ({ id: s.id, address: s.privateIp, peerPort: e.ports.peer, electionPort: e.ports.election })),
        quorumListenOnAllIPs: false,
    };
}

/**
 * zoo.cfg of every instance: settings, then the membership between zkmigrate's markers at the
 * end, exactly as zkmigrate's config step writes it, so that step finds it "unchanged".
 */
export function renderZooCfg(e: Ec2Ensemble): string {
    const entries = new Map<string, string>([
        ...ZOO_CFG_BASE,
        ["dataDir", e.paths.dataDir],
        ["clientPort", String(e.ports.client)],
        ["4lw.commands.whitelist", FOUR_LETTER_WHITELIST],
        ["admin.enableServer", "false"],
        ["reconfigEnabled", "false"],
        ["autopurge.snapRetainCount", "3"],
        ["autopurge.purgeInterval", "1"],
    ]);
    for (const [k, v] of e.settings) entries.set(k, v);
    const m = membershipOf(e);
    return layoutZooCfg({
        comments: [`ZooKeeper ${e.version} of the ephemeral ensemble ${e.name}, written by its EC2 user data.`, "zkmigrate's config step rewrites the membership block; other lines are kept."],
        settings: entries,
        serverLines: serverLines(m),
        quorumListenOnAllIPs: m.quorumListenOnAllIPs,
    });
}

/** A server as the fleet config lists it (`source`, `target` or `servers` of an ensemble). */
export interface FleetServer {
    id: ServerId;
    /** The private address: what the peers and zoo.cfg use. */
    host: string;
    /** Where pulumi connects over SSH, when the instance has a public address. */
    sshHost?: string;
}

/** The ensemble's servers in the fleet config's shape (`publicIps` by myid, when there are). */
export function fleetServers(e: Ec2Ensemble, publicIps: Record<number, string | undefined> = {}): FleetServer[] {
    return e.servers.map((s) => {
        const pub = publicIps[s.id];
        return pub ? { id: s.id, host: s.privateIp, sshHost: pub } : { id: s.id, host: s.privateIp };
    });
}

/** The host settings of the instances (what zkmigrate's host scripts need to know). */
export function hostSettingsOf(e: Ec2Ensemble): HostSettings {
    const svc = e.serviceName;
    return {
        paths: { configFile: e.paths.configFile, dataDir: e.paths.dataDir, myidFile: e.paths.myidFile },
        service: {
            start: `systemctl start ${svc}`,
            stop: `systemctl stop ${svc}`,
            restart: `systemctl restart ${svc}`,
            status: `systemctl status ${svc} --no-pager`,
            disable: `systemctl disable ${svc}`,
        },
        clientPort: e.ports.client,
        healthTimeoutSeconds: 120,
    };
}

/**
 * The per-ensemble keys of the fleet config that differ from its defaults (`zookeeper`,
 * `service`): empty with the default paths, ports and unit name.
 */
export function ensembleOverrides(e: Ec2Ensemble): Record<string, Record<string, string | number>> {
    const out: Record<string, Record<string, string | number>> = {};
    const zk: Record<string, string | number> = {};
    const d = { configFile: DEFAULT_PATHS.configFile, dataDir: DEFAULT_PATHS.dataDir };
    if (e.paths.configFile !== d.configFile) zk.configFile = e.paths.configFile;
    if (e.paths.dataDir !== d.dataDir) zk.dataDir = e.paths.dataDir;
    if (e.paths.myidFile !== `${e.paths.dataDir}/myid`) zk.myidFile = e.paths.myidFile;
    if (e.ports.client !== 2181) zk.clientPort = e.ports.client;
    if (e.ports.peer !== 2888) zk.peerPort = e.ports.peer;
    if (e.ports.election !== 3888) zk.electionPort = e.ports.election;
    if (Object.keys(zk).length > 0) out.zookeeper = zk;
    if (e.serviceName !== "zookeeper") {
        const { start, stop, restart, status, disable } = hostSettingsOf(e).service;
        out.service = { start, stop, restart, status, disable };
    }
    return out;
}

/** `10.0.1.10:2181,10.0.1.11:2181,...` */
export function connectStringOf(e: Ec2Ensemble): string {
    return e.servers.map((s) => `${s.privateIp}:${e.ports.client}`).join(",");
}
