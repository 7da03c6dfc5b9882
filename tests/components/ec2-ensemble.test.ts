// The EC2 ephemeral ensemble under Pulumi mocks (no AWS here): which resources it declares, their
// tags, the security group's rules, IMDSv2 and encrypted volumes, the per-instance user data, and
// that its outputs are servers a stack's ensemble takes as they are.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import type { Ec2EnsembleArgs, Ec2ZooKeeperEnsemble } from "../../components/ec2-ensemble";
import { loadConfig } from "../../src/config";
import type { FleetServer } from "../../src/ec2";
import { valueOf } from "./harness";
import { TEST_HOST_KEY, TEST_SSH } from "../fixtures";

interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, any>;
}

const resources: Recorded[] = [];
const calls: { token: string; inputs: Record<string, any> }[] = [];
const AMI = "ami-0123456789abcdef0";

before(async () => {
    await pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                resources.push({ type: args.type, name: args.name, inputs: args.inputs });
                const state: Record<string, any> = { ...args.inputs };
                if (args.type === "aws:ec2/instance:Instance" && args.inputs.associatePublicIpAddress) {
                    // A realistic public address per instance: 203.0.113.<last octet of the private one>.
                    state.publicIp = `203.0.113.${String(args.inputs.privateIp).split(".")[3]}`;
                }
                if (args.type === "aws:ec2/keyPair:KeyPair") state.keyName = `${args.name}-generated`;
                return { id: `${args.name}-id`, state };
            },
            call(args: pulumi.runtime.MockCallArgs) {
                calls.push({ token: args.token, inputs: args.inputs });
                if (args.token === "aws:ssm/getParameter:getParameter") return { ...args.inputs, value: AMI, type: "String" };
                return args.inputs;
            },
        },
        "zkmigrate",
        "dev",
        false,
        "organization",
    );
});

const base: Ec2EnsembleArgs = {
    owner: "platform-team@example.com",
    expiresAt: new Date(Date.now() + 48 * 3600_000).toISOString().replace(/\.\d{3}Z$/, "Z"),
    version: "3.9.3",
    vpcId: "vpc-0abc",
    subnetId: "subnet-0abc",
    subnetCidr: "10.20.1.0/24",
    adminCidrs: ["198.51.100.0/24"],
    clientCidrs: ["10.20.0.0/16"],
    keyName: "rehearsal",
};

/** Declares one ensemble and waits for its outputs; returns it with the resources it added. */
async function declare(name: string, args: Ec2EnsembleArgs) {
    const { Ec2ZooKeeperEnsemble } = await import("../../components/ec2-ensemble");
    const start = resources.length;
    const ens: Ec2ZooKeeperEnsemble = new Ec2ZooKeeperEnsemble(name, args);
    const servers = await valueOf(ens.servers);
    const expiresAt = await valueOf(ens.expiresAt);
    // Rule and instance inputs hold outputs (the group's id): let every registration finish.
    await Promise.all([...ens.instances.values()].map((i) => valueOf(i.urn)));
    await Promise.all(ens.rules.map((r) => valueOf(r.urn)));
    const mine = resources.slice(start).filter((r) => r.name.startsWith(`${name}-`) || r.name === name);
    return { ens, servers, expiresAt, mine, byName: new Map(mine.map((r) => [r.name, r])) };
}

const ofType = (rs: Recorded[], t: string) => rs.filter((r) => r.type === t);

