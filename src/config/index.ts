// The stack config: the schema leaf, the loader, the applied-state record (and the ensemble types
// of the procedures' rooms, for callers that take a resolved ensemble).
export * from "./errors";
export { CONFIG_KEYS, type EnsembleBase, type HostDefaults, type ServerSpec, type Settings } from "./schema";
export * from "./loader";
export * from "./applied";
export { canonicalHost, hostSpellingIssue, inetAton } from "./hosts";
export { hostRules, resolvedHostIssues } from "./rules";
export { mergeAdopted, rmCommand, sameRecord, type AdoptedMerge } from "./adopted";
export { rawConfigOfStackFile } from "./stack-file";
export { serversOf, type EnsembleConfig } from "../procedures/registry";
export type { MitosisConfig, KafkaConfig } from "../procedures/mitosis";
export type { KubernetesConfig } from "../procedures/kubernetes";
export type { BlockCopyConfig } from "../procedures/block-copy";
export { validateMitosisClients } from "../procedures/mitosis";
export { validateBlockCopy } from "../procedures/block-copy";
