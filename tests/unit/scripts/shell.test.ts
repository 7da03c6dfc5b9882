// shellQuote and asRemoteCommand: what the login shell of a host does with the scripts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { asRemoteCommand, shellQuote } from "../../../src/scripts";

const run = (shell: string, text: string, input?: string) => spawnSync(shell, ["-c", text], { encoding: "utf8", timeout: 10_000, input });

describe("shellQuote", () => {
    const tricky = ["", "a", "it's", "''", "'", "$(touch /tmp/zkmigrate-pwned)", "`id`", "a\nb", "back\\slash", "*", "!x", "\"dq\"", "ünï códe", "-n", "a b\tc", "${HOME}"];

    for (const shell of ["bash", "sh"]) {
        it(`gives back every string unchanged in ${shell}`, () => {
            for (const s of tricky) {
                const r = run(shell, `printf '%s' ${shellQuote(s)}`);
                assert.equal(r.status, 0, r.stderr);
                assert.equal(r.stdout, s, JSON.stringify(s));
            }
        });
    }

    it("always single-quotes", () => {
        assert.equal(shellQuote("abc"), "'abc'");
        assert.equal(shellQuote("it's"), "'it'\\''s'");
        assert.equal(shellQuote(""), "''");
    });
});

describe("asRemoteCommand", () => {
    const script = [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        "declare -a xs=(one 'two words')",
        'if [[ "${xs[1]}" == "two words" ]]; then echo "bash: ${#xs[@]} items"; fi',
        "echo \"literal: $(printf '%s' '$HOME `id`')\"",
        "read -r w <<<\"here string\"",
        'echo "$w $BASH_VERSION" | cut -d" " -f1,2',
    ].join("\n");

    it("runs the script under bash when the login shell is sh (dash)", () => {
        const r = run("sh", asRemoteCommand(script));
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(r.stdout.split("\n"), ["bash: 2 items", "literal: $HOME `id`", "here string", ""]);
    });

    it("passes the exit status through, and does not let the outer shell expand anything", () => {
        const r = run("sh", asRemoteCommand('echo "$0" >&2; exit 7'));
        assert.equal(r.status, 7);
        assert.equal(r.stderr.trim(), "bash");
    });

    it("has the documented form", () => {
        assert.equal(asRemoteCommand("echo hi\n"), "bash -s <<'ZKMIGRATE_SCRIPT'\necho hi\nZKMIGRATE_SCRIPT\n");
        assert.equal(asRemoteCommand("echo hi"), "bash -s <<'ZKMIGRATE_SCRIPT'\necho hi\nZKMIGRATE_SCRIPT\n");
    });

    it("refuses a script with a line equal to the delimiter", () => {
        assert.throws(() => asRemoteCommand("echo a\nZKMIGRATE_SCRIPT\necho b"), /ZKMIGRATE_SCRIPT/);
        // Inside a longer line it is harmless.
        assert.equal(run("sh", asRemoteCommand("echo ' ZKMIGRATE_SCRIPT'")).stdout, " ZKMIGRATE_SCRIPT\n");
    });
});
