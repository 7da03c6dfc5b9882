// What the target needs: the source subtree as read, compared with what the target has, gives a
// ChangeSet (creates parents first, data updates, deletes deepest first, counter raises, ACLs).
// Pure: no session here. Every refusal that can be known before writing is raised here.
import type { CopyRules } from "./rules";
import { CopyError, REQUEST_HEADROOM } from "./options";
import type { Since } from "./state";
import {
    type Acl,
    CREATE,
    MULTI_HEADER,
    type NodeKind,
    OPEN_ACL,
    type ZNode,
    abs,
    aclText,
    byDepthThenName,
    childRel,
    createOpBytes,
    depth,
    grants,
    nodeKind,
    parentRel,
    sameAcl,
    strBytes,
} from "./znode";

export interface CreateOp {
    rel: string;
    data: Buffer;
    acl: Acl[];
}

/** A parent whose cversion (the number of its next sequential child) must rise to the source's. */
export interface CounterRaise {
    rel: string;
    from: number;
    to: number;
}

/** The writes that bring the target to the source (paths relative to the copied subtree). */
export interface ChangeSet {
    /** Missing ancestors of the target path, created with an open ACL (outside the copied subtree). */
    ancestors: string[];
    creates: CreateOp[];
    setData: { rel: string; data: Buffer }[];
    setAcl: { rel: string; acl: Acl[]; deferred: boolean }[];
    deletes: string[];
    bumps: CounterRaise[];
    skippedEphemeral: string[];
    /** Source ephemerals that exist on the target as persistent nodes (e.g. from an older copy). */
    persistentOverEphemeral: string[];
    /** Container and TTL nodes, copied as persistent nodes. */
    asPersistent: { rel: string; kind: NodeKind }[];
    /** Target nodes the source lacks, kept because --delete was not given. */
    extra: string[];
    unchanged: number;
}

export function emptyChangeSet(): ChangeSet {
    return { ancestors: [], creates: [], setData: [], setAcl: [], deletes: [], bumps: [], skippedEphemeral: [], persistentOverEphemeral: [], asPersistent: [], extra: [], unchanged: 0 };
}

/** Which source nodes changed since the previous run (every node in a full copy). */
export interface ChangeTest {
    incremental: boolean;
    /** Data changed or node created since. */
    changed(n: ZNode): boolean;
    /** ACL version moved since (setACL records no time nor zxid). */
    aclChanged(n: ZNode): boolean;
    /** Children added or removed since (known from a state file's zxid only). */
    childrenChanged(n: ZNode): boolean;
}

export function changeTest(since: Since | undefined): ChangeTest {
    const incremental = since !== undefined && (since.mtime !== undefined || since.zxid !== undefined);
    if (!incremental) return { incremental, changed: () => true, aclChanged: () => false, childrenChanged: () => false };
    const zxid = since.zxid;
    const mtime = since.mtime!;
    const aversions = since.state?.aversions;
    return {
        incremental,
        changed: (n) => (zxid !== undefined ? n.stat.mzxid > zxid || n.stat.czxid > zxid : n.stat.mtime >= mtime || n.stat.ctime >= mtime),
        aclChanged: (n) => aversions !== undefined && n.stat.aversion !== (aversions[n.rel] ?? 0),
        childrenChanged: (n) => zxid !== undefined && n.stat.pzxid > zxid,
    };
}

/** What is copied: ephemerals skipped (unless asked for); containers and TTL nodes become persistent. */
export function selectCopied(srcNodes: Map<string, ZNode>, includeEphemeral: boolean, cs: ChangeSet): Map<string, ZNode> {
    const copied = new Map<string, ZNode>();
    for (const n of srcNodes.values()) {
        const kind = nodeKind(n.stat);
        if (kind === "ephemeral" && !includeEphemeral) {
            cs.skippedEphemeral.push(n.rel);
            continue;
        }
        if (kind === "container" || kind === "ttl") cs.asPersistent.push({ rel: n.rel, kind });
        copied.set(n.rel, n);
    }
    return copied;
}

