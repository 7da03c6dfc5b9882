// `zkmigrate status`: per server of a connect string, what `srvr`, `mntr` and `conf` say.
import { type ConnectString, formatServer, type ZkServerAddress } from "../format/connect-string";
import { FourLetterError, type FourLetterErrorKind, fourLetterWord } from "./four-letter";
import {
    type ConfAnswer,
    type Latency,
    type MntrAnswer,
    NOT_SERVING_TEXT,
    parseConf,
    parseMntr,
    parseSrvr,
    type SrvrAnswer,
    type Zxid,
} from "./four-letter-answers";
import { formatTable } from "./table";

export const STATUS_WORDS = ["srvr", "mntr", "conf"] as const;
export type StatusWord = (typeof STATUS_WORDS)[number];

export interface StatusOptions {
    /** Bound of each four-letter word (all are asked in parallel). */
    timeoutMs: number;
}

export interface WordProblem {
    word: StatusWord;
    /** A FourLetterError kind, `not-serving`, or `empty` (the connection closed without an answer). */
    kind: FourLetterErrorKind | "not-serving" | "empty";
    message: string;
}

export interface ServerStatus {
    /** `host:port`. */
    server: string;
    host: string;
    port: number;
    /** At least one word got an answer (a whitelist refusal is an answer: the server is up). */
    answered: boolean;
    /** False when the server said it is not serving requests; undefined when no word told. */
    serving?: boolean;
    mode?: string;
    zxid?: Zxid;
    /** zxid >> 32. */
    epoch?: number;
    nodeCount?: number;
    /** Leader only (from mntr). */
    syncedFollowers?: number;
    outstanding?: number;
    /** Milliseconds. */
    latency?: Latency;
    version?: string;
    /** conf's serverId. */
    myid?: number;
    srvr?: SrvrAnswer;
    mntr?: MntrAnswer;
    conf?: ConfAnswer;
    problems: WordProblem[];
    /** Human sentences about the problems, e.g. "mntr is not in 4lw.commands.whitelist on h:2181". */
    notes: string[];
}

export interface StatusReport {
    connect: string;
    chroot?: string;
    servers: ServerStatus[];
    /** 0: every server answered and serves; 1: some server did not answer or is not serving; 3: none answered. */
    exitCode: 0 | 1 | 3;
    summary: string;
}

type WordResult = { ok: true; text: string } | { ok: false; error: FourLetterError };

async function ask(s: ZkServerAddress, word: StatusWord, timeoutMs: number): Promise<WordResult> {
    try {
        return { ok: true, text: await fourLetterWord(s.host, s.port, word, timeoutMs) };
    } catch (e) {
        const error = e instanceof FourLetterError ? e : new FourLetterError(`${word} on ${formatServer(s)}: ${String(e)}`, "failed", word, s.host, s.port);
        return { ok: false, error };
    }
}

/** Asks one server for srvr, mntr and conf in parallel and merges what they say. */
export async function serverStatus(s: ZkServerAddress, opts: StatusOptions): Promise<ServerStatus> {
    const name = formatServer(s);
    const results = await Promise.all(STATUS_WORDS.map((w) => ask(s, w, opts.timeoutMs)));
    const out: ServerStatus = { server: name, host: s.host, port: s.port, answered: false, problems: [], notes: [] };
    const unanswered: { word: StatusWord; error: FourLetterError }[] = [];
    results.forEach((r, i) => {
        const word = STATUS_WORDS[i];
        if (!r.ok) {
            out.problems.push({ word, kind: r.error.kind, message: r.error.message });
            if (r.error.kind === "refused") {
                out.answered = true;
                out.notes.push(`${word} is not in 4lw.commands.whitelist on ${name}`);
            } else {
                unanswered.push({ word, error: r.error });
            }
            return;
        }
        out.answered = true;
        if (r.text.trim() === "") {
            out.problems.push({ word, kind: "empty", message: `${word} on ${name}: the connection closed without an answer` });
            out.notes.push(`${word} on ${name}: the connection closed without an answer`);
            return;
        }
        if (word === "srvr") out.srvr = parseSrvr(r.text);
        if (word === "mntr") out.mntr = parseMntr(r.text);
        if (word === "conf") out.conf = parseConf(r.text);
        if (r.text.includes(NOT_SERVING_TEXT)) {
            out.problems.push({ word, kind: "not-serving", message: `${word} on ${name}: ${NOT_SERVING_TEXT}` });
        }
    });
    if (!out.answered) {
        // One sentence for the server; the reasons are usually the same for every word.
        const reasons = [...new Set(unanswered.map((u) => u.error.message.replace(/^\w+ on \S+: /, "")))];
        out.notes.push(`${name} does not answer (${reasons.join("; ")})`);
        return out;
    }
    for (const u of unanswered) out.notes.push(u.error.message);

    const { srvr, mntr, conf } = out;
    const notServing = out.problems.some((p) => p.kind === "not-serving");
    const mode = (srvr?.serving ? srvr.mode : undefined) ?? (mntr?.serving ? mntr.serverState : undefined);
    if (mode) {
        out.serving = true;
        out.mode = mode;
    } else if (notServing) {
        out.serving = false;
        out.notes.push(`${name} is not serving requests (no quorum, or still starting or syncing)`);
    }
    if (srvr?.zxid) {
        out.zxid = srvr.zxid;
        out.epoch = srvr.zxid.epoch;
    }
    const first = <T>(...values: (T | undefined)[]) => values.find((v) => v !== undefined);
    const nodeCount = first(srvr?.nodeCount, mntr?.znodeCount);
    if (nodeCount !== undefined) out.nodeCount = nodeCount;
    const outstanding = first(srvr?.outstanding, mntr?.outstandingRequests);
    if (outstanding !== undefined) out.outstanding = outstanding;
    const latency = first(srvr?.latency, mntr?.latency);
    if (latency !== undefined) out.latency = latency;
    const version = first(srvr?.version, mntr?.version);
    if (version !== undefined) out.version = version;
    if (mntr?.syncedFollowers !== undefined) out.syncedFollowers = mntr.syncedFollowers;
    if (conf?.serverId !== undefined) out.myid = conf.serverId;
    if (out.serving === undefined && !notServing && srvr === undefined && mntr === undefined) {
        out.notes.push(`${name}: mode unknown (neither srvr nor mntr answered)`);
    }
    // The summary first, the parsed answers last (for --json readers).
    const { srvr: s1, mntr: m1, conf: c1, problems, notes, ...summary } = out;
    return { ...summary, problems, notes, ...(s1 && { srvr: s1 }), ...(m1 && { mntr: m1 }), ...(c1 && { conf: c1 }) };
}

