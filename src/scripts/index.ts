// Host scripts: the bash that pulumi runs on ZooKeeper hosts over SSH (and integration tests run
// as is). Pure TypeScript: renders text, imports nothing from Pulumi.
export { asRemoteCommand, shellQuote } from "./shell";
export { BLOCK_BEGIN, BLOCK_END, renderWriteConfig, serverLine } from "./config";
export { renderHealthGate, renderRestart, renderStop } from "./service";
export { firewallChainName, renderFirewallApply, renderFirewallRemove, type FirewallRules } from "./firewall";
export { renderPreflight, type PreflightArgs } from "./preflight";
export { renderKafkaBroker, type KafkaBrokerScriptArgs } from "./kafka";
export { renderBlockScript, renderCopyScript, renderSwitchScript, renderUnblockScript } from "./block-copy";
export { commandsOf, isCommandStep, runsEveryAttempt, type CommandStep, type StepCommands } from "./steps";
export { renderGate, renderSplitArm, renderSwitch, splitStateDir, CLOCK_MARGIN_SECONDS } from "./deadman";