export interface Roots {
    src: string;
    dst: string;
}

/** Refuses, before any write, values over the target's request limit (the ACL is not read yet: 4 KB allowed). */
export function refuseOversize(copied: Map<string, ZNode>, test: ChangeTest, roots: Roots, maxBuffer: number, rules: CopyRules): void {
    const maxOpBytes = maxBuffer - REQUEST_HEADROOM;
    const tooLarge: string[] = [];
    for (const n of copied.values()) {
        if (test.changed(n) && !rules.fits(MULTI_HEADER + strBytes(abs(roots.dst, n.rel)) + 4 + n.data!.length + 4096, maxOpBytes)) tooLarge.push(`${abs(roots.src, n.rel)} (${n.data!.length} bytes)`);
    }
    if (tooLarge.length > 0) {
        throw new CopyError(
            `${tooLarge.length} znode(s) are larger than the target accepts (jute.maxbuffer ${maxBuffer} bytes, less ${REQUEST_HEADROOM} for the request and 4096 for the ACL): ${tooLarge.slice(0, 10).join(", ")}${tooLarge.length > 10 ? ", ..." : ""}. Raise -Djute.maxbuffer on every target server (and pass the same --jute-maxbuffer here); nothing was written`,
            "check",
        );
    }
}

/** The target nodes an incremental run reads: the changed nodes, their parents, the parents whose children changed. */
export function targetReadsNeeded(copied: Map<string, ZNode>, test: ChangeTest): string[] {
    const need = new Set<string>();
    for (const n of copied.values()) {
        if (test.changed(n) || test.aclChanged(n)) {
            need.add(n.rel);
            if (n.rel !== "") need.add(parentRel(n.rel));
        }
        if (test.childrenChanged(n)) need.add(n.rel);
    }
    return [...need];
}

export interface Compared {
    /** Nodes to be created (parents first in `ChangeSet.creates`). */
    toCreate: Set<string>;
    /** Nodes whose ACL is read (source) and, where they exist, compared with the target's. */
    aclNeeded: string[];
    /** Target nodes the source lacks (tops of such subtrees). */
    extraRoots: string[];
}

/**
 * Creates and data updates (the ACLs come later), and the target nodes the source lacks.
 * `dstNodes`: what the target has (null: known absent; missing: not read, unchanged since the
 * last run). `keptChild`: whether a source child is copied (default: it is in `copied`; a
 * journal's copy reads only some children, and keeps the others).
 */