/** Asks every server of the connect string, in parallel. */
export async function collectStatus(connect: ConnectString, opts: StatusOptions): Promise<StatusReport> {
    const servers = await Promise.all(connect.servers.map((s) => serverStatus(s, opts)));
    const answered = servers.filter((s) => s.answered).length;
    const failing = servers.filter((s) => !s.answered || s.serving === false);
    const exitCode: 0 | 1 | 3 = answered === 0 ? 3 : failing.length > 0 ? 1 : 0;
    const n = servers.length;
    let summary: string;
    if (answered === 0) summary = `cannot connect: none of the ${n} server${n === 1 ? "" : "s"} answered`;
    else if (failing.length > 0) {
        const silent = n - answered;
        const notServing = failing.length - silent;
        const parts = [];
        if (silent > 0) parts.push(`${silent} did not answer`);
        if (notServing > 0) parts.push(`${notServing} not serving`);
        summary = `${answered} of ${n} servers answered; ${parts.join(", ")}`;
    } else summary = `${n} of ${n} server${n === 1 ? "" : "s"} answered and serve`;
    const report: StatusReport = { connect: connect.servers.map(formatServer).join(",") + (connect.chroot ?? ""), servers, exitCode, summary };
    if (connect.chroot) report.chroot = connect.chroot;
    return report;
}

function fmtNumber(n: number): string {
    return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(2)));
}

/** The aligned table, then the notes, then the summary line. */
export function formatStatus(report: StatusReport): string {
    const header = ["SERVER", "MYID", "MODE", "ZXID", "EPOCH", "ZNODES", "SYNCED", "OUTSTANDING", "LATENCY ms min/avg/max", "VERSION"];
    const unknown = (s: ServerStatus, fromWords: StatusWord[]) =>
        fromWords.every((w) => s.problems.some((p) => p.word === w && p.kind !== "not-serving")) ? "?" : "-";
    const rows = report.servers.map((s) => {
        if (!s.answered) return [s.server, "-", "no answer", "-", "-", "-", "-", "-", "-", "-"];
        const mode = s.mode ?? (s.serving === false ? "not serving" : "?");
        const synced = s.syncedFollowers !== undefined ? String(s.syncedFollowers) : s.mode === "leader" ? "?" : "-";
        return [
            s.server,
            s.myid !== undefined ? String(s.myid) : unknown(s, ["conf"]),
            mode,
            s.zxid?.hex ?? unknown(s, ["srvr"]),
            s.epoch !== undefined ? String(s.epoch) : unknown(s, ["srvr"]),
            s.nodeCount !== undefined ? String(s.nodeCount) : unknown(s, ["srvr", "mntr"]),
            synced,
            s.outstanding !== undefined ? String(s.outstanding) : unknown(s, ["srvr", "mntr"]),
            s.latency ? `${fmtNumber(s.latency.min)}/${fmtNumber(s.latency.avg)}/${fmtNumber(s.latency.max)}` : unknown(s, ["srvr", "mntr"]),
            s.version ?? unknown(s, ["srvr", "mntr"]),
        ];
    });
    const lines = [formatTable(header, rows, ["left", "right", "left", "left", "right", "right", "right", "right", "right", "left"])];
    const notes = report.servers.flatMap((s) => s.notes);
    if (notes.length > 0) {
        lines.push("");
        for (const n of notes) lines.push(`note: ${n}`);
    }
    lines.push("", report.summary);
    return lines.join("\n") + "\n";
}
