// Hosts compared as the resolver reads them, and the rules about hosts, ports and what two
// ensembles on one host share (src/config/hosts.ts, src/config/rules.ts): one field changed per
// case, the exact path and the reason.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalHost, ConfigError, hostSpellingIssue, inetAton, loadConfig, resolvedHostIssues, type RawConfig } from "../../../src/config";
import { blockCopyRaw, devRawConfig as devStack, edited, TEST_SSH } from "../../fixtures";

/** The dev stack with a known_hosts line that matches any host: these cases move hosts around. */
const devRawConfig = (): RawConfig => ({ ...devStack(), ...TEST_SSH });

function refusal(raw: RawConfig): ConfigError {
    try {
        loadConfig(raw);
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
        return err;
    }
    assert.fail("expected the config to be refused");
}

describe("canonicalHost: one form per host, as the resolver reads it", () => {
    const cases: [string, string][] = [
        ["192.0.2.1", "192.0.2.1"],
        ["192.0.2.01", "192.0.2.1"],
        ["0xc0.0.2.1", "192.0.2.1"],
        ["0300.0.2.1", "192.0.2.1"],
        ["3221225985", "192.0.2.1"],
        ["192.0.2.010", "192.0.2.8"],
        ["192.0.2", "192.0.0.2"],
        ["192.513", "192.0.2.1"],
        ["127.1", "127.0.0.1"],
        ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
        ["2001:db8:0000::0001", "2001:db8::1"],
        ["[2001:db8::1]", "2001:db8::1"],
        ["::ffff:192.0.2.1", "192.0.2.1"],
        ["::FFFF:c000:0201", "192.0.2.1"],
        ["ZK1.Example.COM.", "zk1.example.com"],
        ["zk1.example.com", "zk1.example.com"],
        // Not an address to inet_aton: a name (an invalid octal part, more than 4 parts, a part too big).
        ["1.2.3.4.5", "1.2.3.4.5"],
        ["256.1.1.1", "256.1.1.1"],
    ];
    for (const [h, want] of cases) it(`${h} -> ${want}`, () => assert.equal(canonicalHost(h), want));

    it("inet_aton's ranges: the last part fills the remaining bytes", () => {
        assert.equal(inetAton("1.16777215"), 0x01ffffff);
        assert.equal(inetAton("1.16777216"), undefined);
        assert.equal(inetAton("4294967295"), 0xffffffff);
        assert.equal(inetAton("4294967296"), undefined);
        assert.equal(inetAton("08.1.1.1"), undefined);
    });
});

describe("hostSpellingIssue: ambiguous spellings are refused, naming the canonical form", () => {
    const refused: [string, RegExp][] = [
        ["192.0.2.01", /write the dotted quad 192\.0\.2\.1$/],
        ["0xc0.0.2.1", /inet_aton.* reads it as 192\.0\.2\.1, while Java .* does not take it as an address.*write the dotted quad 192\.0\.2\.1$/],
        ["3221225985", /write the dotted quad 192\.0\.2\.1$/],
        ["192.0.2.010", /reads it as 192\.0\.2\.8 \(a part with a leading 0 is octal\), but Java .* as 192\.0\.2\.10; write the dotted quad you mean \(192\.0\.2\.8 or 192\.0\.2\.10\)$/],
        ["192.0.2", /write the dotted quad 192\.0\.0\.2$/],
        ["127.1", /write the dotted quad 127\.0\.0\.1$/],
        ["08.1.1.1", /Java .* reads it as 8\.1\.1\.1, while the C resolver .* does not take it as an address/],
        ["[2001:DB8::1]", /^write the IPv6 address without brackets: 2001:db8::1/],
    ];
    for (const [h, reason] of refused) it(`refuses ${h}`, () => assert.match(hostSpellingIssue(h) ?? "(accepted)", reason));
    for (const h of ["192.0.2.1", "2001:DB8::1", "::ffff:192.0.2.1", "zk1.example.com", "ZK1.example.com."]) {
        it(`accepts ${h}`, () => assert.equal(hostSpellingIssue(h), undefined));
    }
});

