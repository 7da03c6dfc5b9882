export * from "./fleet";
export * from "./host-servers";
export * from "./kubernetes-ensemble";
export * from "./mitosis-ensemble";
export * from "./migration-ensemble";
export * from "./ec2-ensemble";
export * from "./kafka-brokers";
export * from "./block-copy-ensemble";
