// The Kubernetes objects of the hosts-to-Kubernetes migration as plain manifests (no Pulumi).
export * from "./objects";