export function compareTrees(
    copied: Map<string, ZNode>,
    srcNodes: Map<string, ZNode>,
    dstNodes: Map<string, ZNode | null>,
    test: ChangeTest,
    o: { aclMode: "source" | "open"; dstRoot: string; keptChild?: (rel: string) => boolean },
    cs: ChangeSet,
    warnings: string[],
): Compared {
    const kept = o.keptChild ?? ((rel: string) => copied.has(rel));
    const toCreate = new Set<string>();
    const childSets = new Map<string, Set<string>>();
    const targetHasChild = (parent: string, name: string): boolean | undefined => {
        const k = dstNodes.get(parent);
        if (!k) return undefined;
        let set = childSets.get(parent);
        if (!set) childSets.set(parent, (set = new Set(k.children)));
        return set.has(name);
    };
    const ordered = [...copied.values()].sort((x, y) => byDepthThenName(x.rel, y.rel));
    const aclNeeded: string[] = [];
    for (const n of ordered) {
        const known = dstNodes.get(n.rel);
        const parent = n.rel === "" ? undefined : parentRel(n.rel);
        const absent = known === null || (known === undefined && parent !== undefined && (toCreate.has(parent) || targetHasChild(parent, n.rel.slice(parent.length + 1)) === false));
        if (absent) {
            toCreate.add(n.rel);
            cs.creates.push({ rel: n.rel, data: n.data!, acl: [] });
            aclNeeded.push(n.rel);
            continue;
        }
        if (!known) {
            cs.unchanged++; // incremental: unchanged since the last run, not read on the target
            continue;
        }
        if (nodeKind(known.stat) === "ephemeral") warnings.push(`target ${abs(o.dstRoot, n.rel)} is an ephemeral node of a session on the target: updated in place`);
        if (test.changed(n) && !n.data!.equals(known.data ?? Buffer.alloc(0))) cs.setData.push({ rel: n.rel, data: n.data! });
        if (!test.incremental || test.aclChanged(n) || o.aclMode === "open") aclNeeded.push(n.rel);
    }
    // Target nodes the source lacks (children of nodes read on both sides).
    const extraRoots: string[] = [];
    for (const [rel, known] of dstNodes) {
        if (!known) continue;
        const sn = srcNodes.get(rel);
        if (!sn) continue;
        const keep = new Set(sn.children.filter((c) => kept(childRel(rel, c))));
        for (const c of known.children) {
            if (keep.has(c)) continue;
            const r = childRel(rel, c);
            const s2 = srcNodes.get(r);
            if (s2 && nodeKind(s2.stat) === "ephemeral") cs.persistentOverEphemeral.push(r);
            extraRoots.push(r);
        }
    }
    return { toCreate, aclNeeded, extraRoots };
}

/** Deletes deepest first (the subtrees of the extra roots, as read on the target). */
export function deleteOrder(rels: Iterable<string>): string[] {
    return [...rels].sort((x, y) => depth(y) - depth(x) || (x < y ? -1 : 1));
}

/**
 * Sequential counters: a parent's next sequential child is numbered by its cversion. A create
 * adds one to its parent's cversion; a delete only moves pzxid (3.5+).
 */
export function raiseCounters(cs: ChangeSet, copied: Map<string, ZNode>, dstNodes: Map<string, ZNode | null>, toCreate: Set<string>): CounterRaise[] {
    const created = new Map<string, number>();
    for (const c of cs.creates) if (c.rel !== "") created.set(parentRel(c.rel), (created.get(parentRel(c.rel)) ?? 0) + 1);
    const raises: CounterRaise[] = [];
    for (const n of copied.values()) {
        const known = dstNodes.get(n.rel);
        let after: number;
        if (toCreate.has(n.rel)) after = 0;
        else if (known) after = known.stat.cversion;
        else continue; // not read: unchanged since the last run, which brought it up
        after += created.get(n.rel) ?? 0;
        if (after < n.stat.cversion) raises.push({ rel: n.rel, from: after, to: n.stat.cversion });
    }
    return raises;
}

export interface AclInput {
    aclNeeded: string[];
    sourceAcls: Map<string, Acl[] | null>;
    targetAcls: Map<string, Acl[] | null>;
    aclMode: "source" | "open";
    /** Digest identities of the target session. */
    digests: Set<string>;
    roots: Roots;
    maxBuffer: number;
}

/** Refuses ACLs whose digest hashes came back hidden ("x"): copied so, they would lock everyone out. */
export function refuseMaskedAcls(sourceAcls: Map<string, Acl[] | null>, srcRoot: string): void {
    const masked = [...sourceAcls].filter(([, acl]) => acl?.some((x) => x.scheme === "digest" && /:x$/.test(x.id)));
    if (masked.length > 0) {
        const [rel, acl] = masked[0];
        throw new CopyError(
            `${masked.length} ACL(s) came back with their digest hashes hidden, e.g. ${abs(srcRoot, rel)} (${aclText(acl!)}): ZooKeeper shows them only to a session with ADMIN on the node. Copied like that they would lock everyone out. Authenticate the source session as a principal with ADMIN there, or as ZooKeeper's super user (--src-auth digest:super:<password>), or pass --acl open; nothing was written`,
            "check",
        );
    }
}