// One field changed per case in Pulumi.dev.yaml (kafka-main: mitosis on 192.0.2.1-6, brokers
// 192.0.2.21-23; shared: kubernetes on 198.51.100.11-13).
const refusals: { name: string; raw?: () => RawConfig; edit: (r: any) => void; path: string; reason: RegExp }[] = [
    {
        name: "a zero-padded IPv4 address",
        edit: (r) => (r.ensembles[0].source[0].host = "192.0.2.01"),
        path: "zkmigrate:ensembles[kafka-main].source[0].host",
        reason: /^"192\.0\.2\.01" is an ambiguous IPv4 spelling: .*write the dotted quad 192\.0\.2\.1$/,
    },
    {
        name: "a hex IPv4 address",
        edit: (r) => (r.ensembles[0].target[0].host = "0xc0.0.2.4"),
        path: "zkmigrate:ensembles[kafka-main].target[0].host",
        reason: /write the dotted quad 192\.0\.2\.4$/,
    },
    {
        name: "an IPv4 address as one integer",
        edit: (r) => (r.ensembles[1].servers[0].host = "3325256715"),
        path: "zkmigrate:ensembles[shared].servers[0].host",
        reason: /write the dotted quad 198\.51\.100\.11$/,
    },
    {
        name: "an octal octet (192.0.2.010 is 192.0.2.8 to the resolver, 192.0.2.10 to Java)",
        edit: (r) => (r.ensembles[0].source[2].host = "192.0.2.010"),
        path: "zkmigrate:ensembles[kafka-main].source[2].host",
        reason: /192\.0\.2\.8 .* 192\.0\.2\.10/,
    },
    {
        name: "a short IPv4 form as sshHost",
        edit: (r) => (r.ensembles[0].source[0].sshHost = "127.1"),
        path: "zkmigrate:ensembles[kafka-main].source[0].sshHost",
        reason: /write the dotted quad 127\.0\.0\.1$/,
    },
    {
        name: "a bracketed IPv6 address",
        edit: (r) => (r.ensembles[0].source[0].host = "[2001:DB8::1]"),
        path: "zkmigrate:ensembles[kafka-main].source[0].host",
        reason: /^write the IPv6 address without brackets: 2001:db8::1/,
    },
    {
        name: "an ambiguous Kafka broker host",
        edit: (r) => (r.ensembles[0].clients.kafka.brokers[1].host = "192.0.2.022"),
        path: "zkmigrate:ensembles[kafka-main].clients.kafka.brokers[1].host",
        reason: /192\.0\.2\.18 .* 192\.0\.2\.22/,
    },
    {
        name: "two spellings of one IPv6 address in one ensemble",
        edit: (r) => ((r.ensembles[0].source[0].host = "2001:db8::1"), (r.ensembles[0].source[1].host = "2001:DB8:0:0:0:0:0:1")),
        path: "zkmigrate:ensembles[kafka-main].source[1].host",
        reason: /^host 2001:DB8:0:0:0:0:0:1 is listed twice \(also zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.host\) \(written 2001:db8::1 there: the same host\)$/,
    },
    {
        name: "an IPv4-mapped IPv6 address of a source listed as a target",
        edit: (r) => (r.ensembles[0].target[0].host = "::ffff:192.0.2.1"),
        path: "zkmigrate:ensembles[kafka-main].target[0].host",
        reason: /^host ::ffff:192\.0\.2\.1 is listed twice \(also zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.host\) \(written 192\.0\.2\.1 there: the same host\)$/,
    },
    {
        name: "a name in two cases, one with a trailing dot",
        edit: (r) => ((r.ensembles[0].source[0].host = "zk1.example.com"), (r.ensembles[0].source[1].host = "ZK1.Example.com.")),
        path: "zkmigrate:ensembles[kafka-main].source[1].host",
        reason: /^host ZK1\.Example\.com\. is listed twice .*\(written zk1\.example\.com there: the same host\)$/,
    },
    {
        name: "two servers of one ensemble behind one sshHost",
        edit: (r) => ((r.ensembles[0].source[0].sshHost = "10.0.0.9"), (r.ensembles[0].target[1].sshHost = "10.0.0.9")),
        path: "zkmigrate:ensembles[kafka-main].target[1].sshHost",
        reason: /^SSH host 10\.0\.0\.9 is also the SSH host of zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.sshHost: two servers of one ensemble cannot share a machine/,
    },
    {
        name: "a server's sshHost that is another server's host",
        edit: (r) => (r.ensembles[0].source[1].sshHost = "192.0.2.1"),
        path: "zkmigrate:ensembles[kafka-main].source[1].sshHost",
        reason: /^SSH host 192\.0\.2\.1 is also the SSH host of zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.host/,
    },
    {
        name: "equal peer and election ports",
        edit: (r) => (r.ensembles[0].zookeeper = { peerPort: 3888 }),
        path: "zkmigrate:ensembles[kafka-main].zookeeper.electionPort",
        reason: /^electionPort 3888 equals peerPort: a server binds its client, peer and election ports each on its own/,
    },
    {
        name: "equal client and peer ports from the defaults",
        edit: (r) => (r.defaults.zookeeper = { clientPort: 2888 }),
        path: "zkmigrate:ensembles[shared].zookeeper.peerPort",
        reason: /^peerPort 2888 equals clientPort/,
    },
    {
        name: "the same host:clientPort in two ensembles, spelled differently",
        edit: (r) => (r.ensembles[1].servers[0].host = "::ffff:192.0.2.4"),
        path: "zkmigrate:ensembles[shared].servers[0].host",
        reason: /^host ::ffff:192\.0\.2\.4 is listed twice \(also zkmigrate:ensembles\[kafka-main\]\.target\[0\]\.host\) \(written 192\.0\.2\.4 there: the same host\)$/,
    },
    {
        name: "two ensembles on one host with different client ports but one zoo.cfg, dataDir and service",
        edit: (r) => ((r.ensembles[1].servers[0].host = "192.0.2.4"), (r.ensembles[1].zookeeper = { clientPort: 2182 })),
        path: "zkmigrate:ensembles[shared].servers[0].host",
        reason:
            /^host 192\.0\.2\.4 also runs a server of ensemble "kafka-main" \(zkmigrate:ensembles\[kafka-main\]\.target\[0\]\.host\), and both would use zoo\.cfg \/etc\/zookeeper\/conf\/zoo\.cfg, dataDir \/var\/lib\/zookeeper, myid file \/var\/lib\/zookeeper\/myid, service start command `systemctl start zookeeper`, .*peer port 2888, election port 3888: two ensembles on one host need their own/,
    },
    {
        name: "two ensembles on one machine reached by one sshHost, one dataDir inside the other",
        edit: (r) => {
            r.ensembles[0].source[0].sshHost = "10.0.0.9";
            r.ensembles[1].servers[0].sshHost = "10.0.0.9";
            r.ensembles[1].zookeeper = { clientPort: 2182, peerPort: 2889, electionPort: 3889, configFile: "/etc/zk2/zoo.cfg", dataDir: "/var/lib/zookeeper/shared" };
            r.ensembles[1].service = { start: "systemctl start zk2", stop: "systemctl stop zk2", restart: "systemctl restart zk2", disable: "systemctl disable zk2" };
        },
        path: "zkmigrate:ensembles[shared].servers[0].sshHost",
        reason: /^SSH host 10\.0\.0\.9 also runs a server of ensemble "kafka-main" \(zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.sshHost\), and both would use dataDir \/var\/lib\/zookeeper \/ dataDir \/var\/lib\/zookeeper\/shared: /,
    },
    {
        name: "two Kafka brokers, one name in two spellings",
        edit: (r) => ((r.ensembles[0].clients.kafka.brokers[0].host = "kafka-1.example"), (r.ensembles[0].clients.kafka.brokers[2].host = "KAFKA-1.example.")),
        path: "zkmigrate:ensembles[kafka-main].clients.kafka.brokers[2].host",
        reason: /^host KAFKA-1\.example\. is listed twice \(also clients\.kafka\.brokers\[0\]\)$/,
    },
    {
        name: "two Kafka brokers behind one sshHost",
        edit: (r) => ((r.ensembles[0].clients.kafka.brokers[0].sshHost = "jump.example"), (r.ensembles[0].clients.kafka.brokers[1].sshHost = "JUMP.example")),
        path: "zkmigrate:ensembles[kafka-main].clients.kafka.brokers[1].sshHost",
        reason: /^SSH host JUMP\.example is also the SSH host of clients\.kafka\.brokers\[0\]: two brokers on one machine would share server\.properties and the listener port$/,
    },
    {
        name: "a block & copy client host listed twice in two spellings",
        raw: () => blockCopyRaw(),
        edit: (r) => (r.ensembles[0].clients.hosts[1].host = "::ffff:192.0.2.21"),
        path: "zkmigrate:ensembles[kafka-bc].clients.hosts[1].host",
        reason: /^host ::ffff:192\.0\.2\.21 is listed twice \(also clients\.hosts\[0\]\)$/,
    },
    {
        name: "a block & copy target that shares one server with the source, spelled differently",
        raw: () => blockCopyRaw(),
        edit: (r) => (r.ensembles[0].target[0].host = "::ffff:192.0.2.1"),
        path: "zkmigrate:ensembles[kafka-bc].target[0].host",
        reason: /^host ::ffff:192\.0\.2\.1 is in both the source and the target/,
    },
];

