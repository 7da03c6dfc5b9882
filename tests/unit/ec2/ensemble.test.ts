// The EC2 ensemble's pure parts, table-driven: CIDR checks, input validation (each refusal names
// its argument), fixed addresses, security group rules, tags, zoo.cfg and the fleet-shaped output.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
    checkRuleCidr,
    connectStringOf,
    contains,
    fleetServers,
    instanceTags,
    overlaps,
    parseCidr,
    renderZooCfg,
    resolveEc2Ensemble,
    type Ec2EnsembleInput,
} from "../../../src/ec2";
import { BLOCK_BEGIN, BLOCK_END } from "../../../src/scripts";

const NOW = new Date("2026-11-23T10:00:00Z");

const base: Ec2EnsembleInput = {
    owner: "platform-team@example.com",
    expiresAt: "2026-11-25T18:00:00Z",
    version: "3.9.3",
    vpcId: "vpc-0abc",
    subnetId: "subnet-0abc",
    subnetCidr: "10.20.1.0/24",
    adminCidrs: ["198.51.100.0/24"],
    keyName: "rehearsal",
};

describe("CIDR checks", () => {
    const refused: [string, RegExp][] = [
        ["0.0.0.0/0", /0\.0\.0\.0\/0 admits the whole Internet/],
        ["::/0", /::\/0 admits the whole Internet/],
        ["0.0.0.0/1", /broader than \/8/],
        ["128.0.0.0/1", /broader than \/8/],
        ["2000::/3", /broader than \/16/],
        ["10.0.0.1", /is an address, not a CIDR: write 10\.0\.0\.1\/32/],
        ["2001:db8::1", /write 2001:db8::1\/128/],
        ["10.0.0.1/24", /host bits set: the block is 10\.0\.0\.0\/24/],
        ["2001:db8::1/64", /host bits set: the block is 2001:db8::\/64/],
        ["10.0.0.0/33", /prefix length 33 is more than 32/],
        ["10.0.0.0/8 ", /not a CIDR block/],
        ["example.com/24", /not an IPv4 or IPv6 address/],
        ["", /not a CIDR block/],
    ];
    for (const [cidr, reason] of refused) {
        it(`refuses ${JSON.stringify(cidr)}`, () => assert.throws(() => checkRuleCidr(cidr), reason));
    }
    for (const cidr of ["10.0.0.0/8", "203.0.113.7/32", "2001:db8::/32", "2001:db8:0:1::/64", "::ffff:192.0.2.0/120"]) {
        it(`admits ${cidr}`, () => assert.equal(checkRuleCidr(cidr).text, cidr));
    }
    it("contains and overlaps", () => {
        const c = parseCidr("10.20.1.0/24");
        assert.ok(contains(c, "10.20.1.255"));
        assert.ok(!contains(c, "10.20.2.0"));
        assert.ok(!contains(c, "2001:db8::1"));
        assert.ok(contains(parseCidr("2001:db8::/32"), "2001:db8:ffff::1"));
        assert.ok(overlaps(parseCidr("10.0.0.0/8"), c));
        assert.ok(!overlaps(parseCidr("10.21.0.0/16"), c));
    });
});

