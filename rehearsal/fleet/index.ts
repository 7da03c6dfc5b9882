// The local fleet: ZooKeeper "hosts" on one Linux machine, for rehearsals and integration tests.
//
// Each host is a network namespace with its own address on a bridge in a private /24 the fleet
// owns, its own sshd (root login by a per-fleet key only; host keys generated per host and pinned
// in the fleet's known_hosts), its own iptables (a namespace has its own netfilter tables), and
// ZooKeeper of the version chosen per ensemble, run by a small service script (no systemd, no
// Docker). The sshd of a host also runs in its own mount and UTS namespaces, where the host's
// directory is bind-mounted at one path that is the same on every host (`<fleet dir>/host`) and
// the host name is the host's: so every host has the same HostSettings, as the stack config
// expects of an ensemble, and the scripts rendered by src/scripts run over SSH unchanged.
//
// One file a concern:
//   state.ts           the fleet's record (types, fleet.json, names, lookups, connect strings)
//   network.ts         bridge, namespaces, veths, root-namespace rules; their removal
//   sshd.ts            keys, sshd per host, known_hosts; the ssh command line (runScript)
//   processes.ts       bounded commands, pids checked by command line, kill and wait, hostService
//   service-script.ts  the one service script (zk-service, kafka-service) of a host
//   create.ts          prerequisites, the spec expanded into hosts, createFleet
//   status.ts          waitServing, fleetStatus
//   destroy.ts         destroyFleet
export { checkPrerequisites, createFleet } from "./create";
export { destroyFleet } from "./destroy";
export { fleetNetwork, fleetTag, inNetns } from "./network";
export { hostService, pidAlive, zkPid } from "./processes";
export { runScript, sshArgs, sshRun } from "./sshd";
export {
    connectString,
    fleetDir,
    host,
    hostsOf,
    kafkaBootstrap,
    kafkaConnect,
    listFleets,
    loadFleet,
    runRoot,
    stackHostConfig,
    stackSshConfig,
    type LocalFleet,
    type FleetEnsembleSpec,
    type FleetHost,
    type FleetKafkaSpec,
    type FleetSpec,
    type ScriptResult,
} from "./state";
export { fleetStatus, waitServing, type HostStatus } from "./status";