describe("loadConfig refuses hosts, ports and per-host resources used twice, with the path and the reason", () => {
    for (const c of refusals) {
        it(c.name, () => {
            const err = refusal(edited(c.raw ? c.raw() : devRawConfig(), c.edit));
            const hit = err.issues.find((i) => i.path === c.path);
            assert.ok(hit, `no issue at ${c.path}; got ${JSON.stringify(err.issues, null, 1)}`);
            assert.match(hit.reason, c.reason);
        });
    }

    it("accepts two ensembles on one host that share nothing a server owns there", () => {
        const raw = edited(devRawConfig(), (r) => {
            r.ensembles[1].servers[0].host = "192.0.2.4";
            r.ensembles[1].zookeeper = { clientPort: 2182, peerPort: 2889, electionPort: 3889, configFile: "/etc/zk2/zoo.cfg", dataDir: "/var/lib/zk2" };
            r.ensembles[1].service = { start: "systemctl start zk2", stop: "systemctl stop zk2", restart: "systemctl restart zk2", disable: "systemctl disable zk2" };
        });
        assert.equal(loadConfig(raw).ensembles.length, 2);
    });

    it("reports every host problem of every ensemble in one pass, by ensemble name", () => {
        const err = refusal(
            edited(devRawConfig(), (r) => {
                r.ensembles[0].source[1].host = "ZK.example";
                r.ensembles[0].source[2].host = "zk.example.";
                r.ensembles[0].zookeeper = { electionPort: 2181 };
                r.ensembles[1].servers[2].sshHost = "10.0.0.1";
                r.ensembles[1].servers[1].sshHost = "10.0.0.1";
            }),
        );
        assert.deepEqual(
            err.issues.map((i) => i.path),
            ["zkmigrate:ensembles[kafka-main].zookeeper.electionPort", "zkmigrate:ensembles[kafka-main].source[2].host", "zkmigrate:ensembles[shared].servers[2].sshHost"],
        );
        assert.match(err.message, /^invalid zkmigrate configuration \(3 problems\):/);
    });
});

