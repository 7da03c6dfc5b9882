// The rehearsal's command line.
//   rehearse [--procedure mitosis|block-copy|kubernetes] [--scenario mitosis|fault|block-copy|kubernetes|pod-fault] [--kafka] [--report FILE] [--spacing S] [--version V] [--plain]
// --procedure alone runs its first scenario (its whole run under load); with --scenario, the
// scenario must be one of that procedure's.
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

/** `a, b or c`. */
const oneOf = (names: string[]) => `${names.slice(0, -1).join(", ")}${names.length > 1 ? " or " : ""}${names[names.length - 1]}`;

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
    let scenarioGiven = false;
    let procedure: string | undefined;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const value = () => {
            const v = argv[++i];
            if (v === undefined) throw new UsageError(`${a} needs a value`);
            return v;
        };
        if (a === "--scenario") {
            const v = value();
            if (!isScenario(v)) throw new UsageError(`--scenario ${v}: expected ${oneOf(NAMES)}`);
            opts.scenario = v;
            scenarioGiven = true;
        } else if (a === "--procedure") {
            const v = value();
            if (!PROCEDURE_NAMES.includes(v)) throw new UsageError(`--procedure ${v}: expected ${oneOf(PROCEDURE_NAMES)}`);
            procedure = v;
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
    if (procedure !== undefined) {
        if (!scenarioGiven) {
            // The procedure's first scenario: its whole run under load.
            opts.scenario = (Object.keys(SCENARIOS) as ScenarioName[]).find((n) => SCENARIOS[n].procedure === procedure)!;
        } else if (SCENARIOS[opts.scenario].procedure !== procedure) {
            const own = (Object.keys(SCENARIOS) as ScenarioName[]).filter((n) => SCENARIOS[n].procedure === procedure);
            throw new UsageError(`--scenario ${opts.scenario} is a ${SCENARIOS[opts.scenario].procedure} scenario; --procedure ${procedure} has ${own.join(", ")}`);
        }
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
