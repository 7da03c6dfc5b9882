// Ephemeral test ensembles on EC2: inputs and their checks, security group rules, tags, user data
// and the fleet-config-shaped outputs. Pure TypeScript; components/ec2-ensemble.ts declares them.
export * from "./cidr";
export * from "./ensemble";
export * from "./user-data";
