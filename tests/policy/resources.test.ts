// Resource policies: for each, the happy path (the objects the program renders, or a minimal
// compliant resource), then one field changed per case, with the exact violation message.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
    ephemeralEnsembleInstances,
    remoteCommandKeySecret,
    zookeeperPortsNotPublic,
    zookeeperServicePorts,
    zookeeperSettingsSafe,
    zookeeperStatefulSetPods,
    type ResourceValidationPolicy,
} from "../../policy/policies";
import { makeConfigMap, makeService, makeStatefulSet } from "../../src/kubernetes";
import { desiredState } from "../../src/model";
import { asRemoteCommand, renderRestart } from "../../src/scripts";
import { devFleet, TEST_PRIVATE_KEY } from "../fixtures";
import { resourceArgs, runResourcePolicy, UNKNOWN_BOOLEAN, UNKNOWN_OBJECT, UNKNOWN_STRING, type ResourceArgsOptions } from "./harness";

/** The kubernetes ensemble of Pulumi.dev.yaml with server 11 cut over: its rendered objects. */
function shared() {
    const config = devFleet({ shared: "pods" }, [11]);
    const e = config.ensembles.find((x) => x.name === "shared")!;
    const k = desiredState(e).kubernetes!;
    return { k, service: makeService(k, k.servers[1]), statefulSet: makeStatefulSet(k), configMap: makeConfigMap(k) };
}

const clone = <T>(v: T): T => structuredClone(v);

async function violations(policy: ResourceValidationPolicy, type: string, props: unknown, o: ResourceArgsOptions = {}): Promise<string[]> {
    return runResourcePolicy(policy, resourceArgs(type, props as Record<string, unknown>, o));
}

describe("zookeeper-service-ports", () => {
    const policy = zookeeperServicePorts();
    const type = "kubernetes:core/v1:Service";

    it("passes the per-server Service the program renders", async () => {
        assert.deepEqual(await violations(policy, type, shared().service), []);
    });
    it("names a missing port", async () => {
        const s = clone(shared().service) as any;
        s.spec.ports = s.spec.ports.filter((p: any) => p.port !== 2888);
        assert.deepEqual(await violations(policy, type, s), ['ZooKeeper Service "zk-shared-12" does not expose port 2888 (peer)']);
    });
    it("names a port without its name", async () => {
        const s = clone(shared().service) as any;
        delete s.spec.ports[2].name;
        assert.deepEqual(await violations(policy, type, s), ['ZooKeeper Service "zk-shared-12" exposes port 3888 as an unnamed port: name it "leader-election"']);
    });
    it("names a port with the wrong name", async () => {
        const s = clone(shared().service) as any;
        s.spec.ports[0].name = "zk";
        assert.deepEqual(await violations(policy, type, s), ['ZooKeeper Service "zk-shared-12" exposes port 2181 as "zk": name it "client"']);
    });
    it("takes other ports from its config", async () => {
        assert.deepEqual(await violations(policy, type, shared().service, { config: { clientPort: 12181 } }), ['ZooKeeper Service "zk-shared-12" does not expose port 12181 (client)']);
    });
    it("ignores Services that are not ZooKeeper's", async () => {
        const s = clone(shared().service) as any;
        s.metadata.labels = { app: "kafka" };
        s.spec.ports = [];
        assert.deepEqual(await violations(policy, type, s), []);
    });
    it("skips ports unknown at preview", async () => {
        const s = clone(shared().service) as any;
        s.spec.ports = UNKNOWN_OBJECT;
        assert.deepEqual(await violations(policy, type, s), []);
    });
});

