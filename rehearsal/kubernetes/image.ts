// OCI images for the local cluster, made from files of this machine (no registry is reachable):
//
// - `k8s.local/pause:<build>`: the pod sandbox (go/cmd/pause, built by build.sh).
// - `k8s.local/zookeeper:<version>`: ZooKeeper as the pods of the kubernetes procedure run it: the
//   fleet's ZooKeeper jars (Maven Central, rehearsal/zookeeper.ts), this machine's JRE with the
//   shared libraries it loads, bash and the few tools the init script uses, a `zookeeper` user
//   (uid 1000, as in the official image), `/conf` and a `zkServer.sh` on PATH whose
//   `start-foreground` runs QuorumPeerMain on `$ZOOCFGDIR/zoo.cfg` with `-Xmx$ZK_SERVER_HEAP`m
//   (megabytes, default 1000) and `$JVMFLAGS`, as the release's zkServer.sh/zkEnv.sh do.
//
// An image is one uncompressed layer in an OCI image layout, archived by tar for
// `ctr images import` (the index carries `io.containerd.image.name`). Archives are cached under
// `<cache>/kubernetes/images/` by a hash of their inputs.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync, copyFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { cacheDir, ensureZooKeeper, findCommand } from "../zookeeper";

export interface OciImage {
    /** The reference the pods use, e.g. `k8s.local/zookeeper:3.9.5`. */
    name: string;
    /** The archive for `ctr images import`. */
    archive: string;
    /** sha256:<hex> of the image manifest: `<repository>@<digest>` pins it. */
    digest: string;
}

/** Bump when the layout of the images changes (it is part of their cache key). */
const IMAGE_FORMAT = 1;

function exec(cmd: string, args: string[], timeoutMs = 300_000): Promise<string> {
    return new Promise((resolve, reject) => {
        execFile(cmd, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`zkmigrate image: ${cmd} ${args.join(" ")} failed: ${String(stderr).trim() || err.message}`));
            else resolve(String(stdout));
        });
    });
}

function sha256File(file: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const h = createHash("sha256");
        createReadStream(file)
            .on("data", (d) => h.update(d))
            .on("end", () => resolve(h.digest("hex")))
            .on("error", reject);
    });
}

function imagesDir(): string {
    return join(cacheDir(), "kubernetes", "images");
}

/**
 * Writes `<dir>/<file>.tar`: an OCI image layout (oci-layout, index.json, blobs) around one layer
 * made of `rootfs` (owned by root, numeric ids). Returns the manifest digest.
 */