describe("inputs: defaults", () => {
    const e = resolveEc2Ensemble("rehearse", base, NOW);
    it("three servers 1..3 at .10-.12 of the subnet, the fleet's default paths, Amazon Linux 2023", () => {
        assert.deepEqual(e.servers, [
            { id: 1, privateIp: "10.20.1.10" },
            { id: 2, privateIp: "10.20.1.11" },
            { id: 3, privateIp: "10.20.1.12" },
        ]);
        assert.deepEqual(e.paths, {
            configFile: "/etc/zookeeper/conf/zoo.cfg",
            dataDir: "/var/lib/zookeeper",
            myidFile: "/var/lib/zookeeper/myid",
            installDir: "/opt/zookeeper",
            logDir: "/var/log/zookeeper",
            unitFile: "/etc/systemd/system/zookeeper.service",
        });
        assert.deepEqual(e.ami, { ssmParameter: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64" });
        assert.equal(e.sshUser, "ec2-user");
        assert.equal(e.serviceName, "zookeeper");
        assert.equal(e.expiresAt, "2026-11-25T18:00:00Z");
        assert.equal(connectStringOf(e), "10.20.1.10:2181,10.20.1.11:2181,10.20.1.12:2181");
    });
    it("ttlHours: the expiry is now + ttl, seconds precision", () => {
        const t = resolveEc2Ensemble("ttl", { ...base, expiresAt: undefined, ttlHours: 8 }, new Date("2026-11-23T10:00:00.789Z"));
        assert.equal(t.expiresAt, "2026-11-23T18:00:00Z");
        assert.equal(t.expiryFromTtl, true);
    });
    it("an expiry with an offset is written in UTC", () => {
        assert.equal(resolveEc2Ensemble("tz", { ...base, expiresAt: "2026-11-24T09:30:00+02:00" }, NOW).expiresAt, "2026-11-24T07:30:00Z");
    });
    it("tags: owner, expiry, ensemble, purpose; per instance its name, myid and version; extra tags kept", () => {
        const t = resolveEc2Ensemble("tags", { ...base, tags: { CostCenter: "zk-42" } }, NOW);
        assert.deepEqual(instanceTags(t, 2), {
            CostCenter: "zk-42",
            Owner: "platform-team@example.com",
            ExpiresAt: "2026-11-25T18:00:00Z",
            "zkmigrate:ensemble": "tags",
            "zkmigrate:purpose": "ephemeral-test-ensemble",
            Name: "tags-2",
            "zkmigrate:myid": "2",
            "zkmigrate:zookeeper-version": "3.9.3",
        });
    });
    it("rules: ZooKeeper ports from and to the group itself and the client CIDRs; SSH in from the admin CIDRs; HTTP(S) out", () => {
        const r = resolveEc2Ensemble("rules", { ...base, clientCidrs: ["10.20.0.0/16", "2001:db8::/48"] }, NOW).rules;
        const text = r.map((x) => `${x.name} ${x.direction} ${x.port} ${x.peer.kind === "self" ? "self" : `${x.peer.cidr} v${x.peer.family}`}`);
        assert.deepEqual(text, [
            "in-2181-self ingress 2181 self",
            "in-2181-client-0 ingress 2181 10.20.0.0/16 v4",
            "in-2181-client-1 ingress 2181 2001:db8::/48 v6",
            "in-2888-self ingress 2888 self",
            "in-2888-client-0 ingress 2888 10.20.0.0/16 v4",
            "in-2888-client-1 ingress 2888 2001:db8::/48 v6",
            "in-3888-self ingress 3888 self",
            "in-3888-client-0 ingress 3888 10.20.0.0/16 v4",
            "in-3888-client-1 ingress 3888 2001:db8::/48 v6",
            "in-22-admin-0 ingress 22 198.51.100.0/24 v4",
            "out-2181-self egress 2181 self",
            "out-2181-client-0 egress 2181 10.20.0.0/16 v4",
            "out-2181-client-1 egress 2181 2001:db8::/48 v6",
            "out-2888-self egress 2888 self",
            "out-2888-client-0 egress 2888 10.20.0.0/16 v4",
            "out-2888-client-1 egress 2888 2001:db8::/48 v6",
            "out-3888-self egress 3888 self",
            "out-3888-client-0 egress 3888 10.20.0.0/16 v4",
            "out-3888-client-1 egress 3888 2001:db8::/48 v6",
            "out-443-any egress 443 0.0.0.0/0 v4",
            "out-80-any egress 80 0.0.0.0/0 v4",
        ]);
    });
    it("fleet servers: { id, host } by private address; sshHost where a public address is known", () => {
        const e5 = resolveEc2Ensemble("five", { ...base, ids: [11, 12, 13, 14, 15], firstHostIndex: 100 }, NOW);
        assert.deepEqual(fleetServers(e5, { 12: "203.0.113.12" }), [
            { id: 11, host: "10.20.1.100" },
            { id: 12, host: "10.20.1.101", sshHost: "203.0.113.12" },
            { id: 13, host: "10.20.1.102" },
            { id: 14, host: "10.20.1.103" },
            { id: 15, host: "10.20.1.104" },
        ]);
    });
    it("zoo.cfg: settings, then the membership block at the end exactly as zkmigrate's config step writes it", () => {
        const cfg = renderZooCfg(resolveEc2Ensemble("cfg", { ...base, ids: [4, 5, 6], settings: { tickTime: 3000, "autopurge.purgeInterval": 24, maxClientCnxns: 100 } }, NOW));
        const lines = cfg.split("\n");
        assert.deepEqual(lines.slice(lines.indexOf(BLOCK_BEGIN)), [
            BLOCK_BEGIN,
            "server.4=10.20.1.10:2888:3888",
            "server.5=10.20.1.11:2888:3888",
            "server.6=10.20.1.12:2888:3888",
            "quorumListenOnAllIPs=false",
            BLOCK_END,
            "",
        ]);
        for (const l of ["tickTime=3000", "dataDir=/var/lib/zookeeper", "clientPort=2181", "4lw.commands.whitelist=srvr,mntr,conf,ruok", "admin.enableServer=false", "reconfigEnabled=false", "autopurge.purgeInterval=24", "maxClientCnxns=100"]) {
            assert.ok(lines.includes(l), l);
        }
        assert.equal(lines.filter((l) => l.startsWith("tickTime=")).length, 1, "a setting replaces its default in place");
    });
});

describe("inputs: each refusal names its argument", () => {
    const cases: [string, Partial<Record<keyof Ec2EnsembleInput, unknown>>, string, RegExp][] = [
        ["owner missing", { owner: undefined }, "args.owner", /required: who answers for these instances/],
        ["owner blank", { owner: "  " }, "args.owner", /required/],
        ["owner not a tag value", { owner: "a\nb" }, "args.owner", /not a tag value/],
        ["no expiry", { expiresAt: undefined }, "args.expiresAt", /required \(or args\.ttlHours\)/],
        ["both expiries", { ttlHours: 4 }, "args.expiresAt", /give expiresAt or ttlHours, not both/],
        ["expiry passed", { expiresAt: "2026-11-23T09:59:59Z" }, "args.expiresAt", /2026-11-23T09:59:59Z has passed: extend it, or destroy the ensemble/],
        ["expiry too far", { expiresAt: "2027-01-01T00:00:00Z" }, "args.expiresAt", /more than 30 days ahead/],
        ["expiry not ISO", { expiresAt: "next tuesday" }, "args.expiresAt", /not an ISO 8601 date/],
        ["expiry without zone", { expiresAt: "2026-11-24T10:00" }, "args.expiresAt", /not an ISO 8601 date or timestamp with a zone/],
        ["ttl zero", { expiresAt: undefined, ttlHours: 0 }, "args.ttlHours", /1\.\.720/],
        ["ttl too long", { expiresAt: undefined, ttlHours: 721 }, "args.ttlHours", /1\.\.720/],
        ["version line only", { version: "3.9" }, "args.version", /not a ZooKeeper release x\.y\.z/],
        ["version too old", { version: "3.4.14" }, "args.version", /older than 3\.5\.5/],
        ["even ensemble", { ids: [1, 2] }, "args.ids", /an even ensemble .* use an odd count/],
        ["duplicate myid", { ids: [1, 2, 1] }, "args.ids[2]", /myid 1 is listed twice/],
        ["myid out of range", { ids: [0, 1, 2] }, "args.ids[0]", /1\.\.255/],
        ["no vpc", { vpcId: "" }, "args.vpcId", /required/],
        ["no subnet", { subnetId: undefined }, "args.subnetId", /required/],
        ["subnet CIDR bad", { subnetCidr: "10.20.1.0" }, "args.subnetCidr", /is an address, not a CIDR/],
        ["subnet CIDR IPv6", { subnetCidr: "2001:db8::/64" }, "args.subnetCidr", /IPv4/],
        ["subnet too small", { subnetCidr: "10.20.1.0/29" }, "args.subnetCidr", /AWS subnets are \/16 to \/28/],
        ["address outside the subnet", { privateIps: ["10.20.1.10", "10.20.2.11", "10.20.1.12"] }, "args.privateIps[1]", /10\.20\.2\.11 is not in the subnet 10\.20\.1\.0\/24/],
        ["address reserved by AWS", { privateIps: ["10.20.1.1", "10.20.1.11", "10.20.1.12"] }, "args.privateIps[0]", /reserved by AWS/],
        ["broadcast address", { privateIps: ["10.20.1.255", "10.20.1.11", "10.20.1.12"] }, "args.privateIps[0]", /reserved by AWS/],
        ["address twice", { privateIps: ["10.20.1.10", "10.20.1.10", "10.20.1.12"] }, "args.privateIps[1]", /listed twice/],
        ["addresses miscounted", { privateIps: ["10.20.1.10"] }, "args.privateIps", /one address per myid: 3 expected, got 1/],
        ["first index reserved", { firstHostIndex: 2 }, "args.firstHostIndex", /at least 4/],
        ["first index overflows", { firstHostIndex: 253 }, "args.firstHostIndex", /do not fit in 10\.20\.1\.0\/24/],
        ["SSH from the Internet", { adminCidrs: ["0.0.0.0/0"] }, "args.adminCidrs[0]", /admits the whole Internet/],
        ["SSH from all of IPv6", { adminCidrs: ["198.51.100.0/24", "::/0"] }, "args.adminCidrs[1]", /::\/0 admits the whole Internet/],
        ["no admin CIDR", { adminCidrs: [] }, "args.adminCidrs", /required: a non-empty list/],
        ["clients from the Internet", { clientCidrs: ["0.0.0.0/0"] }, "args.clientCidrs[0]", /admits the whole Internet/],
        ["client CIDR twice", { clientCidrs: ["10.0.0.0/8", "10.0.0.0/8"] }, "args.clientCidrs[1]", /listed twice/],
        ["SSH port for ZooKeeper", { ports: { client: 22 } }, "args.ports.client", /22 is SSH/],
        ["ports collide", { ports: { peer: 2181 } }, "args.ports", /must differ/],
        ["unknown family", { amiFamily: "ubuntu" }, "args.amiFamily", /one of amazon-linux-2023, debian-12/],
        ["bad architecture", { architecture: "i386" }, "args.architecture", /x86_64 or arm64/],
        ["bad AMI id", { ami: "image-1" }, "args.ami", /not an AMI id/],
        ["bad instance type", { instanceType: "large" }, "args.instanceType", /not an instance type/],
        ["tiny volume", { rootVolumeGb: 4 }, "args.rootVolumeGb", /8\.\.1024/],
        ["no key", { keyName: undefined }, "args.keyName", /required \(or args\.sshPublicKey\)/],
        ["two keys", { sshPublicKey: "ssh-ed25519 AAAA" }, "args.keyName", /not both/],
        ["bad public key", { keyName: undefined, sshPublicKey: "-----BEGIN OPENSSH PRIVATE KEY-----" }, "args.sshPublicKey", /not an OpenSSH public key/],
        ["tiny heap", { heapMb: 16 }, "args.heapMb", /64\.\.65536/],
        ["reserved setting", { settings: { dataDir: "/tmp" } }, "args.settings.dataDir", /comes from args\.paths\.dataDir/],
        ["membership setting", { settings: { "server.9": "x:1:2" } }, "args.settings.server.9", /membership comes from args\.ids/],
        ["whitelist without srvr", { settings: { "4lw.commands.whitelist": "ruok" } }, "args.settings.4lw.commands.whitelist", /must list srvr/],
        ["whitelist *", { settings: { "4lw.commands.whitelist": "*" } }, "args.settings.4lw.commands.whitelist", /never \*/],
        ["multi-line setting", { settings: { tickTime: "1\n2" } }, "args.settings.tickTime", /one line/],
        ["download not a URL", { downloadBase: "ftp://mirror" }, "args.downloadBase", /not an http\(s\) URL/],
        ["bad sha512", { sha512: "abc" }, "args.sha512", /128 hex digits/],
        ["short ready timeout", { readyTimeoutSeconds: 1 }, "args.readyTimeoutSeconds", /10\.\.3600/],
        ["relative path", { paths: { dataDir: "var/lib/zk" } }, "args.paths.dataDir", /not an absolute path/],
        ["path with a space", { paths: { configFile: "/etc/zoo keeper/zoo.cfg" } }, "args.paths.configFile", /not an absolute path/],
        ["path with ..", { paths: { installDir: "/opt/../etc" } }, "args.paths.installDir", /not an absolute path/],
        ["unknown path", { paths: { homeDir: "/home/zk" } as never }, "args.paths.homeDir", /unknown path/],
        ["unit not a service", { paths: { unitFile: "/etc/systemd/system/zk.timer" } }, "args.paths.unitFile", /must end in <name>\.service/],
        ["tag set by the component", { tags: { Owner: "someone" } }, "args.tags.Owner", /set by the component/],
        ["aws: tag", { tags: { "aws:foo": "x" } }, "args.tags.aws:foo", /reserved by AWS/],
    ];
    for (const [label, change, arg, reason] of cases) {
        it(`${label}: ${arg}`, () => {
            assert.throws(
                () => resolveEc2Ensemble("rehearse", { ...base, ...change } as Ec2EnsembleInput, NOW),
                (e: Error & { issues?: { arg: string; reason: string }[] }) => {
                    assert.equal(e.name, "Ec2EnsembleError");
                    const issue = e.issues?.find((i) => i.arg === arg);
                    assert.ok(issue, `no issue for ${arg} in:\n${e.message}`);
                    assert.match(issue.reason, reason);
                    assert.ok(e.message.includes(`  - ${arg}: ${issue.reason}`), e.message);
                    return true;
                },
            );
        });
    }
    it("a bad component name is refused: it names instances and tags", () => {
        assert.throws(() => resolveEc2Ensemble("Rehearse_1", base, NOW), /- name: "Rehearse_1" is not a DNS label/);
    });
    it("every problem at once", () => {
        assert.throws(
            () => resolveEc2Ensemble("x", { ...base, owner: "", adminCidrs: ["0.0.0.0/0"], version: "3" }, NOW),
            (e: Error) => {
                assert.equal(e.message.split("\n")[0], 'invalid EC2 ensemble "x" (3 problems):');
                assert.deepEqual(
                    e.message.split("\n").slice(1).map((l) => l.split(":")[0].trim()),
                    ["- args.owner", "- args.version", "- args.adminCidrs[0]"],
                );
                return true;
            },
        );
    });
});