describe("zookeeper-statefulset-pods", () => {
    const policy = zookeeperStatefulSetPods();
    const type = "kubernetes:apps/v1:StatefulSet";

    it("passes the StatefulSet the program renders", async () => {
        assert.deepEqual(await violations(policy, type, shared().statefulSet), []);
    });
    it("requires a readiness probe", async () => {
        const s = clone(shared().statefulSet) as any;
        delete s.spec.template.spec.containers[0].readinessProbe;
        assert.deepEqual(await violations(policy, type, s), [
            'ZooKeeper StatefulSet "zk-shared": container "zookeeper" has no readiness probe: a pod must count as ready only once it serves (srvr reports a Mode)',
        ]);
    });
    it("requires anti-affinity", async () => {
        const s = clone(shared().statefulSet) as any;
        delete s.spec.template.spec.affinity;
        assert.deepEqual(await violations(policy, type, s), [
            'ZooKeeper StatefulSet "zk-shared" has no required pod anti-affinity on kubernetes.io/hostname: two servers on one node would be lost together',
        ]);
    });
    it("requires anti-affinity on the configured topology key", async () => {
        assert.deepEqual(await violations(policy, type, shared().statefulSet, { config: { topologyKey: "topology.kubernetes.io/zone" } }), [
            'ZooKeeper StatefulSet "zk-shared" has no required pod anti-affinity on topology.kubernetes.io/zone: two servers on one node would be lost together',
        ]);
    });
    it("requires volume claims", async () => {
        const s = clone(shared().statefulSet) as any;
        s.spec.volumeClaimTemplates = [];
        assert.deepEqual(await violations(policy, type, s), [
            'ZooKeeper StatefulSet "zk-shared" has no volume claim templates: a pod\'s data and myid would not outlive the pod',
        ]);
    });
    it("skips values unknown at preview", async () => {
        const s = clone(shared().statefulSet) as any;
        s.spec.volumeClaimTemplates = UNKNOWN_OBJECT;
        s.spec.template.spec.affinity = UNKNOWN_OBJECT;
        assert.deepEqual(await violations(policy, type, s), []);
    });
});

