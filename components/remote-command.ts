// What every `command:remote:Command` of the fleet sends over SSH: the script, nothing else.
//
// @pulumi/command (1.x) sets PULUMI_COMMAND_STDOUT and PULUMI_COMMAND_STDERR (the previous run's
// output) in the SSH session of an update or delete unless `addPreviousOutputInEnv` is false; a
// stock sshd refuses them (no `AcceptEnv`) and the provider warns once per command. zkmigrate's
// scripts never read them, so the fleet turns them off for all its remote commands (a transform
// of the Fleet component, so a command added anywhere below it is covered) and the hosts need no
// `AcceptEnv`. It is also ignored as a change: a stack whose commands ran before this setting
// keeps them as they are instead of running every host script again (an in-place update of a
// `remote.Command` runs its `create`).
import * as pulumi from "@pulumi/pulumi";

export const REMOTE_COMMAND_TYPE = "command:remote:Command";

/** A resource transform: every remote Command gets `addPreviousOutputInEnv: false`. */
export const sendNoPreviousOutput: pulumi.ResourceTransform = (a) => {
    if (a.type !== REMOTE_COMMAND_TYPE) return undefined;
    return {
        props: { ...a.props, addPreviousOutputInEnv: false },
        opts: pulumi.mergeOptions(a.opts, { ignoreChanges: ["addPreviousOutputInEnv"] }),
    };
};
