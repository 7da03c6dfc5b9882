// The rehearsal's command line.
//   rehearse [--scenario mitosis|fault|block-copy] [--procedure mitosis|block-copy] [--kafka] [--report FILE] [--spacing S] [--version V] [--plain]
import * as path from "node:path";
import { PROCEDURES, SCENARIOS, isScenario, type ScenarioName } from "./scenarios";

export interface Options {
    scenario: ScenarioName;
    report: string;
    spacingSeconds: number;
    version?: string;
    live: boolean;
    fleetName: string;
    kafka: boolean;
}

/** A bad command line: exit code 2. */
export class UsageError extends Error {}

const NAMES = Object.keys(SCENARIOS);

const PROCEDURE_NAMES = Object.keys(PROCEDURES);

export const USAGE = `usage: rehearse [--scenario ${NAMES.join("|")}] [--procedure ${PROCEDURE_NAMES.join("|")}] [--kafka] [--report FILE] [--spacing S] [--version V] [--plain]`;

export function parseArgs(argv: string[], o: { pid?: number; tty?: boolean; cwd?: string } = {}): Options {
    const pid = o.pid ?? process.pid;
    const opts: Options = {
        scenario: "mitosis",
        report: path.resolve(o.cwd ?? process.cwd(), "rehearsal-report.json"),
        spacingSeconds: 10,
        live: o.tty ?? Boolean(process.stderr.isTTY),
        fleetName: "",
        kafka: false,
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const value = () => {
            const v = argv[++i];
            if (v === undefined) throw new UsageError(`${a} needs a value`);
            return v;
        };
        if (a === "--scenario") {
            const v = value();
            if (!isScenario(v)) throw new UsageError(`--scenario ${v}: expected ${NAMES.slice(0, -1).join(", ")}${NAMES.length > 1 ? " or " : ""}${NAMES[NAMES.length - 1]}`);
            opts.scenario = v;
        } else if (a === "--procedure") {
            // The procedure's first scenario: its whole run under load.
            const v = value();
            const first = (Object.keys(SCENARIOS) as ScenarioName[]).find((n) => SCENARIOS[n].procedure === v);
            if (!first) throw new UsageError(`--procedure ${v}: expected ${PROCEDURE_NAMES.join(" or ")}`);
            opts.scenario = first;
        } else if (a === "--report") opts.report = path.resolve(o.cwd ?? process.cwd(), value());
        else if (a === "--spacing") {
            const v = Number(value());
            if (!Number.isInteger(v) || v < 0 || v > 300) throw new UsageError(`--spacing: expected whole seconds 0..300`);
            opts.spacingSeconds = v;
        } else if (a === "--version") opts.version = value();
        else if (a === "--plain") opts.live = false;
        else if (a === "--kafka") opts.kafka = true;
        else if (a === "--help" || a === "-h") throw new HelpRequested();
        else throw new UsageError(`unknown argument ${a}`);
    }
    if (opts.kafka && SCENARIOS[opts.scenario].procedure !== "mitosis") throw new UsageError(`--kafka: only with a mitosis scenario (Kafka brokers move in mitosis's clients phase), not ${opts.scenario}`);
    opts.fleetName = `${SCENARIOS[opts.scenario].fleetPrefix}-${pid}`;
    if (opts.kafka) opts.fleetName = `rk${opts.fleetName.slice(1)}`;
    return opts;
}

/** --help: print USAGE and exit 0. */
export class HelpRequested extends Error {
    constructor() {
        super(USAGE);
    }
}
