// The one SSH connection builder: how every remote command reaches its host.
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { HostTarget } from "../src/steps";

/** How pulumi reaches the hosts over SSH. */
export interface SshArgs {
    user: string;
    port: number;
    /** The private key; kept secret in state and never printed. */
    privateKey: pulumi.Input<string>;
}

/** The connection of a remote command to `target` (its sshHost when it has one). */
export function connectionOf(target: HostTarget, ssh: SshArgs): command.types.input.remote.ConnectionArgs {
    return {
        host: target.sshHost ?? target.host,
        port: ssh.port,
        user: ssh.user,
        privateKey: pulumi.secret(ssh.privateKey),
        dialErrorLimit: 10,
    };
}
