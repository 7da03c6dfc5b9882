// What a copy is asked: the two endpoints, the credentials, the options, and how it fails.
import { type ConnectString, ConnectStringError, formatConnectString, parseConnectString } from "../../format/connect-string";

/** ZooKeeper's default jute.maxbuffer (0xfffff): the largest request a server accepts. */
export const DEFAULT_JUTE_MAXBUFFER = 0xfffff;
/** Room kept under jute.maxbuffer for the request header and the transaction the leader builds. */
export const REQUEST_HEADROOM = 8192;

export type CopyErrorKind = "usage" | "connect" | "check" | "write" | "verify";

/** A refusal or failure of the copy; the message names the path, the side or the argument. */
export class CopyError extends Error {
    constructor(
        message: string,
        readonly kind: CopyErrorKind,
    ) {
        super(message);
        this.name = "CopyError";
    }
}

export interface Endpoint {
    connect: ConnectString;
    /** The absolute znode path of the subtree ("/" for the whole tree). */
    path: string;
    /** As given, for messages. */
    text: string;
}

/** `host:port[,host:port...]/path`: the path is the subtree (absent or "/" for the whole tree). */
export function parseEndpoint(arg: string, side: "source" | "target"): Endpoint {
    let connect: ConnectString;
    try {
        connect = parseConnectString(arg);
    } catch (e) {
        if (e instanceof ConnectStringError) throw new CopyError(`${side}: ${e.message}`, "usage");
        throw e;
    }
    const path = connect.chroot ?? "/";
    return { connect: { servers: connect.servers }, path, text: `${formatConnectString({ servers: connect.servers })}${path === "/" ? "/" : path}` };
}

export interface AuthInfo {
    scheme: string;
    credentials: string;
}

/** `scheme:credentials` (e.g. `digest:user:password`). */
export function parseAuth(text: string, option: string): AuthInfo {
    const i = text.indexOf(":");
    if (i <= 0 || i === text.length - 1) throw new CopyError(`${option} ${JSON.stringify(text)}: expected scheme:credentials, e.g. digest:user:password`, "usage");
    return { scheme: text.slice(0, i), credentials: text.slice(i + 1) };
}

export interface CopyOptions {
    /** Copy ephemeral nodes (as persistent ones); they are skipped by default. */
    includeEphemeral?: boolean;
    /** "source": the source's ACLs as they are; "open": world:anyone with all permissions. */
    acl?: "source" | "open";
    /** Remove target nodes the source lacks. */
    delete?: boolean;
    /** Copy only what changed since: milliseconds since the epoch, or a state file (see CopyState). */
    mtimeSince?: number | string;
    /**
     * A change journal (`zkmigrate journal start`) recording since before the run that wrote the
     * `mtimeSince` state file: it is stopped, and when nothing can be missing from it only its
     * paths are visited; otherwise the scan of every node's stat, with a warning saying why.
     */
    journal?: string;
    /** Write the state for the next incremental run here (defaults to a `mtimeSince` file). */
    stateFile?: string;
    dryRun?: boolean;
    verify?: boolean;
    sourceAuth?: AuthInfo[];
    targetAuth?: AuthInfo[];
    /** The target's jute.maxbuffer (bytes); requests are kept under it. */
    juteMaxBuffer?: number;
    /** Multi batch bounds. */
    batchOps?: number;
    batchBytes?: number;
    /** Multi batches in flight on the target session. */
    batchesInFlight?: number;
    /** Reads in flight per source (and target) session. */
    readsInFlight?: number;
    /** Bound of connecting to an ensemble. */
    connectTimeoutMs?: number;
    /** Abort when ZooKeeper answers nothing for this long while requests are outstanding. */
    stallTimeoutMs?: number;
    /** Progress callback, about every 200 ms and once at the end of each stage. */
    progress?: (p: Progress) => void;
}

export interface Progress {
    stage: "read source" | "read target" | "write" | "verify";
    done: number;
    total?: number;
    elapsedMs: number;
}
