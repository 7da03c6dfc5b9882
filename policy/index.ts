// zkmigrate's policy pack: `pulumi preview --policy-pack policy` runs it against the program's
// resources and fails the preview (and `pulumi up`) on any mandatory violation.
import { PolicyPack } from "@pulumi/policy";
import { zkmigratePolicies } from "./policies";

new PolicyPack("zkmigrate", {
    description: "Stops unsafe ZooKeeper migration steps at preview.",
    policies: zkmigratePolicies(),
});