describe("EC2 ensemble: resources", () => {
    it("declares a security group, its rules and one instance per myid, named after the ensemble", async () => {
        const { mine, ens } = await declare("rehearse", base);
        const names = mine.map((r) => `${r.type} ${r.name}`).sort();
        assert.deepEqual(
            names.filter((n) => !n.includes("SecurityGroupIngressRule") && !n.includes("SecurityGroupEgressRule")),
            [
                "aws:ec2/instance:Instance rehearse-server-1",
                "aws:ec2/instance:Instance rehearse-server-2",
                "aws:ec2/instance:Instance rehearse-server-3",
                "aws:ec2/securityGroup:SecurityGroup rehearse-sg",
                "zkmigrate:ec2:Ensemble rehearse",
            ],
        );
        // 3 ZooKeeper ports x (self + 1 client CIDR) x (in + out) + SSH + HTTPS/HTTP out.
        assert.equal(ofType(mine, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").length, 7);
        assert.equal(ofType(mine, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule").length, 8);
        assert.equal(ofType(mine, "aws:ec2/keyPair:KeyPair").length, 0, "keyName given: no key pair created");
        assert.deepEqual(ens.addresses, ["10.20.1.10", "10.20.1.11", "10.20.1.12"]);
        assert.equal(ens.connectString, "10.20.1.10:2181,10.20.1.11:2181,10.20.1.12:2181");
    });

    it("admits 2181/2888/3888 only from the group itself and the client CIDR, 22 only from the admin CIDR", async () => {
        const { mine } = await declare("rules", base);
        const rules = mine.filter((r) => r.type.startsWith("aws:vpc/securityGroup"));
        const sgId = "rules-sg-id";
        const describeRule = (r: Recorded) =>
            `${r.type.includes("Ingress") ? "in" : "out"} ${r.inputs.ipProtocol} ${r.inputs.fromPort}-${r.inputs.toPort} ` +
            (r.inputs.referencedSecurityGroupId === sgId ? "self" : (r.inputs.cidrIpv4 ?? r.inputs.cidrIpv6));
        assert.deepEqual(rules.map(describeRule).sort(), [
            "in tcp 2181-2181 10.20.0.0/16",
            "in tcp 2181-2181 self",
            "in tcp 22-22 198.51.100.0/24",
            "in tcp 2888-2888 10.20.0.0/16",
            "in tcp 2888-2888 self",
            "in tcp 3888-3888 10.20.0.0/16",
            "in tcp 3888-3888 self",
            "out tcp 2181-2181 10.20.0.0/16",
            "out tcp 2181-2181 self",
            "out tcp 2888-2888 10.20.0.0/16",
            "out tcp 2888-2888 self",
            "out tcp 3888-3888 10.20.0.0/16",
            "out tcp 3888-3888 self",
            "out tcp 443-443 0.0.0.0/0",
            "out tcp 80-80 0.0.0.0/0",
        ]);
        for (const r of rules) {
            assert.equal(r.inputs.securityGroupId, sgId, `${r.name} belongs to the ensemble's group`);
            if (r.type.includes("Ingress")) {
                assert.ok(!["0.0.0.0/0", "::/0"].includes(r.inputs.cidrIpv4 ?? r.inputs.cidrIpv6), `${r.name} is not open to the Internet`);
            }
        }
        const sg = mine.find((r) => r.type === "aws:ec2/securityGroup:SecurityGroup")!;
        assert.equal(sg.inputs.vpcId, "vpc-0abc");
        assert.equal(sg.inputs.ingress, undefined, "no inline rules (they would fight the rule resources)");
    });

    it("instances: fixed private address, IMDSv2 required, encrypted root volume, owner and expiry tags", async () => {
        const { mine } = await declare("inst", { ...base, ids: [4, 5, 6] });
        const instances = ofType(mine, "aws:ec2/instance:Instance");
        assert.deepEqual(instances.map((i) => i.name), ["inst-server-4", "inst-server-5", "inst-server-6"]);
        instances.forEach((i, n) => {
            const id = 4 + n;
            assert.equal(i.inputs.privateIp, `10.20.1.${10 + n}`);
            assert.equal(i.inputs.subnetId, "subnet-0abc");
            assert.deepEqual(i.inputs.vpcSecurityGroupIds, ["inst-sg-id"]);
            assert.equal(i.inputs.ami, AMI, "the image from the SSM parameter");
            assert.equal(i.inputs.instanceType, "t3.small");
            assert.equal(i.inputs.keyName, "rehearsal");
            assert.equal(i.inputs.associatePublicIpAddress, false);
            assert.deepEqual(i.inputs.metadataOptions, { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 });
            assert.deepEqual(i.inputs.rootBlockDevice, { encrypted: true, volumeType: "gp3", volumeSize: 16, deleteOnTermination: true });
            assert.equal(i.inputs.userDataReplaceOnChange, true);
            const tags = {
                Owner: "platform-team@example.com",
                ExpiresAt: base.expiresAt,
                Name: `inst-${id}`,
                "zkmigrate:ensemble": "inst",
                "zkmigrate:purpose": "ephemeral-test-ensemble",
                "zkmigrate:myid": String(id),
                "zkmigrate:zookeeper-version": "3.9.3",
            };
            assert.deepEqual(i.inputs.tags, tags);
            assert.deepEqual(i.inputs.volumeTags, tags);
        });
        const ssm = calls.filter((c) => c.token === "aws:ssm/getParameter:getParameter").map((c) => c.inputs.name);
        assert.ok(ssm.includes("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"), ssm.join(", "));
        for (const r of mine.filter((x) => x.inputs.tags)) {
            assert.equal(r.inputs.tags.Owner, "platform-team@example.com", `${r.name} carries the Owner tag`);
            assert.equal(r.inputs.tags.ExpiresAt, base.expiresAt, `${r.name} carries the ExpiresAt tag`);
        }
    });

    it("each instance's user data carries its own myid and the whole membership by private address", async () => {
        const { mine, ens } = await declare("ud", { ...base, ids: [4, 5, 6], version: "3.8.4" });
        for (const i of ofType(mine, "aws:ec2/instance:Instance")) {
            const id = Number(i.name.split("-").pop());
            const ud: string = i.inputs.userData;
            assert.equal(ud, ens.userData.get(id), "the rendered user data is what the instance gets");
            assert.match(ud, /^#!\/usr\/bin\/env bash\n/);
            assert.ok(ud.includes(`readonly MYID='${id}'\n`), `${i.name}: MYID=${id}`);
            assert.ok(ud.includes("readonly VERSION='3.8.4'\n"));
            for (const [n, ip] of [[4, "10.20.1.10"], [5, "10.20.1.11"], [6, "10.20.1.12"]]) {
                assert.ok(ud.includes(`server.${n}=${ip}:2888:3888\n`), `${i.name} lists server.${n}`);
            }
            assert.ok(ud.includes("https://archive.apache.org/dist/zookeeper/zookeeper-3.8.4/apache-zookeeper-3.8.4-bin.tar.gz"));
        }
        const [a, b] = [ens.userData.get(4)!, ens.userData.get(5)!];
        const differing = a.split("\n").filter((l, n) => l !== b.split("\n")[n]);
        assert.deepEqual(differing, ["# zkmigrate: EC2 user data: ZooKeeper 3.8.4, myid 4 of the ephemeral ensemble ud", "readonly MYID='4'", "Description=Apache ZooKeeper 3.8.4 (myid 4 of the zkmigrate ephemeral ensemble ud)"]);
    });

    it("an SSH public key becomes a key pair, and public addresses become the servers' sshHost", async () => {
        const { mine, servers, ens } = await declare("pub", { ...base, keyName: undefined, sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockKeyMockKeyMockKeyMockKeyMockKey ops", publicIp: true, amiFamily: "debian-12", ami: "ami-0fedcba9876543210" });
        const kp = ofType(mine, "aws:ec2/keyPair:KeyPair");
        assert.deepEqual(kp.map((k) => k.name), ["pub-key"]);
        assert.match(kp[0].inputs.publicKey, /^ssh-ed25519 /);
        for (const i of ofType(mine, "aws:ec2/instance:Instance")) {
            assert.equal(i.inputs.keyName, "pub-key-generated");
            assert.equal(i.inputs.associatePublicIpAddress, true);
            assert.equal(i.inputs.ami, "ami-0fedcba9876543210", "an explicit AMI id is used as it is");
        }
        assert.deepEqual(servers, [
            { id: 1, host: "10.20.1.10", sshHost: "203.0.113.10" },
            { id: 2, host: "10.20.1.11", sshHost: "203.0.113.11" },
            { id: 3, host: "10.20.1.12", sshHost: "203.0.113.12" },
        ]);
        assert.equal(ens.sshUser, "admin", "Debian's login user");
    });

    it("ttlHours: the expiry is the update's time plus the TTL, as an ISO tag", async () => {
        const before = Date.now();
        const { expiresAt, mine } = await declare("ttl", { ...base, expiresAt: undefined, ttlHours: 6 });
        const t = Date.parse(expiresAt);
        assert.match(expiresAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
        assert.ok(t >= Math.floor(before / 1000) * 1000 + 6 * 3600_000 && t <= Date.now() + 6 * 3600_000, expiresAt);
        assert.equal(ofType(mine, "aws:ec2/instance:Instance")[0].inputs.tags.ExpiresAt, expiresAt);
    });

    it("bad arguments: refused with each argument named, before anything is declared", async () => {
        const { Ec2ZooKeeperEnsemble } = await import("../../components/ec2-ensemble");
        const start = resources.length;
        assert.throws(
            () => new Ec2ZooKeeperEnsemble("bad", { ...base, adminCidrs: ["0.0.0.0/0"], clientCidrs: ["::/0"], owner: "" }),
            (e: Error) => {
                assert.match(e.message, /^invalid EC2 ensemble "bad" \(3 problems\):/);
                assert.match(e.message, /args\.owner: required/);
                assert.match(e.message, /args\.adminCidrs\[0\]: 0\.0\.0\.0\/0 admits the whole Internet/);
                assert.match(e.message, /args\.clientCidrs\[0\]: ::\/0 admits the whole Internet/);
                return true;
            },
        );
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(resources.length, start, "nothing registered, not even the component");
    });
});

describe("EC2 ensemble: outputs in the fleet config's shape", () => {
    it("its servers are a kubernetes ensemble's servers and a mitosis target as they are", async () => {
        const { servers, ens } = await declare("shape", { ...base, ids: [4, 5, 6] });
        const other: FleetServer[] = [1, 2, 3].map((id) => ({ id, host: `192.0.2.${id}` }));
        // One stack config per use (a host belongs to one ensemble of a fleet).
        const config = loadConfig({
            ...TEST_SSH,
            sshUser: ens.sshUser,
            ensembles: [{ name: "on-ec2", procedure: "kubernetes", phase: "hosts", servers, ...ens.hostConfig }],
        });
        // As they are, each with the host key the test's known_hosts pins for it.
        const pinned = servers.map((s) => ({ ...s, hostKey: TEST_HOST_KEY }));
        assert.deepEqual(config.ensembles[0].procedure === "kubernetes" && config.ensembles[0].servers, pinned);
        const mitosis = loadConfig({
            ...TEST_SSH,
            sshUser: ens.sshUser,
            ensembles: [{ name: "to-ec2", procedure: "mitosis", phase: "separate", source: other, target: servers, targetEmpty: true, ...ens.hostConfig }],
        });
        assert.deepEqual(mitosis.ensembles[0].procedure === "mitosis" && mitosis.ensembles[0].target, pinned);
        assert.deepEqual(ens.hostConfig, {}, "default paths: no per-ensemble overrides needed");
        // The paths zkmigrate's host scripts use are where the user data puts things.
        const host = config.ensembles[0].host;
        assert.equal(host.paths.configFile, ens.ensemble.paths.configFile);
        assert.equal(host.paths.myidFile, ens.ensemble.paths.myidFile);
        assert.equal(host.service.restart, "systemctl restart zookeeper");
    });

    it("other paths and ports come with the per-ensemble keys that point zkmigrate at them", async () => {
        const { servers, ens } = await declare("paths", {
            ...base,
            ids: [1],
            ports: { client: 2182 },
            paths: { configFile: "/srv/zk/zoo.cfg", dataDir: "/srv/zk/data", unitFile: "/etc/systemd/system/zk-rehearsal.service" },
        });
        assert.deepEqual(ens.hostConfig, {
            zookeeper: { configFile: "/srv/zk/zoo.cfg", dataDir: "/srv/zk/data", clientPort: 2182 },
            service: {
                start: "systemctl start zk-rehearsal",
                stop: "systemctl stop zk-rehearsal",
                restart: "systemctl restart zk-rehearsal",
                status: "systemctl status zk-rehearsal --no-pager",
                disable: "systemctl disable zk-rehearsal",
            },
        });
        const config = loadConfig({ ...TEST_SSH, ensembles: [{ name: "one", procedure: "kubernetes", phase: "hosts", servers, allowSingleServer: true, ...ens.hostConfig }] });
        const host = config.ensembles[0].host;
        assert.equal(host.paths.configFile, "/srv/zk/zoo.cfg");
        assert.equal(host.paths.myidFile, "/srv/zk/data/myid");
        assert.equal(host.clientPort, 2182);
        assert.equal(host.service.restart, "systemctl restart zk-rehearsal");
    });
});