async function writeOciArchive(o: { name: string; rootfs: string; work: string; out: string; config: Record<string, unknown> }): Promise<string> {
    const layout = join(o.work, "layout");
    const blobs = join(layout, "blobs", "sha256");
    mkdirSync(blobs, { recursive: true });
    const layer = join(o.work, "layer.tar");
    await exec("tar", ["--sort=name", "--numeric-owner", "--mtime=@0", "-C", o.rootfs, "-cf", layer, "."], 600_000);
    const layerDigest = await sha256File(layer);
    const layerSize = statSync(layer).size;
    renameSync(layer, join(blobs, layerDigest));
    const blob = (data: string) => {
        const hex = createHash("sha256").update(data).digest("hex");
        writeFileSync(join(blobs, hex), data);
        return { digest: `sha256:${hex}`, size: Buffer.byteLength(data) };
    };
    const config = blob(
        JSON.stringify({
            architecture: "amd64",
            os: "linux",
            created: "1970-01-01T00:00:00Z",
            config: o.config,
            rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
            history: [{ created: "1970-01-01T00:00:00Z", created_by: "zkmigrate rehearsal/kubernetes/image.ts" }],
        }),
    );
    const manifest = blob(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
            layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${layerDigest}`, size: layerSize }],
        }),
    );
    writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    writeFileSync(
        join(layout, "index.json"),
        JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.index.v1+json",
            manifests: [
                {
                    mediaType: "application/vnd.oci.image.manifest.v1+json",
                    ...manifest,
                    annotations: { "io.containerd.image.name": o.name, "org.opencontainers.image.ref.name": o.name.split(":").pop() },
                    platform: { architecture: "amd64", os: "linux" },
                },
            ],
        }),
    );
    const tmp = `${o.out}.tmp-${process.pid}`;
    await exec("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", layout, "-cf", tmp, "."], 600_000);
    renameSync(tmp, o.out);
    return manifest.digest;
}

/** An image from the cache, or built by `build(rootfs)` and cached under a hash of `key`. */
async function cachedImage(name: string, key: string, config: Record<string, unknown>, build: (rootfs: string) => Promise<void>): Promise<OciImage> {
    const dir = imagesDir();
    mkdirSync(dir, { recursive: true });
    const hash = createHash("sha256").update(`${IMAGE_FORMAT}\n${name}\n${JSON.stringify(config)}\n${key}`).digest("hex").slice(0, 16);
    const file = name.replace(/[/:]/g, "_");
    const archive = join(dir, `${file}-${hash}.tar`);
    const digestFile = `${archive}.digest`;
    if (existsSync(archive) && existsSync(digestFile)) {
        return { name, archive, digest: readFileSync(digestFile, "utf8").trim() };
    }
    const work = mkdtempSync(join(dir, `.build-${file}-`));
    try {
        const rootfs = join(work, "rootfs");
        mkdirSync(rootfs);
        await build(rootfs);
        const digest = await writeOciArchive({ name, rootfs, work, out: archive, config });
        writeFileSync(digestFile, `${digest}\n`);
        // Older builds of the same image (other inputs) are not needed any more.
        for (const f of readdirSync(dir)) {
            if (f.startsWith(`${file}-`) && !f.startsWith(basename(archive))) rmSync(join(dir, f), { force: true });
        }
        return { name, archive, digest };
    } finally {
        rmSync(work, { recursive: true, force: true });
    }
}

/** The pause image from the binary build.sh made. */
export function pauseImage(pauseBinary: string): Promise<OciImage> {
    const key = createHash("sha256").update(readFileSync(pauseBinary)).digest("hex");
    return cachedImage("k8s.local/pause:1", key, { Entrypoint: ["/pause"] }, async (rootfs) => {
        copyFileSync(pauseBinary, join(rootfs, "pause"));
        chmodSync(join(rootfs, "pause"), 0o755);
    });
}

/** Tools the pods run besides java: the init script (mkdir, cp, mv), probes (bash), debugging. */
const TOOLS = ["bash", "mkdir", "cp", "mv", "rm", "cat", "ls", "sleep", "env", "id", "ps", "hostname", "tail", "grep"];

/** The shared libraries a binary loads (ldd), as absolute paths. */
async function sharedLibraries(file: string): Promise<string[]> {
    let out: string;
    try {
        out = await exec("ldd", [file], 30_000);
    } catch {
        return []; // not dynamic (ldd fails on static binaries and non-ELF files)
    }
    const libs: string[] = [];
    for (const line of out.split("\n")) {
        const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
        if (m) libs.push(m[1]);
    }
    return libs;
}

/** Copies a file (dereferenced) to the same path under rootfs, the directories resolved (merged /usr). */
function copyInto(rootfs: string, file: string): void {
    const target = join(rootfs, realpathSync(dirname(file)), basename(file));
    mkdirSync(dirname(target), { recursive: true });
    if (!existsSync(target)) copyFileSync(realpathSync(file), target);
    chmodSync(target, statSync(realpathSync(file)).mode & 0o7777);
}

const ZK_SERVER_SH = `#!/bin/bash
# zkServer.sh of the zkmigrate test image (k8s.local/zookeeper): only start-foreground, as the pods
# run it. Like the release's zkServer.sh + zkEnv.sh: ZOOCFGDIR (default /conf) holds zoo.cfg and is
# on the classpath, ZK_SERVER_HEAP is the heap in megabytes (default 1000), JVMFLAGS and
# SERVER_JVMFLAGS are added to the JVM's options.
set -euo pipefail
[[ "\${1:-}" == start-foreground ]] || { echo "zkServer.sh: only start-foreground is supported in this image" >&2; exit 2; }
ZOOCFGDIR="\${ZOOCFGDIR:-/conf}"
# shellcheck disable=SC2086 # the flags are word lists
exec /opt/java/bin/java -Xmx"\${ZK_SERVER_HEAP:-1000}"m -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true \\
    -Dorg.slf4j.simpleLogger.showDateTime=true \${SERVER_JVMFLAGS:-} \${JVMFLAGS:-} \\
    -cp "/zookeeper/lib/*:$ZOOCFGDIR" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZOOCFGDIR/zoo.cfg"
`;

/** The JRE this machine runs (`java` on PATH, symlinks resolved): its home directory. */
export function javaHome(): string {
    const java = findCommand("java");
    if (!java) throw new Error("zkmigrate image: java not found: install the Debian package default-jre-headless (tools/setup.sh does it)");
    return dirname(dirname(realpathSync(java)));
}

/** `k8s.local/zookeeper:<version>` from the fleet's jars of that version and this machine's JRE. */
export async function zookeeperImage(version?: string): Promise<OciImage> {
    const zk = await ensureZooKeeper(version);
    const jars = zk.classpath.split(":").filter((j) => j.endsWith(".jar"));
    const home = javaHome();
    const tools = TOOLS.map((t) => {
        const p = findCommand(t);
        if (!p) throw new Error(`zkmigrate image: ${t} not found (the ZooKeeper image carries it)`);
        return p;
    });
    const key = [home, ...jars, ...tools, ZK_SERVER_SH].join("\n");
    return cachedImage(
        `k8s.local/zookeeper:${zk.version}`,
        key,
        { Env: ["PATH=/usr/local/bin:/usr/bin:/bin:/opt/java/bin", "JAVA_HOME=/opt/java", "ZOOCFGDIR=/conf"], Cmd: ["zkServer.sh", "start-foreground"], User: "1000:1000", WorkingDir: "/" },
        async (rootfs) => {
            // Merged /usr, as Debian: /bin, /lib, /lib64, /sbin are links into /usr.
            for (const d of ["bin", "lib", "lib64", "sbin"]) {
                mkdirSync(join(rootfs, "usr", d), { recursive: true });
                symlinkSync(`usr/${d}`, join(rootfs, d));
            }
            for (const d of ["etc", "tmp", "conf", "data", "opt", "zookeeper/lib", "usr/local/bin", "proc", "sys", "dev", "run"]) mkdirSync(join(rootfs, d), { recursive: true });
            chmodSync(join(rootfs, "tmp"), 0o1777);
            writeFileSync(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/bash\nzookeeper:x:1000:1000:ZooKeeper:/data:/bin/bash\n");
            writeFileSync(join(rootfs, "etc", "group"), "root:x:0:\nzookeeper:x:1000:\n");
            writeFileSync(join(rootfs, "etc", "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
            // The JRE, symlinks resolved (Debian links its conf files into /etc/java-*).
            const jre = join(rootfs, "opt", "java");
            await exec("cp", ["-a", home, jre], 600_000);
            for (const link of (await exec("find", [jre, "-type", "l"])).split("\n").filter(Boolean)) {
                const original = join(home, link.slice(jre.length));
                rmSync(link);
                // A dangling link (src.zip without the JDK sources) is dropped.
                if (existsSync(original)) await exec("cp", ["-rL", original, link]);
            }
            // What a JDK has beyond the runtime (this machine's may be a JDK).
            for (const d of ["jmods", "include", "man", "docs", "demo", "lib/src.zip"]) rmSync(join(jre, d), { recursive: true, force: true });
            const libs = new Set<string>();
            const elf = (await exec("find", [join(rootfs, "opt", "java"), "-type", "f", "(", "-name", "*.so", "-o", "-path", "*/bin/*", ")"])).split("\n").filter(Boolean);
            for (const f of [...elf, ...tools]) for (const l of await sharedLibraries(f)) libs.add(l);
            for (const l of libs) if (!l.startsWith(home) && !l.startsWith(join(rootfs, "opt"))) copyInto(rootfs, l);
            for (const t of tools) copyInto(rootfs, t);
            symlinkSync("bash", join(rootfs, "usr", "bin", "sh"));
            for (const j of jars) copyFileSync(j, join(rootfs, "zookeeper", "lib", basename(j)));
            writeFileSync(join(rootfs, "usr", "local", "bin", "zkServer.sh"), ZK_SERVER_SH, { mode: 0o755 });
            chmodSync(join(rootfs, "usr", "local", "bin", "zkServer.sh"), 0o755);
            await exec("chown", ["-R", "1000:1000", join(rootfs, "data"), join(rootfs, "conf")]);
        },
    );
}
