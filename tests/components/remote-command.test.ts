// components/remote-command.ts: the transform that makes every remote command send no environment.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as pulumi from "@pulumi/pulumi";
import { REMOTE_COMMAND_TYPE, sendNoPreviousOutput } from "../../components/remote-command";

function args(type: string, props: Record<string, unknown>, opts: pulumi.CustomResourceOptions = {}): pulumi.ResourceTransformArgs {
    return { custom: true, type, name: "x-config-1", props, opts };
}

describe("sendNoPreviousOutput", () => {
    it("turns off PULUMI_COMMAND_STDOUT/STDERR on a remote Command and ignores it as a change", async () => {
        const r = await sendNoPreviousOutput(args(REMOTE_COMMAND_TYPE, { create: "true" }, { ignoreChanges: ["create"] }));
        assert.ok(r);
        assert.deepEqual(r.props, { create: "true", addPreviousOutputInEnv: false });
        assert.deepEqual(r.opts.ignoreChanges, ["create", "addPreviousOutputInEnv"]);
    });

    it("overrides a true set by a component", async () => {
        const r = await sendNoPreviousOutput(args(REMOTE_COMMAND_TYPE, { create: "true", addPreviousOutputInEnv: true }));
        assert.equal(r?.props.addPreviousOutputInEnv, false);
    });

    for (const type of ["command:local:Command", "command:remote:CopyToRemote", "kubernetes:core/v1:Service"]) {
        it(`leaves ${type} alone`, async () => {
            assert.equal(await sendNoPreviousOutput(args(type, { create: "true" })), undefined);
        });
    }
});
