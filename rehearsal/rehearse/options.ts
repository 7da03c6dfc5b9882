// The rehearsal's command line.
//   rehearse [--procedure mitosis|block-copy|kubernetes] [--scenario mitosis|fault|block-copy|kubernetes|pod-fault] [--kafka] [--report FILE] [--spacing S] [--version V] [--plain]
// --procedure alone runs its first scenario (its whole run under load); with --scenario, the
// scenario must be one of that procedure's.
import * as path from "node:path";
import { mitosisSchema } from "../../src/procedures/mitosis";
import { PROCEDURES, SCENARIOS, isScenario, type ScenarioName } from "./scenarios";

export interface Options {
    scenario: ScenarioName;
    report: string;
    spacingSeconds: number;
    version?: string;
    live: boolean;
    fleetName: string;
    kafka: boolean;
    /** How the mitosis targets join (`--join`): the stack's `joinAs`, or `membershipChange: reconfig`. Unset: the config's default. */
    join?: Join;
    /** `--compare`: the joins one after the other on fresh fleets, side by side. */
    compare: boolean;
}

/** The joins a mitosis rehearsal can run (issue 13). */
export const JOINS = ["voter", "observer", "reconfig"] as const;
export type Join = (typeof JOINS)[number];

/** A bad command line: exit code 2. */
export class UsageError extends Error {}

const NAMES = Object.keys(SCENARIOS);

const PROCEDURE_NAMES = Object.keys(PROCEDURES);

/** `a, b or c`. */
const oneOf = (names: string[]) => `${names.slice(0, -1).join(", ")}${names.length > 1 ? " or " : ""}${names[names.length - 1]}`;

export const USAGE = `usage: rehearse [--scenario ${NAMES.join("|")}] [--procedure ${PROCEDURE_NAMES.join("|")}] [--join ${JOINS.join("|")} | --compare] [--kafka] [--report FILE] [--spacing S] [--version V] [--plain]`;

export function parseArgs(argv: string[], o: { pid?: number; tty?: boolean; cwd?: string } = {}): Options {
    const pid = o.pid ?? process.pid;
    const opts: Options = {
        scenario: "mitosis",
        report: path.resolve(o.cwd ?? process.cwd(), "rehearsal-report.json"),
        spacingSeconds: 10,
        live: o.tty ?? Boolean(process.stderr.isTTY),
        fleetName: "",
        kafka: false,
        compare: false,
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
        else if (a === "--compare") opts.compare = true;
        else if (a === "--join") {
            const v = value();
            if (!(JOINS as readonly string[]).includes(v)) throw new UsageError(`--join ${v}: expected ${oneOf([...JOINS])}`);
            opts.join = v as Join;
            // Refused before anything is built while the config has no reconfig join to run.
            if (v === "reconfig" && !reconfigAvailable()) {
                throw new UsageError("--join reconfig: this zkmigrate has no `membershipChange: reconfig` for mitosis yet (the reconfig join of issue 13 is not merged); use --join voter or --join observer");
            }
        }
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
    if (opts.compare && (opts.join || opts.kafka || opts.scenario !== "mitosis")) {
        throw new UsageError("--compare runs the mitosis scenario once per join (voter, observer, reconfig): without --join, --kafka or another scenario");
    }
    if (opts.join && SCENARIOS[opts.scenario].procedure !== "mitosis") throw new UsageError(`--join: only with a mitosis scenario (how the targets join the source), not ${opts.scenario}`);
    if (opts.kafka && SCENARIOS[opts.scenario].procedure !== "mitosis") throw new UsageError(`--kafka: only with a mitosis scenario (Kafka brokers move in mitosis's clients phase), not ${opts.scenario}`);
    opts.fleetName = `${SCENARIOS[opts.scenario].fleetPrefix}-${pid}`;
    if (opts.kafka) opts.fleetName = `rk${opts.fleetName.slice(1)}`;
    if (opts.join) opts.fleetName = joinFleetName(opts.fleetName, opts.join);
    return opts;
}

/** A join's own fleet: `rh-<pid>-obs` beside a voter run's `rh-<pid>` (`-vot` when named, `-rcf` for reconfig). */
export function joinFleetName(base: string, join: Join): string {
    return `${base}-${{ voter: "vot", observer: "obs", reconfig: "rcf" }[join]}`;
}

/** Whether this zkmigrate's config has the reconfig join (the other issue-13 room). */
export function reconfigAvailable(): boolean {
    return "membershipChange" in mitosisSchema.shape;
}

/** --help: print USAGE and exit 0. */
export class HelpRequested extends Error {
    constructor() {
        super(USAGE);
    }
}
