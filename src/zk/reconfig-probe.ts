// Whether dynamic reconfig is available on an ensemble, read at preview without changing anything
// (membershipChange: reconfig; src/reconfig-guard.ts turns the reading into refusals):
//  - the release of every server (`srvr`): reconfig exists from 3.5.0, its flag and its access
//    control (ZOOKEEPER-2014) from 3.5.3; 3.5.0-3.5.2 were alpha releases that reconfigure for anyone;
//  - the committed configuration (/zookeeper/config): present only when the servers run a dynamic
//    configuration (3.5+ with a quorum; a standalone server has none);
//  - reconfigEnabled: a reconfig from a configuration version that cannot exist (1: versions are
//    zxids, epoch >= 1 in the high bits) fails before anything is proposed — RECONFIG_DISABLED when
//    the flag is off, BAD_VERSION when it is on, UNIMPLEMENTED on a standalone server;
//  - the right to reconfigure: reconfig needs WRITE on /zookeeper/config (or skipACL=yes, or the
//    super digest). A setData of /zookeeper/config with its own content and a version it cannot have
//    makes the same ACL check first and then fails on the version: BAD_VERSION means allowed,
//    NO_AUTH means refused. Either request leaves the data tree as it was.
// The credentials (zkmigrate:reconfigAuth) are sent as `addauth digest`, never printed.
import type * as zookeeper from "node-zookeeper-client";
import type { ServerId } from "../types";
import { fourLetterWord, parseVersion } from "./four-letter";
import { errName, rawSend } from "./raw";
import { connectClient } from "./session";

const CONFIG_NODE = "/zookeeper/config";
const OP_RECONFIG = 16;

export interface ReconfigReading {
    /** Every check passed. */
    available: boolean;
    /** Why not, one reason per failed check (empty when available). */
    reasons: string[];
    /** The release each server that answered srvr runs. */
    versions: Record<ServerId, string>;
    /** The committed configuration's server lines (`server.N=...`) and its version (hex), when read. */
    config?: { servers: string[]; version?: string };
    /** reconfigEnabled as the leader answered (undefined: not read). */
    enabled?: boolean;
    /** Whether these credentials (or none) may write /zookeeper/config (undefined: not read). */
    authorized?: boolean;
}

/** x.y.z compared: negative when a < b. */
export function compareVersions(a: string, b: string): number {
    const pa = a.split(".").map((x) => parseInt(x, 10));
    const pb = b.split(".").map((x) => parseInt(x, 10));
    for (let i = 0; i < 3; i++) {
        const d = (pa[i] ?? 0) - (pb[i] ?? 0);
        if (d !== 0) return d;
    }
    return 0;
}

/** The first release with reconfigEnabled and reconfig's access control (ZOOKEEPER-2014). */
export const RECONFIG_MIN_VERSION = "3.5.3";

function ustring(s: string | null): Buffer {
    if (s === null) {
        const b = Buffer.alloc(4);
        b.writeInt32BE(-1, 0);
        return b;
    }
    const v = Buffer.from(s, "utf8");
    const b = Buffer.alloc(4 + v.length);
    b.writeInt32BE(v.length, 0);
    v.copy(b, 4);
    return b;
}

/** ReconfigRequest { joiningServers, leavingServers, newMembers, curConfigId }. */
function reconfigRequest(curConfigId: bigint): Buffer {
    const id = Buffer.alloc(8);
    id.writeBigInt64BE(curConfigId, 0);
    return Buffer.concat([ustring(null), ustring(null), ustring(null), id]);
}

function call<T>(f: (cb: (err: unknown, v?: T) => void) => void, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
        f((err, v) => {
            clearTimeout(timer);
            if (err) reject(err);
            else resolve(v as T);
        });
    });
}

const codeOf = (e: unknown): number | undefined => (e as { code?: number }).code;