/**
 * The ACL of each create, and the setACLs: an ACL that locks the copy's session out of creating
 * a node's children makes the node be created with this session's identity added, its real ACL
 * set after its children (deferred). Refuses creates over the request limit with their ACL.
 */
export function applyAcls(cs: ChangeSet, a: AclInput, rules: CopyRules, warnings: string[]): void {
    if (a.aclMode === "source") refuseMaskedAcls(a.sourceAcls, a.roots.src);
    const maxOpBytes = a.maxBuffer - REQUEST_HEADROOM;
    const withChildren = new Set<string>();
    for (const c of cs.creates) if (c.rel !== "") withChildren.add(parentRel(c.rel));
    for (const b of cs.bumps) withChildren.add(b.rel);
    const me: Acl = a.digests.size > 0 ? { perms: 31, scheme: "digest", id: [...a.digests][0] } : OPEN_ACL[0];
    const createByRel = new Map(cs.creates.map((c) => [c.rel, c]));
    const dataSet = new Set(cs.setData.map((x) => x.rel));
    for (const rel of a.aclNeeded) {
        let acl = a.sourceAcls.get(rel) ?? null;
        if (acl === null) {
            warnings.push(`${abs(a.roots.src, rel)} was deleted on the source during the copy (copied as it was read, with an open ACL)`);
            acl = OPEN_ACL;
        }
        const want = a.aclMode === "open" ? OPEN_ACL : acl;
        const c = createByRel.get(rel);
        if (c) {
            c.acl = want;
            if (withChildren.has(rel) && !grants(want, CREATE, a.digests)) {
                cs.setAcl.push({ rel, acl: want, deferred: true });
                c.acl = [...want, me];
            }
            const bytes = createOpBytes(abs(a.roots.dst, rel), c.data, c.acl);
            if (!rules.fits(bytes, maxOpBytes)) {
                throw new CopyError(`${abs(a.roots.src, rel)}: its create (${bytes} bytes with its ACL) is larger than the target accepts (jute.maxbuffer ${a.maxBuffer} less ${REQUEST_HEADROOM}); nothing was written`, "check");
            }
        } else if (!sameAcl(want, a.targetAcls.get(rel) ?? undefined)) {
            cs.setAcl.push({ rel, acl: want, deferred: withChildren.has(rel) && !grants(want, CREATE, a.digests) });
        } else if (!dataSet.has(rel)) {
            cs.unchanged++;
        }
    }
}

/** The change set as text (--dry-run), at most `limit` lines per section. */
export function changeSetText(cs: ChangeSet, srcRoot: string, dstRoot: string, limit = 20): string {
    const lines: string[] = [];
    const section = <T>(title: string, items: T[], f: (x: T) => string) => {
        if (items.length === 0) return;
        lines.push(`${title} (${items.length}):`);
        for (const x of items.slice(0, limit)) lines.push(`  ${f(x)}`);
        if (items.length > limit) lines.push(`  ... and ${items.length - limit} more`);
    };
    section("create ancestor (open ACL)", cs.ancestors, (p) => p);
    section("create", cs.creates, (c) => `${abs(dstRoot, c.rel)}  ${c.data.length} bytes  ${aclText(c.acl)}`);
    section("set data", cs.setData, (s) => `${abs(dstRoot, s.rel)}  ${s.data.length} bytes`);
    section("set ACL", cs.setAcl, (a) => `${abs(dstRoot, a.rel)}  ${aclText(a.acl)}${a.deferred ? "  (after its children)" : ""}`);
    section("delete", cs.deletes, (d) => abs(dstRoot, d));
    section("raise cversion (sequential counter)", cs.bumps, (b) => `${abs(dstRoot, b.rel)}  ${b.from} -> ${b.to}`);
    section("skip ephemeral", cs.skippedEphemeral, (r) => abs(srcRoot, r));
    if (lines.length === 0) lines.push("nothing to do: the target has the source's subtree");
    return lines.join("\n");
}
