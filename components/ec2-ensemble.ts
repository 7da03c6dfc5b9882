// A throwaway ZooKeeper ensemble on EC2, for rehearsing a migration against real cloud hosts (the
// seed's "ephemeral clusters"). Everything it declares is decided in src/ec2 (checked inputs,
// security group rules, tags, per-instance user data); this file only maps it to resources.
import * as ec2 from "@pulumi/aws/ec2";
import * as ssm from "@pulumi/aws/ssm";
import * as vpc from "@pulumi/aws/vpc";
import * as pulumi from "@pulumi/pulumi";
import {
    connectStringOf,
    ensembleOverrides,
    fleetServers,
    instanceTags,
    renderUserData,
    resolveEc2Ensemble,
    userDataArgs,
    TAG_EXPIRES,
    type Ec2Ensemble,
    type Ec2EnsembleInput,
    type FleetServer,
} from "../src/ec2";
import type { ServerId } from "../src/types";

export const EC2_ENSEMBLE_TYPE = "zkmigrate:ec2:Ensemble";

/**
 * The inputs (src/ec2/ensemble.ts documents each field and its default). Required: owner,
 * expiresAt or ttlHours, version, vpcId, subnetId, subnetCidr, adminCidrs, keyName or sshPublicKey.
 */
export type Ec2EnsembleArgs = Ec2EnsembleInput;

export class Ec2ZooKeeperEnsemble extends pulumi.ComponentResource {
    /** The checked inputs with every default resolved. */
    readonly ensemble: Ec2Ensemble;
    readonly securityGroup: ec2.SecurityGroup;
    readonly rules: (vpc.SecurityGroupIngressRule | vpc.SecurityGroupEgressRule)[] = [];
    readonly keyPair?: ec2.KeyPair;
    readonly instances = new Map<ServerId, ec2.Instance>();
    /** The rendered user data per myid (what each instance runs at first boot). */
    readonly userData = new Map<ServerId, string>();
    /** The servers as the fleet config lists them: `{ id, host, sshHost? }` (sshHost with publicIp). */
    readonly servers: pulumi.Output<FleetServer[]>;
    /** The private addresses in myid order (the `server.N` addresses). */
    readonly addresses: string[];
    readonly connectString: string;
    /** The login user of the image (the stack's `sshUser`). */
    readonly sshUser: string;
    /** Per-ensemble `zookeeper`/`service` keys of the fleet config; empty with the default paths. */
    readonly hostConfig: Record<string, Record<string, string | number>>;
    /** The ExpiresAt tag as the instances carry it. */
    readonly expiresAt: pulumi.Output<string>;

    constructor(name: string, args: Ec2EnsembleArgs, opts?: pulumi.ComponentResourceOptions) {
        // Every check runs before anything is declared (the component itself included); the
        // error names each bad argument.
        const e = resolveEc2Ensemble(name, args);
        super(EC2_ENSEMBLE_TYPE, name, {}, opts);
        this.ensemble = e;
        this.addresses = e.servers.map((s) => s.privateIp);
        this.connectString = connectStringOf(e);
        this.sshUser = e.sshUser;
        this.hostConfig = ensembleOverrides(e);

        // With ttlHours the expiry is computed at each run: keep the one written at creation, or
        // every update would push it (and show a diff).
        const keepExpiry = (...props: string[]) => (e.expiryFromTtl ? props.map((p) => `${p}.${TAG_EXPIRES}`) : []);
        const tagged = (n: string) => ({ ...e.tags, Name: n });

        this.securityGroup = new ec2.SecurityGroup(
            `${name}-sg`,
            {
                vpcId: e.vpcId,
                description: `zkmigrate ephemeral ZooKeeper ensemble ${name}: ZooKeeper ports from itself and the client CIDRs, SSH from the admin CIDRs`,
                revokeRulesOnDelete: true,
                tags: tagged(`${name}-sg`),
            },
            { parent: this, ignoreChanges: keepExpiry("tags") },
        );
        for (const r of e.rules) {
            const ruleArgs = {
                securityGroupId: this.securityGroup.id,
                ipProtocol: "tcp",
                fromPort: r.port,
                toPort: r.port,
                description: r.description,
                // The group itself: members admit each other whatever addresses they get.
                ...(r.peer.kind === "self"
                    ? { referencedSecurityGroupId: this.securityGroup.id }
                    : r.peer.family === 4
                      ? { cidrIpv4: r.peer.cidr }
                      : { cidrIpv6: r.peer.cidr }),
                tags: tagged(`${name}-${r.name}`),
            };
            const ropts = { parent: this, ignoreChanges: keepExpiry("tags") };
            this.rules.push(
                r.direction === "ingress"
                    ? new vpc.SecurityGroupIngressRule(`${name}-${r.name}`, ruleArgs, ropts)
                    : new vpc.SecurityGroupEgressRule(`${name}-${r.name}`, ruleArgs, ropts),
            );
        }

        let keyName: pulumi.Input<string>;
        if ("publicKey" in e.key) {
            this.keyPair = new ec2.KeyPair(`${name}-key`, { publicKey: e.key.publicKey, tags: tagged(`${name}-key`) }, { parent: this, ignoreChanges: keepExpiry("tags") });
            keyName = this.keyPair.keyName;
        } else {
            keyName = e.key.name;
        }

        // The newest image of the family, unless an id is given. Kept once launched (ignoreChanges
        // "ami"): a newer image must not replace the whole ensemble at the next update.
        const ami: pulumi.Input<string> = "id" in e.ami ? e.ami.id : ssm.getParameterOutput({ name: e.ami.ssmParameter }, { parent: this }).value;

        for (const s of e.servers) {
            const userData = renderUserData(e, s.id);
            this.userData.set(s.id, userData);
            const tags = instanceTags(e, s.id);
            this.instances.set(
                s.id,
                new ec2.Instance(
                    `${name}-server-${s.id}`,
                    {
                        ami,
                        instanceType: e.instanceType,
                        subnetId: e.subnetId,
                        // Fixed: every zoo.cfg lists the members by these addresses before launch.
                        privateIp: s.privateIp,
                        vpcSecurityGroupIds: [this.securityGroup.id],
                        associatePublicIpAddress: e.publicIp,
                        keyName,
                        // IMDSv2 only (session tokens), and no hop beyond the instance itself.
                        metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
                        rootBlockDevice: { encrypted: true, kmsKeyId: e.kmsKeyId, volumeType: "gp3", volumeSize: e.rootVolumeGb, deleteOnTermination: true },
                        ...userDataArgs(userData),
                        // User data runs at first boot only: a changed script means a new instance.
                        userDataReplaceOnChange: true,
                        tags,
                        volumeTags: tags,
                    },
                    // The rules first: the user data downloads (egress) and waits for its peers.
                    { parent: this, dependsOn: this.rules, ignoreChanges: ["ami", ...keepExpiry("tags", "volumeTags")] },
                ),
            );
        }

        const publicIps = pulumi.all(e.servers.map((s) => this.instances.get(s.id)!.publicIp));
        this.servers = publicIps.apply((ips) => fleetServers(e, e.publicIp ? Object.fromEntries(e.servers.map((s, i) => [s.id, ips[i]])) : {}));
        this.expiresAt = this.instances.get(e.servers[0].id)!.tags.apply((t) => t?.[TAG_EXPIRES] ?? e.expiresAt);

        this.registerOutputs({
            servers: this.servers,
            addresses: this.addresses,
            connectString: this.connectString,
            sshUser: this.sshUser,
            hostConfig: this.hostConfig,
            securityGroupId: this.securityGroup.id,
            expiresAt: this.expiresAt,
        });
    }
}
