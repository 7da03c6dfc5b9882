import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
    appliedOf,
    ConfigError,
    loadConfig,
    parseApplied,
    validateTransitions,
    type AppliedState,
    type KubernetesConfig,
    type MitosisConfig,
    type RawConfig,
} from "../../../src/config";
import { planFleet } from "../../../src/model";
import { devConfigAt, devFleet, devRawConfig, edited } from "../../fixtures";

function refusal(raw: RawConfig, isSecret?: (k: string) => boolean): ConfigError {
    try {
        loadConfig(raw, isSecret);
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
        return err;
    }
    assert.fail("expected the config to be refused");
}

describe("loadConfig: Pulumi.dev.yaml", () => {
    it("loads with the documented defaults", () => {
        const f = devFleet();
        assert.equal(f.settings.sshUser, "zookeeper");
        assert.equal(f.settings.sshPort, 22);
        // The example stack's hosts are documentation addresses: its previews must not dial them.
        assert.equal(f.settings.leaderProbe, false);
        const m = f.ensembles[0] as MitosisConfig;
        assert.equal(m.procedure, "mitosis");
        assert.deepEqual(m.active, [4, 5]);
        assert.deepEqual(m.dormant, [6]);
        assert.equal(m.chroot, "/kafka");
        assert.equal(m.spacingSeconds, 10);
        assert.deepEqual(m.ports, { client: 2181, peer: 2888, election: 3888 });
        assert.equal(m.host.paths.configFile, "/etc/zookeeper/conf/zoo.cfg");
        assert.equal(m.host.paths.myidFile, "/var/lib/zookeeper/myid");
        assert.equal(m.host.service.restart, "systemctl restart zookeeper");
        assert.equal(m.host.healthTimeoutSeconds, 120);
        const k = f.ensembles[1] as KubernetesConfig;
        assert.equal(k.kubernetes.name, "zk-shared");
        assert.equal(k.kubernetes.clusterDomain, "cluster.local");
        assert.deepEqual(k.cutover, []);
    });

    it("defaults the active targets to the first n-1", () => {
        const raw = edited(devRawConfig(), (r) => delete r.ensembles[0].activeTargets);
        assert.deepEqual((loadConfig(raw).ensembles[0] as MitosisConfig).active, [4, 5]);
    });

    it("lets an ensemble override host settings", () => {
        const raw = edited(devRawConfig(), (r) => {
            r.ensembles[0].zookeeper = { clientPort: 2182, dynamicConfigFile: "/etc/zookeeper/conf/zoo.cfg.dynamic" };
            r.ensembles[0].service = { restart: "/usr/local/bin/zk restart" };
            r.ensembles[0].spacingSeconds = 3;
        });
        const m = loadConfig(raw).ensembles[0] as MitosisConfig;
        assert.equal(m.host.clientPort, 2182);
        assert.equal(m.host.paths.dynamicConfigFile, "/etc/zookeeper/conf/zoo.cfg.dynamic");
        assert.equal(m.host.service.restart, "/usr/local/bin/zk restart");
        assert.equal(m.host.service.stop, "systemctl stop zookeeper");
        assert.equal(m.spacingSeconds, 3);
    });
});

