// The Pulumi engine as the rehearsal and the engine tests use it: where it is installed
// (tools/pulumi/install.sh's cache, else PATH), the offline environment for a local file backend
// with passphrase secrets, and a copy of this project to run stacks of.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const REPO = path.resolve(__dirname, "..");

/** What the program needs of the repo; node_modules is linked, not copied. */
const PROJECT_FILES = ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts", "components", "src"];

export function isExecutable(file: string): boolean {
    try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

/** Where to look for `pulumi` and `pulumi-language-nodejs`: the install cache first, then PATH. */
export function engineCandidates(): string[] {
    const cache = process.env.ZKMIGRATE_CACHE || path.join(os.homedir(), ".cache", "zkmigrate");
    return [path.join(cache, "pulumi", "bin"), ...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean)];
}

/** The directory holding `pulumi` and `pulumi-language-nodejs`, or undefined when none is installed. */
export function findEngine(): string | undefined {
    return engineCandidates().find((dir) => isExecutable(path.join(dir, "pulumi")) && isExecutable(path.join(dir, "pulumi-language-nodejs")));
}

/**
 * The environment of an offline engine: `bin` first on PATH, state in `stateDir` (a local file
 * backend), passphrase secrets, no update check and no plugin downloads.
 */
export function engineEnv(bin: string, stateDir: string, passphrase: string): Record<string, string> {
    return {
        PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}`,
        PULUMI_BACKEND_URL: `file://${stateDir}`,
        PULUMI_CONFIG_PASSPHRASE: passphrase,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    };
}

/** Links the repo's node_modules into a project directory. */
export function linkNodeModules(dir: string): void {
    fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"), "dir");
}

/** A copy of this project in `dir` (created), so that its stacks and config files stay out of the repo. */
export function copyProject(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    for (const f of PROJECT_FILES) fs.cpSync(path.join(REPO, f), path.join(dir, f), { recursive: true });
    linkNodeModules(dir);
}
