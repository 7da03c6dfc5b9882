// `npm run rehearse`: a whole mitosis done by `pulumi up` (the real engine, the Automation API)
// on a local fleet of real ZooKeeper hosts, under load, with a loss check at the end.
//
//   node --import tsx rehearsal/rehearse.ts [--procedure mitosis|block-copy|kubernetes]
//                                           [--scenario mitosis|fault|block-copy|kubernetes|pod-fault]
//                                           [--join voter|observer|reconfig | --compare]
//                                           [--kafka] [--report FILE] [--spacing S] [--version V] [--plain]
//
// 1. a local fleet: source 1-3 (serving), target 4-6 (an empty ensemble of its own, serving);
// 2. a copy of the project in a temp dir with a stack on a local file backend (passphrase
//    secrets) whose config describes that fleet, SSH to the namespace hosts;
// 3. one `pulumi up` per phase: separate, joined, clients, prepared, split, source-restarted, done;
// 4. meanwhile two client groups write sequence-numbered znodes, read and keep watches: the
//    "migrating" clients (Kafka's chroot) always on the connect string the phase publishes, the
//    "source-users" (the shared ensemble's other tenants) on the source ensemble;
// 5. a report per phase and a JSON file of the same; the last line printed is a one-line JSON
//    summary. Exit 0 only with 0 lost and every phase applied.
// With --kafka, three Kafka brokers (ZooKeeper mode, hosts of their own) run on the source's chroot
// /kafka and move to the target in `clients` (rewritten zookeeper.connect, rolling restart, the
// controller last); producers (idempotent, acks=all) and a consumer group run through every phase,
// and the report adds messages acknowledged, consumed, lost (must be 0), duplicated, and the
// longest produce gap per phase (rehearsal/kafka-load.ts defines each figure).
// --join picks how the mitosis targets join (issue 13: `joinAs`, or `membershipChange: reconfig`
// once that room exists); --compare runs the mitosis once per join, each on a fresh fleet, prints
// each run's report, then a side-by-side table (per phase: source restarts, source elections
// counted from srvr, the sources' and the migrating clients' longest write gaps; the split; wall
// time; the loss check) and last the JSON line `{"compare":true,"variants":{voter,observer,reconfig}}`.
// The fault scenario makes target 4's data dir unusable before `joined`: that `pulumi up` must
// stop at server 4 with nothing after it touched while the source serves, and after the repair a
// second `pulumi up` completes the phase.
// --procedure kubernetes: three ZooKeeper hosts and a local single-node Kubernetes beside them
// (rehearsal/kubernetes/), one `pulumi up` per phase hosts, services, clients, peers, then one per
// cutover in pods (followers first, the leader last), done; every client follows the connect
// string (the Service names, resolved through the cluster's DNS); the report adds per cutover the
// pod's Ready and serving times and the longest write gap. --scenario pod-fault breaks the first
// cutover's volume: that `pulumi up` must stop at the StatefulSet with the host stopped but
// restorable and 2 of 3 serving; after the repair a second one completes the cutover.
// The stack, the cluster, the fleet and the temp dir are always destroyed (also on failure and on
// SIGINT).
//
// rehearse/: options.ts (this command line), scenarios.ts (the procedure and scenario tables),
// runner.ts (one run), steps.ts (the engine's events), monitor.ts (who leads), kafka.ts (--kafka),
// kubernetes.ts (the local cluster's part, the pods phase and the pod fault),
// display.ts (the status line), report.ts (the summary, the report file and the table).
import * as fs from "node:fs";
import { COMPARED, compareSummary, renderCompare, variantFigures, type Compared, type Variants } from "./rehearse/compare";
import { HelpRequested, UsageError, joinFleetName, parseArgs, reconfigAvailable, type Options } from "./rehearse/options";
import { fullReport, renderReport, summarize } from "./rehearse/report";
import { runRehearsal } from "./rehearse/runner";

async function main(): Promise<number> {
    let o;
    try {
        o = parseArgs(process.argv.slice(2));
    } catch (e) {
        if (e instanceof HelpRequested) {
            console.log(e.message);
            return 0;
        }
        throw e;
    }
    if (typeof process.getuid === "function" && process.getuid() !== 0) {
        throw new UsageError("the rehearsal needs root: it creates network namespaces, a bridge and iptables rules");
    }
    if (o.compare) return compare(o);
    const result = await runRehearsal(o);
    const summary = summarize(result);
    fs.writeFileSync(o.report, `${JSON.stringify(fullReport(result, summary), null, 2)}\n`);
    console.log(renderReport(result, summary));
    console.log(JSON.stringify(summary));
    return summary.ok ? 0 : 1;
}

/** --compare: each join on a fresh fleet, one after the other; the side-by-side table, then the JSON line. */
async function compare(o: Options): Promise<number> {
    const variants: Variants = { voter: null, observer: null, reconfig: null };
    const skipped: Partial<Record<Compared, string>> = {};
    for (const join of COMPARED) {
        if (join === "reconfig" && !reconfigAvailable()) {
            skipped.reconfig = "this zkmigrate has no membershipChange: reconfig yet";
            console.error(`rehearse --compare: ${join}: skipped (${skipped.reconfig})`);
            continue;
        }
        const run: Options = { ...o, compare: false, join, fleetName: joinFleetName(o.fleetName, join), report: o.report.replace(/(\.json)?$/, `-${join}.json`) };
        console.error(`rehearse --compare: ${join} join on fleet ${run.fleetName}`);
        const result = await runRehearsal(run);
        const summary = summarize(result);
        fs.writeFileSync(run.report, `${JSON.stringify(fullReport(result, summary), null, 2)}\n`);
        console.log(renderReport(result, summary));
        console.log(JSON.stringify(summary));
        variants[join] = variantFigures(result, summary);
        // Ctrl-C ends the comparison, not only the run it interrupted.
        if (result.failure === "interrupted") break;
    }
    const out = compareSummary(variants, skipped);
    fs.writeFileSync(o.report, `${JSON.stringify(out, null, 2)}\n`);
    console.log(renderCompare(variants, skipped));
    console.log(JSON.stringify(out));
    return out.ok ? 0 : 1;
}

main().then(
    (code) => process.exit(code),
    (e) => {
        console.error(`rehearse: ${e instanceof UsageError ? "" : "error: "}${(e as Error).message}`);
        process.exit(e instanceof UsageError ? 2 : 1);
    },
);
