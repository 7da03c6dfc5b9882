// The `zkmigrate` command: argv in, text or JSON out, exit codes. The logic lives in src/zk.
//   npx zkmigrate status 10.0.0.1:2181,10.0.0.2:2181          (bin: cli/zkmigrate.cjs, through tsx)
//   npm run zkmigrate -- smoke 127.0.0.1:2181/kafka --json
//   node --import tsx cli/zkmigrate.ts copy ...
// Arguments are split by node:util's parseArgs; this file checks them and names what is wrong.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ConfigError, loadConfig, mergeAdopted, parseApplied, rawConfigOfStackFile } from "../src/config";
import { adoptFleet } from "../src/adopt";
import { planFleet, UnsafeFleetError } from "../src/model";
import { declaredBefore, planTable, renderJson, renderMarkdown, renderText } from "../src/plan-table";
import { parseArgs } from "node:util";
import { collectStatus, formatSmoke, formatStatus, runSmoke } from "../src/zk";
import { type ConnectString, ConnectStringError, parseConnectString } from "../src/format/connect-string";
import { CopyError, type CopyErrorKind, type CopyOptions, copyTree, formatCopySummary, type JournalState, type Progress, parseAuth, parseEndpoint, readJournalState, startJournal, stopJournal } from "../src/zk/copy";

/**
 * Exit codes. 70 is sysexits' EX_SOFTWARE: an error zkmigrate did not expect (a bug), never the
 * verdict of a check, so that a script can tell "the ensemble is not healthy" (1, 3) from "the
 * tool broke" (70) and from "the command line is wrong" (2).
 */
export const EXIT = { ok: 0, checkFailed: 1, usage: 2, cannotConnect: 3, writeFailed: 4, internal: 70 } as const;

type Opts = Record<string, string | boolean | string[]>;

/** What went wrong, in --json output: `{ "ok": false, "exitCode": 2, "error": { "kind": "usage", ... } }`. */
export type ErrorKind = CopyErrorKind | "internal" | "config" | "unsafe" | "refused";

export class UsageError extends Error {
    constructor(
        message: string,
        readonly command?: string,
    ) {
        super(message);
    }
}

interface OptionSpec {
    name: string;
    value?: string; // the value's placeholder when the option takes one
    help: string;
    /** May be given more than once (the values are kept in order). */
    repeat?: boolean;
}

interface Command {
    name: string;
    summary: string;
    usage: string;
    description: string;
    options: OptionSpec[];
    /** Positional arguments other than one connect string: their names, e.g. ["<source>", "<target>"]. */
    positionals?: string[];
    /** `error`, when set, is the failure: on stderr (the text, if any, on stdout), or the JSON error under --json. */
    run(connect: ConnectString, opts: Opts, positionals: string[], log: Log): Promise<{ exitCode: number; text: string; json: unknown; error?: { kind: ErrorKind; message: string }; notes?: string }>;
}

/** --verbose lines (to stderr); a no-op without --verbose. */
type Log = (line: string) => void;

const CONNECT_HELP = `<connect> is a ZooKeeper connect string: host:port[,host:port...][/chroot]. IPv6 addresses go
in brackets ([::1]:2181); the port defaults to 2181.`;

const EXIT_HELP = `Exit codes: 0 ok, 1 a check failed, 2 usage error, 3 cannot connect to any server, 4 a write failed (copy),
70 internal error (a bug in zkmigrate; --verbose adds the stack).`;

function intOption(opts: Opts, name: string, dflt: number, min: number, max: number, command: string): number {
    const v = opts[name];
    if (v === undefined) return dflt;
    if (typeof v !== "string" || !/^\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number, not ${JSON.stringify(v)}`, command);
    const n = Number(v);
    if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max} (got ${n})`, command);
    return n;
}

/**
 * Progress as --verbose lines (for logs, not terminals): a line per stage once it is over, with
 * its count (`end()` for the last stage); the time prefix of each line says when.
 */
function stageLog(log: Log): { progress: (p: Progress) => void; end: () => void } {
    let last: Progress | undefined;
    const end = () => {
        if (last) log(`copy: ${last.stage} done: ${last.done}${last.total ? `/${last.total}` : ""} znodes`);
        last = undefined;
    };
    return {
        progress: (p) => {
            if (last && p.stage !== last.stage) end();
            last = p;
        },
        end,
    };
}

/** A one-line progress display on stderr: stage, count, nodes per second. */
function progressBar(): (p: Progress) => void {
    let stage = "";
    let since = 0;
    let base = 0;
    return (p) => {
        if (p.stage !== stage) {
            if (stage) process.stderr.write("\n");
            stage = p.stage;
            since = p.elapsedMs;
            base = p.done;
        }
        const secs = Math.max(0.001, (p.elapsedMs - since) / 1000);
        const rate = Math.round((p.done - base) / secs);
        const of = p.total ? `/${p.total}` : "";
        const bar = p.total ? ` [${"#".repeat(Math.round((20 * p.done) / p.total)).padEnd(20, ".")}]` : "";
        process.stderr.write(`\r${p.stage}${bar} ${p.done}${of} znodes, ${rate}/s   `);
    };
}

