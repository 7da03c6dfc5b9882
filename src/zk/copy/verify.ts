// --verify: both subtrees read again, compared node by node (data, ACL, kind, counters).
import { type ReadCtx, readAcls, readSubtree } from "./read";
import type { Rpc, Side } from "./sessions";
import { type Acl, OPEN_ACL, abs, aclText, nodeKind, sameAcl } from "./znode";

export interface Difference {
    path: string;
    what: "missing" | "extra" | "data" | "acl" | "ephemeral" | "cversion";
    detail: string;
}

export interface VerifyResult {
    ok: boolean;
    compared: number;
    differences: Difference[];
    /** All differences counted, even when only the first ones are listed. */
    total: number;
}


export async function verifyTrees(
    rpc: Rpc,
    source: Side,
    target: Side,
    srcMulti: boolean,
    dstMulti: boolean,
    o: { includeEphemeral: boolean; acl: "source" | "open"; progress: (done: number) => void },
): Promise<VerifyResult> {
    let done = 0;
    const onNodes = (n: number) => o.progress((done += n));
    const srcCtx: ReadCtx = { side: "source", rpc, clients: source.clients, multi: srcMulti, inFlight: 4, onNodes };
    const dstCtx: ReadCtx = { side: "target", rpc, clients: target.clients, multi: dstMulti, inFlight: 4, onNodes };
    const [a, b] = await Promise.all([readSubtree(srcCtx, source.endpoint.path), readSubtree(dstCtx, target.endpoint.path)]);
    const acls = async (ctx: ReadCtx, root: string, rels: string[]) => {
        const m = new Map<string, Acl[] | null>();
        await readAcls(ctx, root, rels, (rel, acl) => {
            m.set(rel, acl);
        });
        return m;
    };
    const common = [...a.keys()].filter((r) => b.has(r));
    const [aAcl, bAcl] = await Promise.all([acls(srcCtx, source.endpoint.path, common), acls(dstCtx, target.endpoint.path, common)]);
    const differences: Difference[] = [];
    const dstPath = (rel: string) => abs(target.endpoint.path, rel);
    let compared = 0;
    for (const [rel, s] of a) {
        const kind = nodeKind(s.stat);
        const t = b.get(rel);
        if (kind === "ephemeral" && !o.includeEphemeral) {
            if (t) differences.push({ path: dstPath(rel), what: "ephemeral", detail: "ephemeral on the source, present on the target" });
            continue;
        }
        compared++;
        if (!t) {
            differences.push({ path: dstPath(rel), what: "missing", detail: "not on the target" });
            continue;
        }
        if (!s.data!.equals(t.data!)) differences.push({ path: dstPath(rel), what: "data", detail: `${s.data!.length} bytes on the source, ${t.data!.length} on the target` });
        const want = o.acl === "open" ? OPEN_ACL : (aAcl.get(rel) ?? undefined);
        if (!sameAcl(want, bAcl.get(rel) ?? undefined)) differences.push({ path: dstPath(rel), what: "acl", detail: `${aclText(want)} expected, ${aclText(bAcl.get(rel) ?? undefined)} on the target` });
        if (nodeKind(t.stat) === "ephemeral") differences.push({ path: dstPath(rel), what: "ephemeral", detail: "ephemeral on the target (a session of the target owns it)" });
        if (t.stat.cversion < s.stat.cversion) differences.push({ path: dstPath(rel), what: "cversion", detail: `cversion ${t.stat.cversion} on the target, ${s.stat.cversion} on the source: a new sequential child could collide` });
    }
    for (const rel of b.keys()) {
        if (!a.has(rel)) differences.push({ path: dstPath(rel), what: "extra", detail: "on the target only" });
    }
    return { ok: differences.length === 0, compared, differences: differences.slice(0, 100), total: differences.length };
}

