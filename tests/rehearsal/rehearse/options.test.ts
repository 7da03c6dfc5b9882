// The rehearsal's command line (rehearsal/rehearse/options.ts): the flags, their refusals, and
// the fleet's name per scenario (the tests and the report find a run's fleet by it).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HelpRequested, USAGE, UsageError, parseArgs, reconfigAvailable } from "../../../rehearsal/rehearse/options";

const at = { pid: 4242, tty: true, cwd: "/work" };

describe("rehearse options", () => {
    it("defaults: mitosis, live on a terminal, the report in the current directory, spacing 10 s", () => {
        assert.deepEqual(parseArgs([], at), {
            scenario: "mitosis",
            report: "/work/rehearsal-report.json",
            spacingSeconds: 10,
            live: true,
            fleetName: "rh-4242",
            kafka: false,
            compare: false,
        });
    });

    it("names the fleet after the scenario, and rk… with --kafka", () => {
        const cases: [string[], string][] = [
            [["--scenario", "mitosis"], "rh-4242"],
            [["--scenario", "fault"], "rf-4242"],
            [["--kafka"], "rkh-4242"],
            [["--scenario", "fault", "--kafka"], "rkf-4242"],
        ];
        for (const [argv, name] of cases) assert.equal(parseArgs(argv, at).fleetName, name, argv.join(" "));
    });

    it("takes every flag", () => {
        const o = parseArgs(["--scenario", "fault", "--kafka", "--report", "r.json", "--spacing", "0", "--version", "3.8", "--plain"], at);
        assert.deepEqual(o, { scenario: "fault", report: "/work/r.json", spacingSeconds: 0, live: false, fleetName: "rkf-4242", kafka: true, compare: false, version: "3.8" });
    });

    it("refuses bad arguments with the reason", () => {
        const cases: [string[], string][] = [
            [["--scenario", "bogus"], "--scenario bogus: expected mitosis, fault, abort, host-lost, block-copy, kubernetes or pod-fault"],
            [["--procedure", "ec2"], "--procedure ec2: expected mitosis, block-copy or kubernetes"],
            [["--procedure", "mitosis", "--scenario", "pod-fault"], "--scenario pod-fault is a kubernetes scenario; --procedure mitosis has mitosis, fault, abort, host-lost"],
            [["--procedure", "kubernetes", "--kafka"], "--kafka: only with a mitosis scenario (Kafka brokers move in mitosis's clients phase), not kubernetes"],
            [["--procedure", "block-copy", "--kafka"], "--kafka: only with a mitosis scenario (Kafka brokers move in mitosis's clients phase), not block-copy"],
            [["--scenario"], "--scenario needs a value"],
            [["--spacing", "1.5"], "--spacing: expected whole seconds 0..300"],
            [["--spacing", "301"], "--spacing: expected whole seconds 0..300"],
            [["--bogus"], "unknown argument --bogus"],
        ];
        for (const [argv, message] of cases) assert.throws(() => parseArgs(argv, at), (e: Error) => e instanceof UsageError && e.message === message, argv.join(" "));
    });

    it("--join picks the mitosis join, on a fleet of its own; --compare runs them all; reconfig is refused until its room exists", () => {
        const o = parseArgs(["--join", "observer"], at);
        assert.equal(o.join, "observer");
        assert.equal(o.fleetName, "rh-4242-obs");
        assert.equal(parseArgs(["--join", "voter", "--scenario", "abort"], at).fleetName, "ra-4242-vot");
        assert.equal(parseArgs(["--compare"], at).compare, true);
        const cases: [string[], string][] = [
            [["--join", "learner"], "--join learner: expected voter, observer or reconfig"],
            [["--join", "observer", "--procedure", "block-copy"], "--join: only with a mitosis scenario (how the targets join the source), not block-copy"],
            [["--compare", "--join", "voter"], "--compare runs the mitosis scenario once per join (voter, observer, reconfig): without --join, --kafka or another scenario"],
            [["--compare", "--scenario", "abort"], "--compare runs the mitosis scenario once per join (voter, observer, reconfig): without --join, --kafka or another scenario"],
        ];
        for (const [argv, message] of cases) assert.throws(() => parseArgs(argv, at), (e: Error) => e instanceof UsageError && e.message === message, argv.join(" "));
        if (!reconfigAvailable()) {
            assert.throws(() => parseArgs(["--join", "reconfig"], at), (e: Error) => e instanceof UsageError && /--join reconfig: this zkmigrate has no `membershipChange: reconfig`/.test(e.message));
        } else {
            assert.equal(parseArgs(["--join", "reconfig"], at).fleetName, "rh-4242-rcf");
        }
    });

    it("--help asks for the usage line", () => {
        assert.throws(() => parseArgs(["--help"], at), (e: Error) => e instanceof HelpRequested && e.message === USAGE);
        assert.equal(USAGE, "usage: rehearse [--scenario mitosis|fault|abort|host-lost|block-copy|kubernetes|pod-fault] [--procedure mitosis|block-copy|kubernetes] [--join voter|observer|reconfig | --compare] [--kafka] [--report FILE] [--spacing S] [--version V] [--plain]");
    });

    it("--procedure picks the procedure's whole run", () => {
        assert.equal(parseArgs(["--procedure", "block-copy"], at).scenario, "block-copy");
        assert.equal(parseArgs(["--procedure", "mitosis"], at).scenario, "mitosis");
        assert.match(parseArgs(["--procedure", "block-copy"], at).fleetName, /^rb-/);
        assert.equal(parseArgs(["--procedure", "kubernetes"], at).fleetName, "rn-4242");
    });

    it("--procedure with --scenario runs that scenario of the procedure, in either order", () => {
        for (const argv of [
            ["--procedure", "kubernetes", "--scenario", "pod-fault"],
            ["--scenario", "pod-fault", "--procedure", "kubernetes"],
        ]) {
            const o = parseArgs(argv, at);
            assert.equal(o.scenario, "pod-fault", argv.join(" "));
            assert.equal(o.fleetName, "rp-4242");
        }
    });
});
