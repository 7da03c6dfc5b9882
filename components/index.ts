export * from "./fleet";
export * from "./ensemble";
export * from "./ssh";
export * from "./ec2-ensemble";