describe("resolvedHostIssues: a name and an address of one server, found where they resolve (preview)", () => {
    const withNames = (edit: (r: any) => void) => loadConfig(edited(devRawConfig(), edit)).ensembles;
    const fakeDns = (table: Record<string, string[]>) => async (name: string) => {
        if (!(name in table)) throw new Error(`ENOTFOUND ${name}`);
        return table[name];
    };

    it("a name that resolves to another server's address is refused, naming both paths", async () => {
        const ensembles = withNames((r) => (r.ensembles[0].target[2].host = "zk6.example"));
        const issues = await resolvedHostIssues(ensembles, 1000, fakeDns({ "zk6.example": ["192.0.2.2"] }));
        assert.deepEqual(issues, [
            {
                path: "zkmigrate:ensembles[kafka-main].target[2].host",
                reason: "host zk6.example is listed twice (also zkmigrate:ensembles[kafka-main].source[1].host) (zk6.example and 192.0.2.2 are both 192.0.2.2 to the resolver here)",
            },
        ]);
    });

    it("two names of one machine as sshHost; an IPv4-mapped answer counts as the IPv4 address", async () => {
        const ensembles = withNames((r) => ((r.ensembles[0].source[0].sshHost = "a.example"), (r.ensembles[0].source[1].sshHost = "b.example")));
        const issues = await resolvedHostIssues(ensembles, 1000, fakeDns({ "a.example": ["10.0.0.9"], "b.example": ["::ffff:10.0.0.9"] }));
        assert.equal(issues.length, 1);
        assert.equal(issues[0].path, "zkmigrate:ensembles[kafka-main].source[1].sshHost");
        assert.match(issues[0].reason, /^SSH host b\.example is also the SSH host of zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.sshHost \(b\.example and a\.example are both 10\.0\.0\.9/);
    });

    it("names that do not resolve, or not in time, are skipped (best effort, bounded)", async () => {
        const ensembles = withNames((r) => ((r.ensembles[0].target[2].host = "slow.example"), (r.ensembles[0].target[1].host = "gone.example")));
        const never = async (name: string) => (name === "slow.example" ? new Promise<string[]>(() => undefined) : fakeDns({})(name));
        const started = Date.now();
        assert.deepEqual(await resolvedHostIssues(ensembles, 200, never), []);
        assert.ok(Date.now() - started < 5000, "the lookup is bounded by its timeout");
    });

    it("with the system resolver: localhost and 127.0.0.1 are one host", async () => {
        const ensembles = withNames((r) => ((r.ensembles[0].source[0].host = "127.0.0.1"), (r.ensembles[0].source[1].host = "localhost")));
        const issues = await resolvedHostIssues(ensembles, 5000);
        assert.equal(issues.length, 1, JSON.stringify(issues));
        assert.equal(issues[0].path, "zkmigrate:ensembles[kafka-main].source[1].host");
        assert.match(issues[0].reason, /^host localhost is listed twice \(also zkmigrate:ensembles\[kafka-main\]\.source\[0\]\.host\) \(localhost and 127\.0\.0\.1 are both 127\.0\.0\.1/);
    });

    it("nothing to resolve when every host is an address", async () => {
        assert.deepEqual(await resolvedHostIssues(withNames(() => undefined), 1000, () => assert.fail("no lookup expected")), []);
    });
});