/** The stack file the plan reads by default: Pulumi.<stack>.yaml of the selected stack (PULUMI_STACK) or the only one here. */
function defaultStackFile(command = "plan"): string {
    if (process.env.PULUMI_STACK) return `Pulumi.${process.env.PULUMI_STACK.split("/").pop()}.yaml`;
    const files = readdirSync(".").filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f));
    if (files.length === 1) return files[0];
    throw new UsageError(
        files.length === 0 ? "no Pulumi.<stack>.yaml in this directory: give --stack-config FILE" : `several stack files here (${files.join(", ")}): give --stack-config FILE or set PULUMI_STACK`,
        command,
    );
}

function readText(file: string, option: string, command = "plan"): string {
    try {
        return readFileSync(file, "utf8");
    } catch (e) {
        throw new UsageError(`--${option} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, command);
    }
}

const COMMANDS: Command[] = [
    {
        name: "plan",
        summary: "the plan table of the next update of each ensemble, from the stack config alone",
        usage: "zkmigrate plan [--stack-config FILE] [--applied FILE] [--format text|markdown|json]",
        positionals: [],
        description: `Reads the stack settings file (default: Pulumi.<stack>.yaml, the stack from PULUMI_STACK or
the only stack file in this directory), checks it as \`pulumi preview\` does (the config, one step per
update against the applied phases, the quorum safety of every step), and prints per ensemble the
steps of the update in order: host, myid, action, membership before and after, why this order,
the declared availability windows and their expected length, and what the preview's deletes are.
Nothing is dialled: no engine, no leader probe (the config's \`leader\` or unknown). The SSH key
is not needed.

--applied FILE is the stack output \`applied\` as JSON (pulumi stack output applied --json);
without it nothing counts as applied (every ensemble at its first phase). Markdown is for a pull
request comment; json is the tables as data (the stack output ensembles.<name>.plan).
Exits 1 when the config is invalid or a step is unsafe (the reasons with their config paths).`,
        options: [
            { name: "stack-config", value: "file", help: "the stack settings file (default Pulumi.<stack>.yaml)" },
            { name: "applied", value: "file", help: "JSON of the stack output `applied` (default: nothing applied)" },
            { name: "format", value: "text|markdown|json", help: "output format (default text)" },
            { name: "json", help: "errors as JSON (the tables too, as --format json)" },
        ],
        async run(_connect, opts, _positionals, log) {
            const format = (opts.format as string | undefined) ?? (opts.json ? "json" : "text");
            if (!["text", "markdown", "json"].includes(format)) throw new UsageError(`--format must be text, markdown or json (got ${JSON.stringify(format)})`, "plan");
            const file = (opts["stack-config"] as string | undefined) ?? defaultStackFile();
            let appliedValue: unknown = {};
            if (opts.applied !== undefined) {
                const text = readText(opts.applied as string, "applied");
                try {
                    appliedValue = JSON.parse(text);
                } catch (e) {
                    throw new UsageError(`--applied ${opts.applied as string}: not JSON (${(e as Error).message})`, "plan");
                }
            }
            log(`plan: ${file}${opts.applied ? `, applied from ${opts.applied as string}` : ", nothing applied"}`);
            try {
                const raw = rawConfigOfStackFile(readText(file, "stack-config"), file);
                // A relative zkmigrate:sshKnownHosts is in the project directory, beside the stack file.
                const config = loadConfig(raw, undefined, { baseDir: dirname(resolve(file)) });
                // As the program does: records from `zkmigrate adopt` where --applied has none.
                const merged = mergeAdopted(raw.adopted, parseApplied(appliedValue), config.ensembles);
                if (merged.issues.length > 0) throw new ConfigError(merged.issues);
                const applied = merged.applied;
                const plans = planFleet(config, applied);
                const tables = config.ensembles.map((e) => {
                    const p = plans.get(e.name)!;
                    return planTable(p, declaredBefore(e, p));
                });
                const text = format === "json" ? renderJson(tables) : format === "markdown" ? renderMarkdown(tables) : renderText(tables);
                return { exitCode: EXIT.ok, text, json: tables };
            } catch (e) {
                if (e instanceof ConfigError) return { exitCode: EXIT.checkFailed, text: "", json: null, error: { kind: "config", message: `${file}: ${e.message}` } };
                if (e instanceof UnsafeFleetError) return { exitCode: EXIT.checkFailed, text: "", json: null, error: { kind: "unsafe", message: `${file}: ${e.message}` } };
                throw e;
            }
        },
    },
    {
        name: "adopt",
        summary: "rebuild the stack's `applied` record from what the servers run (over SSH), for a stack that lost its outputs",
        usage: "zkmigrate adopt [--stack NAME | --stack-config FILE] (--known-hosts FILE | --insecure-host-keys) [--ssh-key FILE] [--ensemble NAME]... [--phase [ENSEMBLE=]PHASE]...",
        positionals: [],
        description: `Reads the stack settings file (Pulumi.<stack>.yaml), connects over SSH (the system ssh client,
with the config's sshUser and sshPort, in batch mode) to every server of each ensemble and reads,
changing nothing: the membership of zoo.cfg (and of the dynamic config file), the myid file,
whether ZooKeeper listens and serves on its client port (srvr; conf for the membership it runs
with, when the whitelist allows it) and whether the ensemble's firewall split is on the host.
It then finds the one phase of the ensemble's procedure whose desired state every server agrees
with and prints, on stdout, the record \`pulumi up\` writes for that phase, by ensemble name: the
value of the stack config key zkmigrate:adopted (README, "Re-adoption"). What each server runs
goes to stderr.

Refused (exit 1, with what each server runs and why each phase does not fit): a server that
cannot be read, servers that match no phase, and servers that match several phases that look
alike on the hosts (mitosis joined and clients differ only in where the clients point): then
choose among those with --phase ENSEMBLE=PHASE (or --phase PHASE with one ensemble). A phase
that the servers do not match is refused too.

Only procedures whose state is on the hosts are adopted (mitosis); kubernetes and block-copy
ensembles are skipped with the reason (refused when named with --ensemble).

Host keys are checked against --known-hosts FILE (StrictHostKeyChecking=yes); without it adopt
refuses to run unless --insecure-host-keys says not to check them. The SSH key is not read from
the stack (it is an encrypted secret there): give --ssh-key FILE (e.g. from
\`pulumi config get zkmigrate:sshPrivateKey\`), or let ssh use its agent or default keys.`,
        options: [
            { name: "stack", value: "name", help: "the stack: reads Pulumi.<name>.yaml here" },
            { name: "stack-config", value: "file", help: "the stack settings file (default Pulumi.<stack>.yaml, as plan)" },
            { name: "known-hosts", value: "file", help: "known_hosts file the servers' host keys are checked against" },
            { name: "insecure-host-keys", help: "do not check host keys (only on a network you trust)" },
            { name: "ssh-key", value: "file", help: "private key file for SSH (default: ssh's agent or default keys)" },
            { name: "ensemble", value: "name", help: "adopt only this ensemble (repeatable)", repeat: true },
            { name: "phase", value: "[ensemble=]phase", help: "the phase of an ensemble among those its servers match (repeatable)", repeat: true },
            { name: "timeout", value: "seconds", help: "bound of each server's SSH probe (default 60)" },
            { name: "json", help: "errors as JSON (the records are JSON anyway)" },
        ],
        async run(_connect, opts, _positionals, log) {
            const C = "adopt";
            if (opts.stack !== undefined && opts["stack-config"] !== undefined) throw new UsageError("give --stack or --stack-config, not both", C);
            if (opts["known-hosts"] !== undefined && opts["insecure-host-keys"]) throw new UsageError("give --known-hosts or --insecure-host-keys, not both", C);
            if (opts["known-hosts"] === undefined && !opts["insecure-host-keys"]) {
                throw new UsageError("the servers' host keys must be checked: give --known-hosts FILE (or --insecure-host-keys on a network you trust)", C);
            }
            if (typeof opts.stack === "string" && !/^[A-Za-z0-9_.-]+$/.test(opts.stack.split("/").pop()!)) throw new UsageError(`--stack ${JSON.stringify(opts.stack)} is not a stack name`, C);
            const file = typeof opts.stack === "string" ? `Pulumi.${opts.stack.split("/").pop()}.yaml` : ((opts["stack-config"] as string | undefined) ?? defaultStackFile(C));
            const timeout = intOption(opts, "timeout", 60, 5, 3600, C);
            for (const f of ["known-hosts", "ssh-key"]) if (typeof opts[f] === "string") readText(opts[f] as string, f, C);
            let config;
            try {
                config = loadConfig(rawConfigOfStackFile(readText(file, opts.stack !== undefined ? "stack" : "stack-config", C), file));
            } catch (e) {
                if (e instanceof ConfigError) return { exitCode: EXIT.checkFailed, text: "", json: null, error: { kind: "config", message: `${file}: ${e.message}` } };
                throw e;
            }
            const names = config.ensembles.map((e) => e.name);
            const only = (opts.ensemble as string[] | undefined) ?? [];
            for (const n of only) if (!names.includes(n)) throw new UsageError(`--ensemble ${n}: no such ensemble in ${file} (ensembles: ${names.join(", ")})`, C);
            const selected = only.length > 0 ? only : names;
            const phases: Record<string, string> = {};
            for (const p of (opts.phase as string[] | undefined) ?? []) {
                const i = p.indexOf("=");
                let name: string;
                if (i < 0) {
                    if (selected.length !== 1) throw new UsageError(`--phase ${p}: name the ensemble (--phase ENSEMBLE=${p}): ${selected.length} ensembles are adopted`, C);
                    name = selected[0];
                } else name = p.slice(0, i);
                if (!selected.includes(name)) throw new UsageError(`--phase ${p}: no ensemble ${JSON.stringify(name)} is adopted (${selected.join(", ")})`, C);
                if (phases[name] !== undefined) throw new UsageError(`--phase: ensemble ${name} is given twice`, C);
                phases[name] = i < 0 ? p : p.slice(i + 1);
            }
            log(`adopt: ${file}, ensembles ${selected.join(", ")}`);
            const r = await adoptFleet(config, {
                ssh: {
                    user: config.settings.sshUser,
                    port: config.settings.sshPort,
                    identityFile: opts["ssh-key"] as string | undefined,
                    knownHostsFile: opts["known-hosts"] as string | undefined,
                    insecureHostKeys: opts["insecure-host-keys"] === true,
                    timeoutMs: timeout * 1000,
                },
                only,
                phases,
                log,
            });
            if (!r.ok) {
                const message = r.adoptions.length === 0 ? `no ensemble of ${file} can be adopted from its hosts:\n${r.report}` : `${file}: nothing adopted (each ensemble must be):\n${r.report}`;
                return { exitCode: EXIT.checkFailed, text: "", json: null, error: { kind: "refused", message } };
            }
            return { exitCode: EXIT.ok, text: JSON.stringify(r.adopted, null, 2) + "\n", json: r.adopted, notes: r.report };
        },
    },
    {
        name: "copy",
        summary: "copy a znode subtree to another ensemble: ACLs, counters, no ephemerals, multi batches",
        usage: "zkmigrate copy <src-connect>/<path> <dst-connect>/<path> [options]",
        positionals: ["<src-connect>/<path>", "<dst-connect>/<path>"],
        description: `Copies the subtree at <path> of the source ensemble to <path> of the target ensemble
(missing ancestors of the target path are created with an open ACL). Faithful: ACLs as they are
(digest ACLs verbatim), ephemeral nodes skipped, data and ACLs of nodes the target already has
updated, and each target parent's cversion raised at least to the source's, so that the next
sequential child cannot collide with a copied one. Fast: stats, data and children read with
ZooKeeper 3.6's read-only multi over every source server, ACLs many in flight, writes in multi
batches bounded by bytes (under the target's jute.maxbuffer) and by count, several in flight.
Checks before the first write: both ensembles answer, the source path exists, the target does not
overlap the source on the same ensemble, every znode fits the target's request limit. A batch is
a multi: it is applied whole or not at all, and the first failed one stops the copy.

--mtime-since with a state file: a first run (no such file yet) copies in full and writes the
file; the next runs copy only what changed since (by zxid; the file also holds the newest mtime
seen), the way block & copy's final copy runs while clients are stopped. With a number (ms since
the epoch) nodes with an older mtime and ctime are skipped, and nothing is deleted.`,
        options: [
            { name: "include-ephemeral", help: "copy ephemeral nodes too (as persistent nodes)" },
            { name: "acl", value: "source|open", help: "source: the source's ACLs as they are (default); open: world:anyone:cdrwa" },
            { name: "delete", help: "remove target nodes the source lacks (off by default)" },
            { name: "mtime-since", value: "ms|state-file", help: "copy only what changed since (see above)" },
            { name: "state-file", value: "file", help: "write the state for a later --mtime-since run here" },
            { name: "journal", value: "file", help: "with --mtime-since <state-file>: stop this change journal (zkmigrate journal start) and visit only its paths; falls back to the scan, saying why, when it may miss a change" },
            { name: "dry-run", help: "read both sides and print the plan; write nothing" },
            { name: "verify", help: "afterwards, compare source and target (paths, data, ACLs, ephemeral or not, cversion); exit 1 on any difference" },
            { name: "auth", value: "scheme:credentials", help: "authentication for both sides (e.g. digest:user:password)", repeat: true },
            { name: "src-auth", value: "scheme:credentials", help: "authentication for the source only", repeat: true },
            { name: "dst-auth", value: "scheme:credentials", help: "authentication for the target only", repeat: true },
            { name: "src-auth-env", value: "NAME", help: "authentication for the source from environment variable NAME (keeps it off the command line)" },
            { name: "dst-auth-env", value: "NAME", help: "authentication for the target from environment variable NAME" },
            { name: "jute-maxbuffer", value: "bytes", help: "the target servers' jute.maxbuffer (default 1048575)" },
            { name: "batch-ops", value: "n", help: "operations per multi batch at most (default 1000)" },
            { name: "batch-bytes", value: "bytes", help: "bytes per multi batch at most (default half of jute.maxbuffer)" },
            { name: "timeout", value: "ms", help: "bound of connecting, and of a wait with no answer from ZooKeeper (default 10000 / 30000)" },
            { name: "progress", help: "show progress on stderr even when it is not a terminal" },
            { name: "json", help: "print the summary as JSON" },
        ],
        async run(_connect, opts, positionals, log) {
            const list = (name: string): string[] => (Array.isArray(opts[name]) ? (opts[name] as string[]) : []);
            const auth = (names: string[]) =>
                names.flatMap((n) =>
                    list(n).map((v) => {
                        try {
                            return parseAuth(v, `--${n}`);
                        } catch (e) {
                            throw e instanceof CopyError ? new UsageError(e.message, "copy") : e;
                        }
                    }),
                );
            // Credentials from the environment (block & copy's commands): never on the command line.
            const fromEnv = (name: string) => {
                const v = opts[name];
                if (typeof v !== "string") return [];
                const value = process.env[v];
                if (value === undefined || value === "") throw new UsageError(`--${name}: environment variable ${v} is not set`, "copy");
                const i = value.indexOf(":");
                // The value is a secret: the message names the variable, never its content.
                if (i <= 0 || i === value.length - 1) throw new UsageError(`--${name}: environment variable ${v} does not hold scheme:credentials (e.g. digest:user:password)`, "copy");
                return [parseAuth(value, `--${name}`)];
            };
            const acl = opts.acl;
            if (acl !== undefined && acl !== "source" && acl !== "open") throw new UsageError(`--acl takes source or open, not ${JSON.stringify(acl)}`, "copy");
            const mtime = opts["mtime-since"];
            const timeout = intOption(opts, "timeout", 0, 100, 3_600_000, "copy");
            const o: CopyOptions = {
                includeEphemeral: opts["include-ephemeral"] === true,
                acl: acl as "source" | "open" | undefined,
                delete: opts.delete === true,
                mtimeSince: typeof mtime === "string" ? mtime : undefined,
                stateFile: typeof opts["state-file"] === "string" ? (opts["state-file"] as string) : undefined,
                journal: typeof opts.journal === "string" ? opts.journal : undefined,
                dryRun: opts["dry-run"] === true,
                verify: opts.verify === true,
                sourceAuth: [...auth(["auth", "src-auth"]), ...fromEnv("src-auth-env")],
                targetAuth: [...auth(["auth", "dst-auth"]), ...fromEnv("dst-auth-env")],
                juteMaxBuffer: intOption(opts, "jute-maxbuffer", 0xfffff, 65536, 2 ** 31 - 1, "copy"),
                batchOps: intOption(opts, "batch-ops", 1000, 1, 100000, "copy"),
                batchBytes: opts["batch-bytes"] === undefined ? undefined : intOption(opts, "batch-bytes", 0, 1024, 2 ** 31 - 1, "copy"),
                connectTimeoutMs: timeout || undefined,
                stallTimeoutMs: timeout ? Math.max(timeout, 30000) : undefined,
            };
            const tty = opts.progress === true || (process.stderr.isTTY === true && opts.json !== true);
            const stages = !tty && opts.verbose === true ? stageLog(log) : undefined;
            if (tty) o.progress = progressBar();
            else if (stages) o.progress = stages.progress;
            try {
                parseEndpoint(positionals[0], "source");
                parseEndpoint(positionals[1], "target");
                log(`copy: ${positionals[0]} -> ${positionals[1]}: batches of at most ${o.batchOps} ops${o.batchBytes ? ` and ${o.batchBytes} bytes` : ""}, target jute.maxbuffer ${o.juteMaxBuffer}${o.dryRun ? ", dry run" : ""}${o.mtimeSince ? `, changes since ${o.mtimeSince}` : ""}`);
                const summary = await copyTree(positionals[0], positionals[1], o);
                if (tty) process.stderr.write("\n");
                stages?.end();
                const failed = summary.verify !== undefined && !summary.verify.ok;
                return { exitCode: failed ? EXIT.checkFailed : EXIT.ok, text: formatCopySummary(summary), json: summary };
            } catch (e) {
                if (tty) process.stderr.write("\n");
                stages?.end();
                if (!(e instanceof CopyError)) throw e;
                if (e.kind === "usage") throw new UsageError(e.message, "copy");
                const exitCode = e.kind === "connect" ? EXIT.cannotConnect : e.kind === "write" ? EXIT.writeFailed : EXIT.checkFailed;
                return { exitCode, text: "", json: undefined, error: { kind: e.kind, message: e.message } };
            }
        },
    },
    {
        name: "journal",
        summary: "record the paths that change under a source subtree (block & copy's final copy visits only those)",
        usage: "zkmigrate journal start|stop|status <src-connect>/<path> --file <journal-file> [options]",
        positionals: ["<start|stop|status>", "<src-connect>/<path>"],
        description: `start: runs a change journal in the background (it returns once the journal records): one
session to one source server with a persistent recursive watch (ZooKeeper 3.6+'s addWatch) on
<path>, writing every changed path (and its zxid) beside <journal-file>. Start it before the
precopy (zkmigrate copy --mtime-since <state-file>); the final copy with --journal <journal-file>
stops it and visits only the changed paths. It falls back to the scan of every node's stat, and
says why, when the journal may miss a change: a server before 3.6 (start then prints that the
journal is unsupported and exits 0), a lost connection or session (ZooKeeper does not replay a
persistent watch's events), a journal started after the precopy's reads. ZooKeeper fires no watch
for setACL: an ACL changed without a data change is not in the journal (--verify catches it).
The process ends by itself after --max-hours.
stop: stops it (after a sync, so every change committed before is in it). status: prints it.`,
        options: [
            { name: "file", value: "journal-file", help: "the journal's state file (JSON; the paths go to <journal-file>.paths, the process's log to .log)" },
            { name: "auth", value: "scheme:credentials", help: "authentication for the source (e.g. digest:user:password)", repeat: true },
            { name: "src-auth-env", value: "NAME", help: "authentication for the source from environment variable NAME" },
            { name: "timeout", value: "ms", help: "bound of connecting and of starting or stopping (default 10000)" },
            { name: "session-timeout", value: "ms", help: "the journal's session timeout (default 30000)" },
            { name: "max-hours", value: "h", help: "the journal ends by itself after this long (default 24)" },
            { name: "json", help: "print the journal's state as JSON" },
        ],
        async run(_connect, opts, positionals) {
            const [action, source] = positionals;
            if (!["start", "stop", "status"].includes(action)) throw new UsageError(`journal takes start, stop or status, not ${JSON.stringify(action)}`, "journal");
            const file = opts.file;
            if (typeof file !== "string" || file === "") throw new UsageError("--file <journal-file> is required", "journal");
            const timeout = intOption(opts, "timeout", 10_000, 100, 3_600_000, "journal");
            const text = (s: JournalState) =>
                `journal ${file}: ${s.status}${s.reason ? ` (${s.reason})` : ""}; ${s.source}${s.server ? ` through ${s.server}` : ""}${s.startZxid ? `, since zxid 0x${s.startZxid}` : ""}${s.endZxid ? ` until 0x${s.endZxid}` : ""}; ${s.paths} changed paths, ${s.events} events${s.pid ? `; pid ${s.pid}` : ""}\n`;
            try {
                parseEndpoint(source, "source");
                if (action === "start") {
                    const list = Array.isArray(opts.auth) ? (opts.auth as string[]) : [];
                    const auth = list.map((v) => parseAuth(v, "--auth"));
                    const env = opts["src-auth-env"];
                    if (typeof env === "string") {
                        const value = process.env[env];
                        if (!value || value.indexOf(":") <= 0) throw new UsageError(`--src-auth-env: environment variable ${env} is not set to scheme:credentials`, "journal");
                        auth.push(parseAuth(value, "--src-auth-env"));
                    }
                    const s = await startJournal({
                        source,
                        file,
                        auth,
                        connectTimeoutMs: timeout,
                        sessionTimeoutMs: intOption(opts, "session-timeout", 30_000, 4000, 600_000, "journal"),
                        maxLifetimeMs: intOption(opts, "max-hours", 24, 1, 24 * 30, "journal") * 3600_000,
                    });
                    const failed = s.status === "failed" || s.status === "broken";
                    return { exitCode: failed ? EXIT.checkFailed : EXIT.ok, text: text(s), json: s, ...(failed ? { error: { kind: "check" as const, message: s.reason ?? s.status } } : {}) };
                }
                const s = action === "stop" ? await stopJournal(file, timeout * 2) : readJournalState(file);
                return { exitCode: EXIT.ok, text: text(s), json: s };
            } catch (e) {
                if (!(e instanceof CopyError)) throw e;
                if (e.kind === "usage") throw new UsageError(e.message, "journal");
                return { exitCode: e.kind === "connect" ? EXIT.cannotConnect : EXIT.checkFailed, text: "", json: undefined, error: { kind: e.kind, message: e.message } };
            }
        },
    },
    {
        name: "smoke",
        summary: "create/get/set/delete, a watch, an ephemeral node and latencies, on every server",
        usage: "zkmigrate smoke <connect> [--timeout <ms>] [--count <n>] [--json]",
        description: `For each server of the connect string on its own (a session with just that server, the chroot
kept): creates a test znode under a unique path (/zkmigrate-smoke/<random>-<N>), and for --count
rounds creates, reads, sets and deletes a child; a data watch registered through the next
server's session (the peer) must fire on the set; an ephemeral node created through the server
must be seen through the peer after a sync. Prints min/median/max latency per operation and
server, removes its znodes (and /zkmigrate-smoke when no other run uses it), and exits 1 on any
failure, naming the operation and the servers.`,
        options: [
            { name: "timeout", value: "ms", help: "bound of the session setup, of each operation and of each watch (default 5000)" },
            { name: "count", value: "n", help: "create/get/set/watch/delete rounds per server (default 10)" },
            { name: "json", help: "print the report as JSON" },
        ],
        async run(connect, opts, _positionals, log) {
            const timeoutMs = intOption(opts, "timeout", 5000, 100, 600000, "smoke");
            const count = intOption(opts, "count", 10, 1, 10000, "smoke");
            log(`smoke: ${connect.servers.length} server(s), ${count} rounds each, timeout ${timeoutMs} ms`);
            const report = await runSmoke(connect, { timeoutMs, count, log });
            return { exitCode: report.exitCode, text: formatSmoke(report), json: report };
        },
    },
    {
        name: "status",
        summary: "mode, zxid, epoch, node count, synced followers, outstanding requests per server",
        usage: "zkmigrate status <connect> [--timeout <ms>] [--json]",
        description: `Asks every server of the connect string for the four-letter words srvr, mntr and conf and
prints per server: myid, mode, zxid, epoch (zxid >> 32), node count, synced followers (leader
only), outstanding requests, latency and version. A word missing from a server's
4lw.commands.whitelist is named, and the other words still shown. Exits 1 when a server does not
answer or is not serving, 3 when no server answers.`,
        options: [
            { name: "timeout", value: "ms", help: "bound of each four-letter word (default 3000)" },
            { name: "json", help: "print the report as JSON" },
        ],
        async run(connect, opts, _positionals, log) {
            const timeoutMs = intOption(opts, "timeout", 3000, 100, 600000, "status");
            log(`status: srvr, mntr and conf of ${connect.servers.length} server(s) in parallel, timeout ${timeoutMs} ms each`);
            const report = await collectStatus(connect, { timeoutMs });
            for (const s of report.servers) log(`status: ${s.server}: ${s.answered ? `answered (${s.mode ?? "mode unknown"})` : "no answer"}${s.problems.length ? `; ${s.problems.map((p) => `${p.word} ${p.kind}`).join(", ")}` : ""}`);
            return { exitCode: report.exitCode, text: formatStatus(report), json: report };
        },
    },
];

// In alphabetical order (help, "commands:" lists).
COMMANDS.sort((a, b) => a.name.localeCompare(b.name));

/** Options every command takes (shown last in its help). */
const COMMON_OPTIONS: OptionSpec[] = [
    { name: "verbose", help: "say what is being done, on stderr (and the stack of an internal error)" },
    { name: "help", help: "this help" },
];

/** Options before the command. */
const GLOBAL_OPTIONS: OptionSpec[] = [
    { name: "help", help: "this help; `zkmigrate <command> --help` for a command's" },
    { name: "version", help: "print the version and exit" },
    { name: "verbose", help: "say what is being done, on stderr (also after the command)" },
];

const SHORT: Record<string, string> = { help: "h", verbose: "v" };

function optionLabel(o: OptionSpec): string {
    const short = SHORT[o.name] ? `-${SHORT[o.name]}, ` : "";
    return `${short}--${o.name}${o.value ? ` <${o.value}>` : ""}`;
}

function optionLines(opts: OptionSpec[]): string[] {
    const w = Math.max(...opts.map((o) => optionLabel(o).length));
    return opts.map((o) => `  ${optionLabel(o).padEnd(w)}  ${o.help}`);
}

export function mainHelp(): string {
    const w = Math.max(...COMMANDS.map((c) => c.name.length));
    return [
        "Usage: zkmigrate [--verbose] <command> [options]",
        "",
        "Client tools for moving ZooKeeper ensembles.",
        "",
        "Commands:",
        ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
        "",
        "Options:",
        ...optionLines(GLOBAL_OPTIONS),
        "",
        CONNECT_HELP,
        EXIT_HELP,
        "With --json, errors are JSON on stdout too: {\"ok\": false, \"exitCode\": 2, \"error\": {\"kind\": \"usage\", \"message\": ...}}.",
        "",
    ].join("\n");
}

export function commandHelp(c: Command): string {
    return [`Usage: ${c.usage}`, "", c.description, "", "Options:", ...optionLines([...c.options, ...COMMON_OPTIONS]), "", CONNECT_HELP, EXIT_HELP, ""].join("\n");
}

/** The version in package.json. */
export function version(): string {
    return (JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")) as { version: string }).version;
}

type Parsed = { kind: "help"; text: string } | { kind: "run"; command: Command; connect: ConnectString; opts: Opts; positionals: string[] };

const commandNames = () => COMMANDS.map((x) => x.name).join(", ");

/** parseArgs' configuration for these options. */
function parseConfig(specs: OptionSpec[]) {
    return Object.fromEntries(
        specs.map((o) => [o.name, { type: o.value ? ("string" as const) : ("boolean" as const), ...(o.repeat ? { multiple: true } : {}), ...(SHORT[o.name] ? { short: SHORT[o.name] } : {}) }]),
    );
}

/**
 * Splits `args` with parseArgs (--name value, --name=value, -h, --, repeated options) and checks
 * every option against `specs` (parseArgs' own strict errors would name no command and read
 * differently from Node version to Node version).
 */
function splitOptions(args: string[], specs: OptionSpec[], command: string | undefined, unknown: (raw: string) => string): { opts: Opts; positionals: string[]; help: boolean } {
    const { tokens } = parseArgs({ args, options: parseConfig(specs), strict: false, allowPositionals: true, tokens: true });
    const opts: Opts = {};
    const positionals: string[] = [];
    // --help wins over any other mistake on the line.
    if (tokens.some((t) => t.kind === "option" && t.name === "help" && specs.some((o) => o.name === "help"))) return { opts, positionals, help: true };
    for (const t of tokens) {
        if (t.kind === "positional") positionals.push(t.value);
        if (t.kind !== "option") continue;
        const spec = specs.find((o) => o.name === t.name);
        if (!spec) throw new UsageError(unknown(t.rawName + (t.inlineValue ? `=${t.value}` : "")), command);
        if (spec.value) {
            if (t.value === undefined) throw new UsageError(`--${spec.name} needs a value <${spec.value}>`, command);
            // `--timeout --json`: parseArgs would take "--json" as the value.
            if (!t.inlineValue && /^--?[a-z]/i.test(t.value)) throw new UsageError(`--${spec.name} needs a value <${spec.value}>, not the option ${JSON.stringify(t.value)} (write --${spec.name}=${t.value} if that is the value)`, command);
            if (spec.repeat) opts[spec.name] = [...((opts[spec.name] as string[] | undefined) ?? []), t.value];
            else opts[spec.name] = t.value;
        } else {
            if (t.value !== undefined) throw new UsageError(`--${spec.name} takes no value`, command);
            opts[spec.name] = true;
        }
    }
    return { opts, positionals, help: false };
}

/** Parses argv (without node and the script); throws UsageError. */
export function parseArgv(argv: string[]): Parsed | { kind: "version"; text: string } {
    if (argv.length === 0) throw new UsageError("no command given");
    // Options before the command: --help, --version, --verbose.
    const at = argv.findIndex((a) => !a.startsWith("-") || a === "-" || a === "--");
    const lead = argv.slice(0, at < 0 ? argv.length : at);
    const global = splitOptions(lead, GLOBAL_OPTIONS, undefined, (raw) => `expected a command before ${JSON.stringify(raw)} (commands: ${commandNames()})`);
    if (global.help) return { kind: "help", text: mainHelp() };
    if (global.opts.version) return { kind: "version", text: `zkmigrate ${version()}\n` };
    if (at < 0 || argv[at] === "--") throw new UsageError("no command given");
    const [first, ...rest] = argv.slice(at);
    if (first === "help") {
        if (rest.length === 0) return { kind: "help", text: mainHelp() };
        const c = COMMANDS.find((x) => x.name === rest[0]);
        if (!c) throw new UsageError(`unknown command ${JSON.stringify(rest[0])} (commands: ${commandNames()})`);
        return { kind: "help", text: commandHelp(c) };
    }
    const command = COMMANDS.find((x) => x.name === first);
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(first)} (commands: ${commandNames()})`);
    const parsed = splitOptions(rest, [...command.options, ...COMMON_OPTIONS], command.name, (raw) => `unknown option ${JSON.stringify(raw)}`);
    if (parsed.help) return { kind: "help", text: commandHelp(command) };
    const { opts, positionals } = parsed;
    if (global.opts.verbose) opts.verbose = true;
    if (command.positionals) {
        const want = command.positionals;
        if (positionals.length !== want.length) {
            throw new UsageError(`${command.name} takes ${want.length ? want.join(" ") : "no arguments"}, got ${positionals.length} argument(s)${positionals.length ? `: ${positionals.map((p) => JSON.stringify(p)).join(" ")}` : ""}`, command.name);
        }
        return { kind: "run", command, connect: { servers: [] }, opts, positionals };
    }
    if (positionals.length === 0) throw new UsageError(`${command.name} needs a connect string`, command.name);
    if (positionals.length > 1) {
        throw new UsageError(
            `${command.name} takes one connect string, got ${positionals.length}: ${positionals.map((p) => JSON.stringify(p)).join(" ")} (separate servers with commas, without spaces)`,
            command.name,
        );
    }
    let connect: ConnectString;
    try {
        connect = parseConnectString(positionals[0]);
    } catch (e) {
        if (e instanceof ConnectStringError) throw new UsageError(e.message, command.name);
        throw e;
    }
    return { kind: "run", command, connect, opts, positionals };
}

/** Whether the command line asks for JSON (looked up before parsing, so that a usage error is JSON too). */
function wantsJson(argv: string[]): boolean {
    const end = argv.indexOf("--");
    return (end < 0 ? argv : argv.slice(0, end)).includes("--json");
}

function wantsVerbose(argv: string[]): boolean {
    const end = argv.indexOf("--");
    return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === "--verbose" || a === "-v");
}

export interface MainResult {
    exitCode: number;
    stdout: string;
    stderr: string;
}

/** The error as the user sees it: a JSON document on stdout under --json, else lines on stderr. */
export function errorResult(json: boolean, exitCode: number, kind: ErrorKind, message: string, command?: string, detail?: string): MainResult {
    if (json) {
        const error = { kind, message, ...(command ? { command } : {}) };
        return { exitCode, stdout: JSON.stringify({ ok: false, exitCode, error }, null, 2) + "\n", stderr: detail ?? "" };
    }
    const hint = kind === "usage" ? (command ? `\nRun 'zkmigrate ${command} --help' for its usage.` : "\nRun 'zkmigrate --help' for usage.") : "";
    const prefix = kind === "usage" || kind === "internal" ? "zkmigrate" : `zkmigrate ${command}`;
    return { exitCode, stdout: "", stderr: `${prefix}: ${message}${hint}\n${detail ?? ""}` };
}

/** An error nobody planned for: exit 70, the message, and (with --verbose) the stack. */
export function internalError(e: unknown, json: boolean, verbose: boolean, command?: string): MainResult {
    const message = `internal error: ${e instanceof Error ? e.message : String(e)} (a bug in zkmigrate${verbose ? "" : "; --verbose shows where"})`;
    const stack = verbose && e instanceof Error && e.stack ? `${e.stack}\n` : undefined;
    return errorResult(json, EXIT.internal, "internal", message, command, stack);
}

/**
 * Runs the command line; returns the exit code and what to print. `log` receives the --verbose
 * lines as they happen (default: stderr).
 */
export async function main(argv: string[], log: Log = (line) => process.stderr.write(`${line}\n`)): Promise<MainResult> {
    const json = wantsJson(argv);
    let parsed: ReturnType<typeof parseArgv>;
    try {
        parsed = parseArgv(argv);
    } catch (e) {
        if (e instanceof UsageError) return errorResult(json, EXIT.usage, "usage", e.message, e.command);
        return internalError(e, json, wantsVerbose(argv));
    }
    if (parsed.kind !== "run") return { exitCode: EXIT.ok, stdout: parsed.text, stderr: "" };
    const { command, opts } = parsed;
    const verbose = opts.verbose === true;
    const t0 = performance.now();
    const say: Log = verbose ? (line) => log(`[${((performance.now() - t0) / 1000).toFixed(3)}s] ${line}`) : () => {};
    try {
        const r = await command.run(parsed.connect, opts, parsed.positionals, say);
        say(`${command.name}: exit ${r.exitCode}`);
        if (r.error) {
            const e = errorResult(json, r.exitCode, r.error.kind, r.error.message, command.name);
            return { ...e, ...(json || !r.text ? {} : { stdout: r.text }), ...(r.notes ? { stderr: r.notes + e.stderr } : {}) };
        }
        return { exitCode: r.exitCode, stdout: json ? JSON.stringify(r.json, null, 2) + "\n" : r.text, stderr: r.notes ?? "" };
    } catch (e) {
        if (e instanceof UsageError) return errorResult(json, EXIT.usage, "usage", e.message, command.name);
        return internalError(e, json, verbose, command.name);
    }
}

/** The program: runs `main` and exits with its code; anything thrown later (a stray callback) is an internal error too. */
export function runProgram(argv: string[]): void {
    const json = wantsJson(argv);
    const verbose = wantsVerbose(argv);
    const die = (e: unknown) => {
        const r = internalError(e, json, verbose);
        if (r.stderr) process.stderr.write(r.stderr);
        process.stdout.write(r.stdout, () => process.exit(r.exitCode));
    };
    process.on("uncaughtException", die);
    process.on("unhandledRejection", die);
    main(argv).then(({ exitCode, stdout, stderr }) => {
        if (stderr) process.stderr.write(stderr);
        // Exit explicitly: a session to a dead server may leave a reconnect timer behind.
        process.stdout.write(stdout, () => process.exit(exitCode));
    }, die);
}

if (require.main === module) runProgram(process.argv.slice(2));
