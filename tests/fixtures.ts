// Test fixtures: the example stack config (Pulumi.dev.yaml), as the program reads it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { loadConfig, NAMESPACE, type FleetConfig, type RawConfig } from "../src/config";

export const ROOT = join(__dirname, "..");

/** A throwaway key: only its presence and secrecy are checked before SSH. */
export const TEST_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ntest-only\n-----END OPENSSH PRIVATE KEY-----\n";

/**
 * One throwaway ed25519 public key for every host (a `*` known_hosts line), for configs built in
 * tests: what the provider would pin; nothing dials these hosts.
 */
export const TEST_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHy2nwLKKsvoLXAX2HkyOK/qm9VfZaDevXgkqKvx+ws";
export const TEST_KNOWN_HOSTS = `* ${TEST_HOST_KEY}\n`;

/** The SSH settings of a config built in a test: the test key, and a host key for every host. */
export const TEST_SSH = { sshPrivateKey: TEST_PRIVATE_KEY, sshKnownHosts: TEST_KNOWN_HOSTS };

/** The raw config of Pulumi.dev.yaml by key (without the namespace), plus a test SSH key. */
export function devRawConfig(): RawConfig {
    const doc = parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
    const raw: RawConfig = { sshPrivateKey: TEST_PRIVATE_KEY };
    for (const [k, v] of Object.entries(doc.config)) {
        raw[k.replace(`${NAMESPACE}:`, "")] = v;
    }
    return raw;
}

/** Pulumi.dev.yaml with the phases (and cutover) set per ensemble name. */
export function devConfigAt(phases: Record<string, string>, cutover?: number[]): RawConfig {
    const raw = devRawConfig();
    raw.ensembles = (raw.ensembles as Record<string, unknown>[]).map((e) => ({
        ...e,
        phase: phases[e.name as string] ?? e.phase,
        ...(e.procedure === "kubernetes" && cutover ? { cutover } : {}),
    }));
    return raw;
}

export function devFleet(phases: Record<string, string> = {}, cutover?: number[]): FleetConfig {
    return loadConfig(devConfigAt(phases, cutover));
}

/** Deep copy of a raw config with `edit` applied, for one-field-changed cases. */
export function edited(raw: RawConfig, edit: (r: any) => void): RawConfig {
    const copy = structuredClone(raw);
    edit(copy);
    return copy;
}

/** A block-copy ensemble (alone in its fleet) on documentation addresses, in `phase`, with `extra` keys merged. */
export function blockCopyRaw(phase = "precopy", extra: Record<string, unknown> = {}): RawConfig {
    return {
        ...TEST_SSH,
        ensembles: [
            {
                name: "kafka-bc",
                procedure: "block-copy",
                phase,
                source: [
                    { id: 1, host: "192.0.2.1" },
                    { id: 2, host: "192.0.2.2" },
                    { id: 3, host: "192.0.2.3" },
                ],
                target: [
                    { id: 1, host: "192.0.2.11" },
                    { id: 2, host: "192.0.2.12" },
                    { id: 3, host: "192.0.2.13" },
                ],
                path: "/kafka",
                clients: {
                    hosts: [{ host: "192.0.2.21" }, { host: "192.0.2.22", sshHost: "10.0.0.22" }],
                    block: "systemctl stop kafka",
                    switch: 'sed -i "s|^zookeeper.connect=.*|zookeeper.connect=$ZK_CONNECT|" /etc/kafka/server.properties && systemctl start kafka',
                    unblock: "systemctl start kafka",
                },
                ...extra,
            },
        ],
    };
}