/** Reads the reconfig prerequisites from the servers (see the file's comment); never throws. */
export async function probeReconfig(servers: { id: ServerId; address: string; port: number }[], o: { auth?: string; timeoutMs: number }): Promise<ReconfigReading> {
    const out: ReconfigReading = { available: false, reasons: [], versions: {} };
    const answers = await Promise.allSettled(servers.map((s) => fourLetterWord(s.address, s.port, "srvr", o.timeoutMs)));
    answers.forEach((a, i) => {
        const v = a.status === "fulfilled" ? parseVersion(a.value) : undefined;
        if (v) out.versions[servers[i].id] = v;
    });
    const old = Object.entries(out.versions).filter(([, v]) => /^\d+\.\d+\.\d+$/.test(v) && compareVersions(v, RECONFIG_MIN_VERSION) < 0);
    if (old.length > 0) {
        out.reasons.push(
            `${old.map(([id, v]) => `server ${id} runs ZooKeeper ${v}`).join(", ")}: dynamic reconfig needs ${RECONFIG_MIN_VERSION} or later ` +
                "(3.5.0-3.5.2 were alpha releases without reconfigEnabled and without access control on reconfig, ZOOKEEPER-2014)",
        );
    }
    if (Object.keys(out.versions).length === 0) {
        out.reasons.push(`no server answered srvr (${answers.map((a) => (a.status === "rejected" ? String((a.reason as Error).message) : "no version")).join("; ")})`);
        return out;
    }
    const connect = servers.map((s) => `${s.address.includes(":") ? `[${s.address}]` : s.address}:${s.port}`).join(",");
    let client: zookeeper.Client | undefined;
    try {
        client = await connectClient(connect, o.timeoutMs * 2);
        const c = client;
        if (o.auth) c.addAuthInfo("digest", Buffer.from(o.auth, "utf8"));
        const [data] = await call<Buffer>((cb) => c.getData(CONFIG_NODE, (err: unknown, d?: Buffer) => cb(err, d)), o.timeoutMs * 2, `getData ${CONFIG_NODE}`).then((d) => [d]);
        const text = (data ?? Buffer.alloc(0)).toString("utf8");
        const lines = text.split("\n").map((l) => l.trim());
        const serverLines = lines.filter((l) => /^server\.\d+=/.test(l));
        const version = lines.find((l) => l.startsWith("version="))?.slice("version=".length);
        out.config = { servers: serverLines, ...(version ? { version } : {}) };
        if (serverLines.length === 0) {
            out.reasons.push(`${CONFIG_NODE} holds no configuration: the servers do not run a dynamic configuration (a standalone server, or a release before 3.5)`);
        }
        const r = await Promise.race([
            rawSend(c, OP_RECONFIG, reconfigRequest(1n)),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`reconfig probe: no answer within ${o.timeoutMs * 2} ms`)), o.timeoutMs * 2)),
        ]);
        if (r.err === -103 || r.err === -14) out.enabled = true; // BAD_VERSION, or RECONFIG_IN_PROGRESS
        else if (r.err === -123) {
            out.enabled = false;
            out.reasons.push("reconfigEnabled is false on the leader (the default from 3.5.3): set reconfigEnabled=true in every server's zoo.cfg and restart them (a rolling restart keeps the membership)");
        } else if (r.err === -6) {
            out.enabled = false;
            out.reasons.push("the server runs standalone: reconfig exists only in a quorum (standaloneEnabled=false and a dynamic configuration)");
        } else {
            out.reasons.push(`the reconfig probe got ${errName(r.err)} (${r.err}), not BAD_VERSION: reconfig availability unknown`);
        }
        try {
            await call<unknown>((cb) => c.setData(CONFIG_NODE, data ?? Buffer.alloc(0), 2147483646, (err: unknown, s?: unknown) => cb(err, s)), o.timeoutMs * 2, `setData ${CONFIG_NODE}`);
            out.reasons.push(`setData ${CONFIG_NODE} with an impossible version succeeded: the node's version check is not what the probe expects; refusing to guess`);
        } catch (e) {
            const code = codeOf(e);
            if (code === -103) out.authorized = true;
            else if (code === -102) {
                out.authorized = false;
                out.reasons.push(
                    `${o.auth ? "the credentials of zkmigrate:reconfigAuth may not" : "without credentials (zkmigrate:reconfigAuth is unset) zkmigrate may not"} write ${CONFIG_NODE}, which reconfig needs: ` +
                        "configure the super digest (zookeeper.DigestAuthenticationProvider.superDigest) and set zkmigrate:reconfigAuth to its user:password, grant WRITE on /zookeeper/config to those credentials, or set skipACL=yes",
                );
            } else throw e;
        }
    } catch (e) {
        out.reasons.push(`could not read the reconfig prerequisites through ${connect}: ${(e as Error).message ?? String(e)}`);
    } finally {
        client?.close();
    }
    out.available = out.reasons.length === 0;
    return out;
}
