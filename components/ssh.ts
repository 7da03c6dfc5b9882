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

/**
 * The connection of a remote command to `target` (its sshHost when it has one), pinned to the
 * target's host key: the provider then accepts only that key and fails the handshake ("ssh: host
 * key mismatch") before any command runs on a host that presents another. The plan carries the
 * key (the config loader refuses a host without one unless zkmigrate:sshHostKeyCheck is false).
 */
export function connectionOf(target: HostTarget, ssh: SshArgs): command.types.input.remote.ConnectionArgs {
    return {
        host: target.sshHost ?? target.host,
        port: ssh.port,
        user: ssh.user,
        privateKey: pulumi.secret(ssh.privateKey),
        ...(target.hostKey !== undefined ? { hostKey: target.hostKey } : {}),
        dialErrorLimit: 10,
    };
}
