// The cluster domain's DNS of the local cluster (what CoreDNS does in a real one, reduced to what
// the rehearsal needs): A records `<service>.<namespace>.svc.<domain>` -> the Service's ClusterIP,
// read from the API server once a second. Pods (kubelet's clusterDNS) and the fleet's hosts (their
// resolv.conf) ask it; names outside the domain are refused (nothing here resolves them).
//
//   node --import tsx rehearsal/kubernetes/dns.ts <listen address> <domain> <api server URL> <pki dir>
//
// Run by cluster.ts in the node's network namespace; <pki dir> has ca.crt, admin.crt, admin.key.
import { createSocket, type RemoteInfo } from "node:dgram";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";

export interface ServiceRecord {
    name: string;
    namespace: string;
    clusterIP?: string;
}

/** The question of a DNS query: name (lower case, no trailing dot), type, class, and where it ends. */
export function parseQuestion(msg: Buffer): { id: number; name: string; type: number; cls: number; end: number } | undefined {
    if (msg.length < 12) return undefined;
    const id = msg.readUInt16BE(0);
    if (msg.readUInt16BE(4) !== 1) return undefined; // exactly one question
    const labels: string[] = [];
    let i = 12;
    for (;;) {
        if (i >= msg.length) return undefined;
        const len = msg[i];
        if (len === 0) {
            i++;
            break;
        }
        if (len > 63 || i + 1 + len > msg.length) return undefined; // no compression in a question
        labels.push(msg.subarray(i + 1, i + 1 + len).toString("latin1").toLowerCase());
        i += 1 + len;
    }
    if (i + 4 > msg.length) return undefined;
    return { id, name: labels.join("."), type: msg.readUInt16BE(i), cls: msg.readUInt16BE(i + 2), end: i + 4 };
}

const A = 1;
const IN = 1;
const RCODE = { ok: 0, formErr: 1, nxDomain: 3, refused: 5 } as const;

/** The answer to a query, given the Services; TTL 5 s (ClusterIPs change only with their Service). */
export function answer(msg: Buffer, domain: string, services: ServiceRecord[]): Buffer | undefined {
    const q = parseQuestion(msg);
    if (!q) {
        if (msg.length < 12) return undefined;
        const h = Buffer.alloc(12);
        msg.copy(h, 0, 0, 2);
        h.writeUInt16BE(0x8000 | RCODE.formErr, 2);
        return h;
    }
    const question = msg.subarray(12, q.end);
    const reply = (rcode: number, records: Buffer[]) => {
        const h = Buffer.alloc(12);
        h.writeUInt16BE(q.id, 0);
        // QR, AA, RD copied from the query; RA off (no recursion here).
        h.writeUInt16BE(0x8000 | 0x0400 | (msg.readUInt16BE(2) & 0x0100) | rcode, 2);
        h.writeUInt16BE(1, 4);
        h.writeUInt16BE(records.length, 6);
        return Buffer.concat([h, question, ...records]);
    };
    const suffix = `.svc.${domain}`;
    if (q.name !== domain && !q.name.endsWith(`.${domain}`)) return reply(RCODE.refused, []);
    const parts = q.name.endsWith(suffix) ? q.name.slice(0, -suffix.length).split(".") : [];
    const svc = parts.length === 2 ? services.find((s) => s.name === parts[0] && s.namespace === parts[1]) : undefined;
    const ip = svc?.clusterIP && /^\d+\.\d+\.\d+\.\d+$/.test(svc.clusterIP) ? svc.clusterIP : undefined;
    if (!ip) return reply(svc ? RCODE.ok : RCODE.nxDomain, []);
    if (q.type !== A || q.cls !== IN) return reply(RCODE.ok, []); // the name exists, without that type
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    rr.writeUInt16BE(A, 2);
    rr.writeUInt16BE(IN, 4);
    rr.writeUInt32BE(5, 6);
    rr.writeUInt16BE(4, 10);
    ip.split(".").forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
    return reply(RCODE.ok, [rr]);
}

function listServices(api: string, pki: string): Promise<ServiceRecord[]> {
    return new Promise((resolve, reject) => {
        const req = request(
            `${api}/api/v1/services`,
            { ca: readFileSync(join(pki, "ca.crt")), cert: readFileSync(join(pki, "admin.crt")), key: readFileSync(join(pki, "admin.key")), timeout: 5000 },
            (res) => {
                let body = "";
                res.setEncoding("utf8");
                res.on("data", (d) => (body += d));
                res.on("end", () => {
                    if (res.statusCode !== 200) return reject(new Error(`GET /api/v1/services: HTTP ${res.statusCode}`));
                    const list = JSON.parse(body) as { items: { metadata: { name: string; namespace: string }; spec: { clusterIP?: string } }[] };
                    resolve(list.items.map((s) => ({ name: s.metadata.name, namespace: s.metadata.namespace, clusterIP: s.spec.clusterIP })));
                });
            },
        );
        req.on("timeout", () => req.destroy(new Error("timed out")));
        req.on("error", reject);
        req.end();
    });
}

async function main(): Promise<void> {
    const [listen, domain, api, pki] = process.argv.slice(2);
    if (!listen || !domain || !api || !pki) {
        console.error("usage: dns.ts <listen address> <domain> <api server URL> <pki dir>");
        process.exit(2);
    }
    let services: ServiceRecord[] = [];
    let lastError = "";
    const refresh = async () => {
        try {
            services = await listServices(api, pki);
            if (lastError) console.log(`services read again (${services.length})`);
            lastError = "";
        } catch (e) {
            const m = (e as Error).message;
            if (m !== lastError) console.error(`cannot read the services: ${m}`);
            lastError = m;
        }
    };
    await refresh();
    setInterval(() => void refresh(), 1000);
    const sock = createSocket("udp4");
    sock.on("message", (msg: Buffer, from: RemoteInfo) => {
        const out = answer(msg, domain, services);
        if (out) sock.send(out, from.port, from.address);
    });
    sock.bind(53, listen, () => console.log(`answering for ${domain} on ${listen}:53`));
}

if (require.main === module) void main();
