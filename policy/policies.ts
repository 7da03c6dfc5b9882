// The pack's policies, in one list: resource policies judge one resource, stack policies the whole
// update. Each factory takes an enforcement level; every policy is mandatory by default.
import type { Policies } from "@pulumi/policy";
import {
    ephemeralEnsembleInstances,
    remoteCommandKeySecret,
    zookeeperPortsNotPublic,
    zookeeperServicePorts,
    zookeeperSettingsSafe,
    zookeeperStatefulSetPods,
    type PolicyOptions,
} from "./resources";
import {
    zookeeperEndpointsHaveService,
    zookeeperFirewallOnlyWhenSplit,
    zookeeperOneCutoverPerUpdate,
    zookeeperQuorumSafeMemberships,
    zookeeperRestartsOneAtATime,
    zookeeperStatefulSetPdb,
} from "./stack";

export type {
    Policies,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";
export * from "./resources";
export * from "./stack";

export function zkmigratePolicies(opts: PolicyOptions = {}): Policies {
    return [
        zookeeperServicePorts(opts),
        zookeeperStatefulSetPods(opts),
        zookeeperPortsNotPublic(opts),
        ephemeralEnsembleInstances(opts),
        remoteCommandKeySecret(opts),
        zookeeperSettingsSafe(opts),
        zookeeperEndpointsHaveService(opts),
        zookeeperStatefulSetPdb(opts),
        zookeeperRestartsOneAtATime(opts),
        zookeeperFirewallOnlyWhenSplit(opts),
        zookeeperOneCutoverPerUpdate(opts),
        zookeeperQuorumSafeMemberships(opts),
    ];
}