describe("zookeeper-ports-not-public", () => {
    const policy = zookeeperPortsNotPublic();
    const sg = (ingress: unknown[]) => ({ vpcId: "vpc-1", ingress });
    const fromVpc = { protocol: "tcp", fromPort: 2181, toPort: 2181, cidrBlocks: ["10.0.0.0/16"] };

    it("passes rules limited to known networks", async () => {
        assert.deepEqual(await violations(policy, "aws:ec2/securityGroup:SecurityGroup", sg([fromVpc, { protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] }])), []);
    });
    it("refuses ZooKeeper's client port open to the world", async () => {
        assert.deepEqual(await violations(policy, "aws:ec2/securityGroup:SecurityGroup", sg([fromVpc, { ...fromVpc, cidrBlocks: ["0.0.0.0/0"] }])), [
            "ingress[1] opens 2181 (ZooKeeper client) to 0.0.0.0/0: allow known networks or security groups only",
        ]);
    });
    it("refuses a port range that covers the quorum ports, over IPv6", async () => {
        assert.deepEqual(await violations(policy, "aws:ec2/securityGroup:SecurityGroup", sg([{ protocol: "tcp", fromPort: 2000, toPort: 4000, ipv6CidrBlocks: ["::/0"] }])), [
            "ingress[0] opens 2181 (ZooKeeper client), 2888 (ZooKeeper peer), 3888 (ZooKeeper election) to ::/0: allow known networks or security groups only",
        ]);
    });
    it("refuses every protocol open to the world", async () => {
        assert.deepEqual(await violations(policy, "aws:ec2/securityGroup:SecurityGroup", sg([{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }])), [
            "ingress[0] opens 2181 (ZooKeeper client), 2888 (ZooKeeper peer), 3888 (ZooKeeper election), 8080 (ZooKeeper AdminServer), 22 (SSH) to 0.0.0.0/0: allow known networks or security groups only",
        ]);
    });
    it("refuses SSH in a security group rule", async () => {
        const rule = { type: "ingress", protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: ["0.0.0.0/0"], securityGroupId: "sg-1" };
        assert.deepEqual(await violations(policy, "aws:ec2/securityGroupRule:SecurityGroupRule", rule), [
            "the ingress rule opens 22 (SSH) to 0.0.0.0/0: allow known networks or security groups only",
        ]);
        assert.deepEqual(await violations(policy, "aws:ec2/securityGroupRule:SecurityGroupRule", { ...rule, type: "egress" }), []);
    });
    it("refuses the AdminServer in a VPC ingress rule", async () => {
        const rule = { ipProtocol: "tcp", fromPort: 8080, toPort: 8080, cidrIpv6: "::/0", securityGroupId: "sg-1" };
        assert.deepEqual(await violations(policy, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", rule), [
            "the ingress rule opens 8080 (ZooKeeper AdminServer) to ::/0: allow known networks or security groups only",
        ]);
        assert.deepEqual(await violations(policy, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", { ...rule, cidrIpv6: "2001:db8::/32" }), []);
    });
    it("takes its ports from config", async () => {
        const rule = { type: "ingress", protocol: "tcp", fromPort: 9000, toPort: 9000, cidrBlocks: ["0.0.0.0/0"] };
        assert.deepEqual(await violations(policy, "aws:ec2/securityGroupRule:SecurityGroupRule", rule, { config: { ports: [9000] } }), [
            "the ingress rule opens 9000 to 0.0.0.0/0: allow known networks or security groups only",
        ]);
    });
    it("skips address ranges unknown at preview", async () => {
        assert.deepEqual(await violations(policy, "aws:ec2/securityGroup:SecurityGroup", sg([{ ...fromVpc, cidrBlocks: UNKNOWN_OBJECT }])), []);
    });
});

describe("ephemeral-ensemble-instances", () => {
    const policy = ephemeralEnsembleInstances();
    const type = "aws:ec2/instance:Instance";
    const parentTypes = ["zkmigrate:ephemeral:Ensemble"];
    const good = {
        ami: "ami-1",
        instanceType: "t3.small",
        tags: { owner: "team-zk", expires: "2026-12-01", Name: "zk-1" },
        metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" },
        rootBlockDevice: { encrypted: true, volumeSize: 20 },
    };
    const run = (props: unknown, o: ResourceArgsOptions = {}) => violations(policy, type, props, { parentTypes, ...o });

    it("passes a tagged, IMDSv2-only, encrypted instance", async () => {
        assert.deepEqual(await run(good), []);
    });
    it("requires the owner tag", async () => {
        const p = clone(good) as any;
        delete p.tags.owner;
        assert.deepEqual(await run(p), ['instance has no "owner" tag: an ephemeral ensemble names who to ask before it is deleted']);
    });
    it("requires the expiry tag", async () => {
        const p = clone(good) as any;
        delete p.tags.expires;
        assert.deepEqual(await run(p), ['instance has no "expires" tag: an ephemeral ensemble says when it may be deleted (YYYY-MM-DD or an RFC 3339 time)']);
    });
    it("requires the expiry to be a date", async () => {
        const p = clone(good) as any;
        p.tags.expires = "next week";
        assert.deepEqual(await run(p), ['instance\'s "expires" tag "next week" is not a date (YYYY-MM-DD or an RFC 3339 time)']);
        p.tags.expires = "2026-12-01T18:00:00Z";
        assert.deepEqual(await run(p), []);
    });
    it("takes the tag names from config", async () => {
        assert.deepEqual(await run(good, { config: { ownerTag: "team", expiryTag: "ttl" } }), [
            'instance has no "team" tag: an ephemeral ensemble names who to ask before it is deleted',
            'instance has no "ttl" tag: an ephemeral ensemble says when it may be deleted (YYYY-MM-DD or an RFC 3339 time)',
        ]);
    });
    it("requires IMDSv2", async () => {
        const p = clone(good) as any;
        p.metadataOptions.httpTokens = "optional";
        assert.deepEqual(await run(p), ['instance allows IMDSv1: set metadataOptions.httpTokens to "required"']);
        delete p.metadataOptions;
        assert.deepEqual(await run(p), ['instance allows IMDSv1: set metadataOptions.httpTokens to "required"']);
    });
    it("requires an encrypted root volume", async () => {
        const p = clone(good) as any;
        p.rootBlockDevice.encrypted = false;
        assert.deepEqual(await run(p), ["instance's root volume is not encrypted: set rootBlockDevice.encrypted to true"]);
    });
    it("applies to instances tagged as part of an ensemble, not to others", async () => {
        const p = clone(good) as any;
        p.rootBlockDevice.encrypted = false;
        assert.deepEqual(await violations(policy, type, p), []);
        p.tags["zkmigrate:ensemble"] = "kafka-test";
        assert.deepEqual(await violations(policy, type, p), ["instance's root volume is not encrypted: set rootBlockDevice.encrypted to true"]);
    });
    it("skips values unknown at preview", async () => {
        const p = clone(good) as any;
        p.tags = UNKNOWN_OBJECT;
        p.rootBlockDevice.encrypted = UNKNOWN_BOOLEAN;
        assert.deepEqual(await run(p), []);
    });
});

describe("remote-command-key-secret", () => {
    const policy = remoteCommandKeySecret();
    const type = "command:remote:Command";
    const secretOpts = { opts: { additionalSecretOutputs: ["connection"] } };
    const good = {
        connection: { host: "192.0.2.1", port: 22, user: "zookeeper", privateKey: TEST_PRIVATE_KEY },
        create: asRemoteCommand(renderRestart({ host: devFleet().ensembles[0].host, myid: 1, mode: "restart", wipeData: false, spacingSeconds: 10 })),
        environment: { ZK_ENSEMBLE: "kafka-main" },
    };

    it("passes a command with its key in the secret connection", async () => {
        assert.deepEqual(await violations(policy, type, good, secretOpts), []);
    });
    it("refuses a connection that is not secret", async () => {
        assert.deepEqual(await violations(policy, type, good), [
            'connection is not marked secret (additionalSecretOutputs lacks "connection"): the private key would be stored in plain text in the state',
        ]);
    });
    it("refuses the key in the environment", async () => {
        const p = clone(good) as any;
        p.environment.SSH_KEY = TEST_PRIVATE_KEY;
        assert.deepEqual(await violations(policy, type, p, secretOpts), [
            "the SSH private key appears in environment.SSH_KEY: pass it only as connection.privateKey (scripts, environment and triggers are shown in previews and logs)",
        ]);
    });
    it("refuses any private key in a script", async () => {
        const p = clone(good) as any;
        p.create = `cat > /tmp/k <<'EOF'\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nEOF`;
        assert.deepEqual(await violations(policy, type, p, secretOpts), [
            "create holds a private key: pass SSH keys only as connection.privateKey (scripts, environment and triggers are shown in previews and logs)",
        ]);
    });
    it("skips a key unknown at preview", async () => {
        const p = clone(good) as any;
        p.connection.privateKey = UNKNOWN_STRING;
        assert.deepEqual(await violations(policy, type, p), []);
    });
});

describe("zookeeper-settings-safe", () => {
    const policy = zookeeperSettingsSafe();
    const configMapType = "kubernetes:core/v1:ConfigMap";

    it("passes the pods' zoo.cfg the program renders (AdminServer off, listed words)", async () => {
        assert.deepEqual(await violations(policy, configMapType, shared().configMap), []);
    });
    it("refuses a zoo.cfg that leaves the AdminServer on by default", async () => {
        const c = clone(shared().configMap) as any;
        c.data["zoo.cfg"] = c.data["zoo.cfg"].replace("admin.enableServer=false\n", "");
        assert.deepEqual(await violations(policy, configMapType, c), [
            'data["zoo.cfg"] keeps the AdminServer on 0.0.0.0:8080: set admin.enableServer=false, or admin.serverAddress=127.0.0.1',
        ]);
    });
    it("accepts the AdminServer on localhost", async () => {
        const c = clone(shared().configMap) as any;
        c.data["zoo.cfg"] = c.data["zoo.cfg"].replace("admin.enableServer=false", "admin.enableServer=true\nadmin.serverAddress=127.0.0.1");
        assert.deepEqual(await violations(policy, configMapType, c), []);
    });
    it("refuses the AdminServer on every address", async () => {
        const c = clone(shared().configMap) as any;
        c.data["zoo.cfg"] = c.data["zoo.cfg"].replace("admin.enableServer=false", "admin.enableServer=true\nadmin.serverAddress=0.0.0.0\nadmin.serverPort=9090");
        assert.deepEqual(await violations(policy, configMapType, c), [
            'data["zoo.cfg"] keeps the AdminServer on 0.0.0.0:9090: set admin.enableServer=false, or admin.serverAddress=127.0.0.1',
        ]);
    });
    it("refuses every four-letter word", async () => {
        const c = clone(shared().configMap) as any;
        c.data["zoo.cfg"] = c.data["zoo.cfg"].replace(/4lw\.commands\.whitelist=.*/, "4lw.commands.whitelist=*");
        assert.deepEqual(await violations(policy, configMapType, c), [
            'data["zoo.cfg"] sets 4lw.commands.whitelist to *: list the four-letter words the checks need (e.g. srvr,mntr,conf,ruok)',
        ]);
    });
    it("reads instance user data and host commands, also as Java properties", async () => {
        const userData = "#!/bin/bash\necho '4lw.commands.whitelist=srvr, *' >> /etc/zookeeper/conf/zoo.cfg\n";
        assert.deepEqual(await violations(policy, "aws:ec2/instance:Instance", { userData }), [
            "userData sets 4lw.commands.whitelist to *: list the four-letter words the checks need (e.g. srvr,mntr,conf,ruok)",
        ]);
        const create = 'export SERVER_JVMFLAGS="-Dzookeeper.admin.enableServer=true -Dzookeeper.admin.serverAddress=0.0.0.0"';
        assert.deepEqual(await violations(policy, "command:remote:Command", { create }), [
            "create keeps the AdminServer on 0.0.0.0:8080: set admin.enableServer=false, or admin.serverAddress=127.0.0.1",
        ]);
    });
    it("leaves fragments that do not touch the AdminServer alone, and skips unknown data", async () => {
        assert.deepEqual(await violations(policy, "command:remote:Command", { create: "echo tickTime=2000 >> zoo.cfg" }), []);
        assert.deepEqual(await violations(policy, configMapType, { data: UNKNOWN_OBJECT }), []);
    });
});