// One field changed per case; the exact path and the reason.
const refusals: { name: string; edit: (r: any) => void; path: string; reason: RegExp }[] = [
    {
        name: "duplicate myid inside the source",
        edit: (r) => (r.ensembles[0].source[1].id = 1),
        path: "zkmigrate:ensembles[kafka-main].source[1].id",
        reason: /^myid 1 is used twice \(also source\[0\]\)$/,
    },
    {
        name: "duplicate myid across source and target",
        edit: (r) => (r.ensembles[0].target[0].id = 2),
        path: "zkmigrate:ensembles[kafka-main].target[0].id",
        reason: /^myid 2 is used twice \(also source\[1\]\)$/,
    },
    {
        name: "myid above 255",
        edit: (r) => (r.ensembles[1].servers[0].id = 256),
        path: "zkmigrate:ensembles[shared].servers[0].id",
        reason: /^a myid is 1\.\.255$/,
    },
    {
        name: "myid 0",
        edit: (r) => (r.ensembles[0].source[0].id = 0),
        path: "zkmigrate:ensembles[kafka-main].source[0].id",
        reason: /^a myid is 1\.\.255$/,
    },
    {
        name: "a host listed twice in one ensemble",
        edit: (r) => (r.ensembles[0].source[2].host = "192.0.2.1"),
        path: "zkmigrate:ensembles[kafka-main].source[2].host",
        reason: /^host 192\.0\.2\.1 is listed twice \(also zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.host\)$/,
    },
    {
        name: "a host listed in two ensembles",
        edit: (r) => (r.ensembles[1].servers[0].host = "192.0.2.4"),
        path: "zkmigrate:ensembles[shared].servers[0].host",
        reason: /^host 192\.0\.2\.4 is listed twice \(also zkmigrate:ensembles\[kafka-main\]\.target\[0\]\.host\)$/,
    },
    {
        name: "a server in both source and target",
        edit: (r) => (r.ensembles[0].target[2].host = "192.0.2.3"),
        path: "zkmigrate:ensembles[kafka-main].target[2].host",
        reason: /^host 192\.0\.2\.3 is in both the source and the target$/,
    },
    {
        name: "a source of two servers",
        edit: (r) => r.ensembles[0].source.pop(),
        path: "zkmigrate:ensembles[kafka-main].source",
        reason: /^2 servers: an ensemble needs an odd number of at least 3 servers/,
    },
    {
        name: "an even ensemble of four",
        edit: (r) => r.ensembles[1].servers.push({ id: 14, host: "198.51.100.14" }),
        path: "zkmigrate:ensembles[shared].servers",
        reason: /^4 servers: an ensemble needs an odd number of at least 3 servers/,
    },
    {
        name: "a single server without the dev flag",
        edit: (r) => (r.ensembles[1].servers = [r.ensembles[1].servers[0]]),
        path: "zkmigrate:ensembles[shared].servers",
        reason: /a single dev server needs allowSingleServer: true$/,
    },
    {
        name: "more than n-1 active targets",
        edit: (r) => (r.ensembles[0].activeTargets = [4, 5, 6]),
        path: "zkmigrate:ensembles[kafka-main].activeTargets",
        reason: /^3 active targets against a source of 3: the source must stay a strict majority of the joint ensemble .* at most 2 targets may join$/,
    },
    {
        name: "an active target that is not a target",
        edit: (r) => (r.ensembles[0].activeTargets = [4, 3]),
        path: "zkmigrate:ensembles[kafka-main].activeTargets[1]",
        reason: /^myid 3 is not a target$/,
    },
    {
        name: "a target not marked empty",
        edit: (r) => delete r.ensembles[0].targetEmpty,
        path: "zkmigrate:ensembles[kafka-main].targetEmpty",
        reason: /^mitosis needs an empty target ensemble/,
    },
    {
        name: "an unknown mitosis phase",
        edit: (r) => (r.ensembles[0].phase = "splitted"),
        path: "zkmigrate:ensembles[kafka-main].phase",
        reason: /^unknown mitosis phase "splitted" \(one of: separate, joined, clients, prepared, split, source-restarted, done\)$/,
    },
    {
        name: "a kubernetes phase on a mitosis ensemble",
        edit: (r) => (r.ensembles[0].phase = "pods"),
        path: "zkmigrate:ensembles[kafka-main].phase",
        reason: /^unknown mitosis phase "pods"/,
    },
    {
        name: "an unknown procedure",
        edit: (r) => (r.ensembles[0].procedure = "meiosis"),
        path: "zkmigrate:ensembles[kafka-main].procedure",
        reason: /unknown procedure|Invalid input/,
    },
    {
        name: "an unknown key in an ensemble",
        edit: (r) => (r.ensembles[1].cutovr = [11]),
        path: "zkmigrate:ensembles[shared]",
        reason: /cutovr/,
    },
    {
        name: "an unknown top-level key",
        edit: (r) => (r.sshUsr = "x"),
        path: "zkmigrate:sshUsr",
        reason: /^unknown key \(known: sshUser, sshPort, sshPrivateKey/,
    },
    {
        name: "a chroot with a trailing slash",
        edit: (r) => (r.ensembles[0].clients.chroot = "/kafka/"),
        path: "zkmigrate:ensembles[kafka-main].clients.chroot",
        reason: /^a chroot is an absolute znode path without a trailing "\/"/,
    },
    {
        name: "a kubernetes server given by name (Endpoints need IPs)",
        edit: (r) => (r.ensembles[1].servers[0].host = "zk1.example.com"),
        path: "zkmigrate:ensembles[shared].servers[0].host",
        reason: /^"zk1\.example\.com" is not an IP address; the Service's manual Endpoints need the host's IP$/,
    },
    {
        name: "a cutover before the pods phase",
        edit: (r) => ((r.ensembles[1].phase = "peers"), (r.ensembles[1].cutover = [11])),
        path: "zkmigrate:ensembles[shared].cutover",
        reason: /^servers move into pods only in phase "pods"/,
    },
    {
        name: "a cutover of a server that does not exist",
        edit: (r) => ((r.ensembles[1].phase = "pods"), (r.ensembles[1].cutover = [99])),
        path: "zkmigrate:ensembles[shared].cutover[0]",
        reason: /^myid 99 is not a server of this ensemble$/,
    },
    {
        name: "done with servers still on hosts",
        edit: (r) => ((r.ensembles[1].phase = "done"), (r.ensembles[1].cutover = [11, 12])),
        path: "zkmigrate:ensembles[shared].phase",
        reason: /^"done" needs every server cut over; still on hosts: 13$/,
    },
    {
        name: "a pod setting that zkmigrate owns",
        edit: (r) => (r.ensembles[1].kubernetes.settings = { "server.1": "x:1:2" }),
        path: "zkmigrate:ensembles[shared].kubernetes.settings",
        reason: /^zoo\.cfg setting server\.1 cannot be set/,
    },
    {
        name: "a four-letter-word whitelist of *",
        edit: (r) => (r.ensembles[1].kubernetes.settings = { "4lw.commands.whitelist": "*" }),
        path: "zkmigrate:ensembles[shared].kubernetes.settings",
        reason: /^4lw\.commands\.whitelist must never be \*/,
    },
    {
        name: "two ensembles of one name",
        edit: (r) => (r.ensembles[1].name = "kafka-main"),
        path: "zkmigrate:ensembles[kafka-main].name",
        reason: /^ensemble name "kafka-main" is used twice \(items 0 and 1 of zkmigrate:ensembles\)$/,
    },
    {
        name: "a port out of range",
        edit: (r) => (r.defaults = { zookeeper: { clientPort: 70000 } }),
        path: "zkmigrate:defaults.zookeeper.clientPort",
        reason: /65535/,
    },
    {
        name: "no SSH key",
        edit: (r) => delete r.sshPrivateKey,
        path: "zkmigrate:sshPrivateKey",
        reason: /^required to run the host steps over SSH: pulumi config set --secret zkmigrate:sshPrivateKey < key$/,
    },
];

describe("loadConfig refuses bad config with the path and the reason", () => {
    for (const c of refusals) {
        it(c.name, () => {
            const err = refusal(edited(devRawConfig(), c.edit));
            const hit = err.issues.find((i) => i.path === c.path);
            assert.ok(hit, `no issue at ${c.path}; got ${JSON.stringify(err.issues)}`);
            assert.match(hit.reason, c.reason);
            assert.match(err.message, new RegExp(`^invalid zkmigrate configuration[^]*  - ${c.path.replace(/[[\].]/g, "\\$&")}: `));
        });
    }

    it("a plain-text SSH key", () => {
        const err = refusal(devRawConfig(), (k) => k !== "zkmigrate:sshPrivateKey");
        assert.deepEqual(err.issues, [
            {
                path: "zkmigrate:sshPrivateKey",
                reason: "the SSH private key must be a secret: pulumi config set --secret zkmigrate:sshPrivateKey < key",
            },
        ]);
    });

    it("reports every problem at once", () => {
        const err = refusal(
            edited(devRawConfig(), (r) => {
                r.ensembles[0].source[1].id = 1;
                r.ensembles[1].phase = "podz";
            }),
        );
        // A schema error in one ensemble hides nothing of another: schema and semantic problems
        // together, each ensemble's together, in the order of the ensembles.
        assert.deepEqual(
            err.issues.map((i) => i.path),
            ["zkmigrate:ensembles[kafka-main].source[1].id", "zkmigrate:ensembles[shared].phase"],
        );
        assert.match(err.message, /^invalid zkmigrate configuration \(2 problems\):\n {2}- zkmigrate:ensembles\[kafka-main\]\.source\[1\]\.id: myid 1 is used twice[^\n]*\n {2}- zkmigrate:ensembles\[shared\]\.phase: /);
        // Within one ensemble too: a schema error and a semantic one.
        const err3 = refusal(edited(devRawConfig(), (r) => ((r.ensembles[0].source[1].id = 1), (r.ensembles[1].cutovr = [11]), (r.ensembles[1].servers[1].host = r.ensembles[1].servers[0].host), (r.sshPort = "x"))));
        assert.deepEqual(err3.issues.map((i) => i.path), ["zkmigrate:sshPort", "zkmigrate:ensembles[kafka-main].source[1].id", "zkmigrate:ensembles[shared]"]);
        const err2 = refusal(edited(devRawConfig(), (r) => ((r.ensembles[0].source[1].id = 1), (r.ensembles[0].activeTargets = [4, 5, 6]))));
        assert.deepEqual(err2.issues.map((i) => i.path).sort(), ["zkmigrate:ensembles[kafka-main].activeTargets", "zkmigrate:ensembles[kafka-main].source[1].id"]);
    });

    it("allows a single dev server with the flag", () => {
        const raw = edited(devRawConfig(), (r) => {
            r.ensembles[1].servers = [r.ensembles[1].servers[0]];
            r.ensembles[1].allowSingleServer = true;
        });
        assert.equal((loadConfig(raw).ensembles[1] as KubernetesConfig).servers.length, 1);
    });
});

describe("validateTransitions: one step per update, read back from the stack", () => {
    const applied = (phases: Record<string, string>, cutover: number[] = []): AppliedState => {
        const f = devFleet(phases, cutover);
        return Object.fromEntries(f.ensembles.map((e) => [e.name, appliedOf(e)]));
    };
    const issuesFor = (phases: Record<string, string>, a: AppliedState, cutover?: number[]) =>
        validateTransitions(loadConfig(devConfigAt(phases, cutover)).ensembles, a);

    it("a new ensemble starts at the first phase", () => {
        assert.deepEqual(issuesFor({}, {}), []);
        const issues = issuesFor({ "kafka-main": "joined" }, {});
        assert.deepEqual(issues, [
            {
                path: "zkmigrate:ensembles[kafka-main].phase",
                reason: 'a new ensemble starts at the first phase "separate" (its preflight checks run there); got "joined"',
            },
        ]);
    });

    it("one step forward, one step back, or staying are fine", () => {
        const a = applied({ "kafka-main": "clients" });
        for (const p of ["joined", "clients", "prepared"]) {
            assert.deepEqual(issuesFor({ "kafka-main": p }, a), [], p);
        }
    });

    it("skipping a phase is refused, naming the next one", () => {
        const issues = issuesFor({ "kafka-main": "split" }, applied({ "kafka-main": "clients" }));
        assert.deepEqual(issues, [
            {
                path: "zkmigrate:ensembles[kafka-main].phase",
                reason: '"split" is 2 steps from the applied phase "clients": move one step per update (next: "prepared")',
            },
        ]);
    });

    it("a backward skip names the previous phase, not the next one", () => {
        const cases: [string, string, string][] = [
            ["separate", "prepared", '"separate" is 3 steps from the applied phase "prepared": move one step per update (back: "clients")'],
            ["joined", "prepared", '"joined" is 2 steps from the applied phase "prepared": move one step per update (back: "clients")'],
            ["split", "done", '"split" is 2 steps from the applied phase "done": move one step per update (back: "source-restarted")'],
        ];
        for (const [to, from, reason] of cases) {
            assert.deepEqual(issuesFor({ "kafka-main": to }, applied({ "kafka-main": from })), [{ path: "zkmigrate:ensembles[kafka-main].phase", reason }], `${from} -> ${to}`);
        }
    });

    it("an applied phase this zkmigrate does not know is a clear refusal, not a stack trace", () => {
        for (const stored of ["splitted", "hosts", ""]) {
            const a = applied({ "kafka-main": "joined" });
            a["kafka-main"].phase = stored;
            const issues = issuesFor({ "kafka-main": "joined" }, a);
            assert.equal(issues.length, 1, stored);
            assert.equal(issues[0].path, "zkmigrate:ensembles[kafka-main].phase");
            assert.equal(
                issues[0].reason,
                `the stack's applied record says ensemble "kafka-main" is in mitosis phase "${stored}", which this zkmigrate does not know ` +
                    "(its phases: separate, joined, clients, prepared, split, source-restarted, done); it was written by another zkmigrate version: " +
                    "run that version (pulumi stack history shows when it ran) to finish or step back to a phase both know; nothing was changed",
            );
            // The model refuses it the same way (a ConfigError, printed without a stack trace).
            assert.throws(() => planFleet(loadConfig(devConfigAt({ "kafka-main": "joined" })), a), (err: unknown) => err instanceof ConfigError && /does not know/.test(err.message));
        }
    });

    it("the cutover grows by one server per update, append only", () => {
        const a = applied({ shared: "pods" }, [11]);
        assert.deepEqual(issuesFor({ shared: "pods" }, a, [11, 12]), []);
        const two = issuesFor({ shared: "pods" }, a, [11, 12, 13]);
        assert.equal(two.length, 1);
        assert.equal(two[0].path, "zkmigrate:ensembles[shared].cutover");
        assert.match(two[0].reason, /^2 servers added to the cutover in one update \(applied: \[11\]\); move one server per update/);
        const reorder = issuesFor({ shared: "pods" }, a, [12]);
        assert.match(reorder[0].reason, /^servers already in pods cannot leave or change order \(applied cutover: \[11\]\); only append$/);
    });

    it("the StatefulSet's immutable fields cannot change while pods run", () => {
        const a = applied({ shared: "pods" }, [11]);
        const raw = edited(devConfigAt({ shared: "pods" }, [11, 12]), (r) => (r.ensembles[1].kubernetes.storageSize = "20Gi"));
        const issues = validateTransitions(loadConfig(raw).ensembles, a);
        assert.deepEqual(issues.map((i) => i.path), ["zkmigrate:ensembles[shared].kubernetes"]);
        assert.match(issues[0].reason, /applied: zookeeper\/zk-shared 10Gi \(default class\); now: zookeeper\/zk-shared 20Gi .* every pod at once$/);
        // Before any pod exists, it may change.
        assert.deepEqual(validateTransitions(loadConfig(edited(devConfigAt({ shared: "peers" }), (r) => (r.ensembles[1].kubernetes.storageSize = "20Gi"))).ensembles, applied({ shared: "clients" })), []);
    });

    it("the servers of an ensemble cannot change mid-migration", () => {
        const a = applied({ "kafka-main": "joined" });
        a["kafka-main"].servers = [1, 2, 3, 4, 5, 7];
        const issues = issuesFor({ "kafka-main": "joined" }, a);
        assert.match(issues[0].reason, /^the servers of an ensemble cannot change during a migration \(applied: 1, 2, 3, 4, 5, 7; now: 1, 2, 3, 4, 5, 6\)/);
    });

    it("the procedure of an applied ensemble cannot change", () => {
        const a = applied({});
        a["kafka-main"].procedure = "kubernetes";
        assert.match(issuesFor({}, a)[0].reason, /was applied as a kubernetes migration/);
    });

    it("parseApplied reads the stack output back and treats junk as nothing applied", () => {
        assert.deepEqual(parseApplied(undefined), {});
        assert.deepEqual(parseApplied("junk"), {});
        assert.deepEqual(parseApplied({ x: { procedure: "mitosis", phase: "joined" } }), {
            x: { procedure: "mitosis", phase: "joined", cutover: [], servers: [] },
        });
    });
});
