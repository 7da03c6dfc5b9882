// Znodes as the copy reads them: stats, kinds, ACLs, paths relative to the copied subtree, and
// the size of each write as the server reads it (the batches are bounded by it).
import { createHash } from "node:crypto";
import * as zookeeper from "node-zookeeper-client";
import type { RawStat } from "../raw";

export interface Acl {
    perms: number;
    scheme: string;
    id: string;
}

/** A znode's stat as ZooKeeper sends it (zxids and the ephemeral owner as bigints). */
export type NodeStat = RawStat;

export interface ZNode {
    /** Path relative to the copied subtree's root ("" for the root itself, else "/a/b"). */
    rel: string;
    stat: NodeStat;
    /** Undefined when not read (incremental run, unchanged node). */
    data?: Buffer;
    acl?: Acl[];
    children: string[];
}

export type NodeKind = "persistent" | "ephemeral" | "container" | "ttl";

const CONTAINER_OWNER = 0x8000000000000000n;
const TTL_MASK = 0xff00000000000000n;

/** How ZooKeeper (3.5.3+) encodes the kind of a znode in ephemeralOwner. */
export function nodeKind(stat: NodeStat): NodeKind {
    const o = stat.ephemeralOwner;
    if (o === 0n) return "persistent";
    if (o === CONTAINER_OWNER) return "container";
    if ((o & TTL_MASK) === TTL_MASK) return "ttl";
    return "ephemeral";
}

// ---------------------------------------------------------------------------------------------
// ACLs

export function fromAcl(list: Acl[]): zookeeper.ACL[] {
    return list.map((a) => new zookeeper.ACL(a.perms, new zookeeper.Id(a.scheme, a.id)));
}

export const OPEN_ACL: Acl[] = [{ perms: 31, scheme: "world", id: "anyone" }];

export function aclText(acl: Acl[] | undefined): string {
    if (!acl) return "?";
    return acl.map((a) => `${a.scheme}:${a.id}:${permsText(a.perms)}`).join(",");
}

function permsText(p: number): string {
    return ["c", "d", "r", "w", "a"].filter((_, i) => p & [4, 8, 1, 2, 16][i]).join("") || "-";
}

export function sameAcl(a: Acl[] | undefined, b: Acl[] | undefined): boolean {
    return aclText(a) === aclText(b);
}

export const CREATE = 4;

/** Does `acl` give `perm` to a session with these digest identities (world:anyone always)? */
export function grants(acl: Acl[], perm: number, digests: Set<string>): boolean {
    return acl.some((a) => (a.perms & perm) !== 0 && ((a.scheme === "world" && a.id === "anyone") || (a.scheme === "digest" && digests.has(a.id))));
}

/** The digest id ZooKeeper derives from `user:password`: user:base64(sha1(user:password)). */
export function digestId(credentials: string): string {
    const user = credentials.slice(0, credentials.indexOf(":"));
    return `${user}:${createHash("sha1").update(credentials).digest("base64")}`;
}

// ---------------------------------------------------------------------------------------------
// Paths relative to the copied subtree

export function abs(root: string, rel: string): string {
    if (root === "/") return rel === "" ? "/" : rel;
    return root + rel;
}

export function childRel(rel: string, name: string): string {
    return `${rel}/${name}`;
}

export function parentRel(rel: string): string {
    return rel.slice(0, rel.lastIndexOf("/"));
}

export function depth(rel: string): number {
    let n = 0;
    for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) n++;
    return n;
}

export function isInside(path: string, root: string): boolean {
    return root === "/" || path === root || path.startsWith(root + "/");
}

/** Parents before children, siblings by name. */
export function byDepthThenName(x: string, y: string): number {
    return depth(x) - depth(y) || (x < y ? -1 : x > y ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// Sizes of multi ops as the server reads them (MultiHeader: type, done, err = 9 bytes).

export const MULTI_HEADER = 9;
export function strBytes(s: string): number {
    return 4 + Buffer.byteLength(s);
}
function aclBytes(acl: Acl[]): number {
    return 4 + acl.reduce((n, a) => n + 4 + strBytes(a.scheme) + strBytes(a.id), 0);
}
export function createOpBytes(path: string, data: Buffer, acl: Acl[]): number {
    return MULTI_HEADER + strBytes(path) + 4 + data.length + aclBytes(acl) + 4;
}
export function setDataOpBytes(path: string, data: Buffer): number {
    return MULTI_HEADER + strBytes(path) + 4 + data.length + 4;
}
export function deleteOpBytes(path: string): number {
    return MULTI_HEADER + strBytes(path) + 4;
}
