// Answers of real servers to srvr, mntr and conf. The 3.5 texts were captured from ZooKeeper
// 3.5.10 (a 3-server ensemble on 127.0.0.1, 4lw.commands.whitelist=*); the 3.9 texts follow
// 3.9's formats (decimal average latency, the metrics-system mntr keys, clientPortListenBacklog,
// client addresses in the membership).

export const SRVR_35_FOLLOWER = `Zookeeper version: 3.5.10-a32c7183d42325b03e44a06aade6a0f16955bf13, built on 05/29/2022 16:59 GMT
Latency min/avg/max: 0/4/21
Received: 50
Sent: 54
Connections: 3
Outstanding: 0
Zxid: 0x100000048
Mode: follower
Node count: 5
`;

export const SRVR_35_LEADER = `Zookeeper version: 3.5.10-a32c7183d42325b03e44a06aade6a0f16955bf13, built on 05/29/2022 16:59 GMT
Latency min/avg/max: 0/0/0
Received: 1
Sent: 0
Connections: 1
Outstanding: 0
Zxid: 0x100000000
Mode: leader
Node count: 5
Proposal sizes last/min/max: -1/-1/-1
`;

export const SRVR_35_STANDALONE = `Zookeeper version: 3.5.10-a32c7183d42325b03e44a06aade6a0f16955bf13, built on 05/29/2022 16:59 GMT
Latency min/avg/max: 0/0/0
Received: 7
Sent: 6
Connections: 1
Outstanding: 0
Zxid: 0x0
Mode: standalone
Node count: 5
`;

export const MNTR_35_LEADER = [
    "zk_version\t3.5.10-a32c7183d42325b03e44a06aade6a0f16955bf13, built on 05/29/2022 16:59 GMT",
    "zk_avg_latency\t0",
    "zk_max_latency\t0",
    "zk_min_latency\t0",
    "zk_packets_received\t2",
    "zk_packets_sent\t1",
    "zk_num_alive_connections\t1",
    "zk_outstanding_requests\t0",
    "zk_server_state\tleader",
    "zk_znode_count\t5",
    "zk_watch_count\t0",
    "zk_ephemerals_count\t0",
    "zk_approximate_data_size\t182",
    "zk_open_file_descriptor_count\t32",
    "zk_max_file_descriptor_count\t20000",
    "zk_followers\t2",
    "zk_synced_followers\t2",
    "zk_pending_syncs\t0",
    "zk_last_proposal_size\t-1",
    "zk_max_proposal_size\t-1",
    "zk_min_proposal_size\t-1",
    "",
].join("\n");

export const MNTR_35_FOLLOWER = [
    "zk_version\t3.5.10-a32c7183d42325b03e44a06aade6a0f16955bf13, built on 05/29/2022 16:59 GMT",
    "zk_avg_latency\t0",
    "zk_max_latency\t0",
    "zk_min_latency\t0",
    "zk_packets_received\t2",
    "zk_packets_sent\t1",
    "zk_num_alive_connections\t1",
    "zk_outstanding_requests\t0",
    "zk_server_state\tfollower",
    "zk_znode_count\t5",
    "zk_watch_count\t0",
    "zk_ephemerals_count\t0",
    "zk_approximate_data_size\t182",
    "zk_open_file_descriptor_count\t30",
    "zk_max_file_descriptor_count\t20000",
    "",
].join("\n");

export const CONF_35_QUORUM = `clientPort=41183
secureClientPort=-1
dataDir=/tmp/zkdev/q3/data/version-2
dataDirSize=564
dataLogDir=/tmp/zkdev/q3/data/version-2
dataLogSize=564
tickTime=500
maxClientCnxns=60
minSessionTimeout=1000
maxSessionTimeout=10000
serverId=3
initLimit=10
syncLimit=5
electionAlg=3
electionPort=41909
quorumPort=41908
peerType=0
membership: 
server.1=127.0.0.1:41888:41889:participant
server.2=127.0.0.1:41898:41899:participant
server.3=127.0.0.1:41908:41909:participant
version=0`;

export const CONF_35_STANDALONE = `clientPort=41191
secureClientPort=-1
dataDir=/tmp/zkdev/s35/data/version-2
dataDirSize=424
dataLogDir=/tmp/zkdev/s35/data/version-2
dataLogSize=424
tickTime=500
maxClientCnxns=60
minSessionTimeout=1000
maxSessionTimeout=10000
serverId=0
`;

export const SRVR_39_LEADER = `Zookeeper version: 3.9.3-c26634f34490bb0ea7a09cc51e05ede3b4e320ee, built on 2024-10-17 23:21 UTC
Latency min/avg/max: 0/0.7273/5
Received: 12
Sent: 11
Connections: 2
Outstanding: 0
Zxid: 0x200000004
Mode: leader
Node count: 7
Proposal sizes last/min/max: 48/36/92
`;

export const SRVR_39_FOLLOWER = `Zookeeper version: 3.9.3-c26634f34490bb0ea7a09cc51e05ede3b4e320ee, built on 2024-10-17 23:21 UTC
Latency min/avg/max: 0/1.25/3
Received: 9
Sent: 8
Connections: 1
Outstanding: 1
Zxid: 0x200000004
Mode: follower
Node count: 7
`;

export const MNTR_39_LEADER = [
    "zk_version\t3.9.3-c26634f34490bb0ea7a09cc51e05ede3b4e320ee, built on 2024-10-17 23:21 UTC",
    "zk_server_state\tleader",
    "zk_ephemerals_count\t1",
    "zk_min_latency\t0",
    "zk_avg_latency\t0.7273",
    "zk_num_alive_connections\t2",
    "zk_max_file_descriptor_count\t1048576",
    "zk_outstanding_requests\t0",
    "zk_approximate_data_size\t236",
    "zk_znode_count\t7",
    "zk_global_sessions\t2",
    "zk_local_sessions\t0",
    "zk_uptime\t392741",
    "zk_last_client_response_size\t16",
    "zk_max_latency\t5",
    "zk_packets_sent\t11",
    "zk_open_file_descriptor_count\t73",
    "zk_packets_received\t12",
    "zk_max_client_response_size\t62",
    "zk_connection_drop_probability\t0.0",
    "zk_watch_count\t1",
    "zk_auth_failed_count\t0",
    "zk_min_client_response_size\t16",
    "zk_learners\t2",
    "zk_synced_followers\t2",
    "zk_synced_non_voting_followers\t0",
    "zk_synced_observers\t0",
    "zk_pending_syncs\t0",
    "zk_last_proposal_size\t48",
    "zk_max_proposal_size\t92",
    "zk_min_proposal_size\t36",
    "zk_peer_state\tleading - broadcast",
    "zk_quorum_size\t3",
    "zk_avg_commit_propagation_latency\t1.0",
    "zk_min_commit_propagation_latency\t0",
    "zk_max_commit_propagation_latency\t3",
    "zk_cnt_commit_propagation_latency\t4",
    "zk_sum_commit_propagation_latency\t4",
    "zk_p50_commit_propagation_latency\t1",
    "zk_p99_commit_propagation_latency\t3",
    "zk_avg_read_commitproc_time_ms\t0.0",
    "zk_cnt_read_commitproc_time_ms\t0",
    "zk_learner_handler_qp_size_sum\t0",
    "zk_jvm_threads_current\t47",
    "",
].join("\n");

export const MNTR_39_FOLLOWER = [
    "zk_version\t3.9.3-c26634f34490bb0ea7a09cc51e05ede3b4e320ee, built on 2024-10-17 23:21 UTC",
    "zk_server_state\tfollower",
    "zk_ephemerals_count\t1",
    "zk_min_latency\t0",
    "zk_avg_latency\t1.25",
    "zk_num_alive_connections\t1",
    "zk_outstanding_requests\t1",
    "zk_approximate_data_size\t236",
    "zk_znode_count\t7",
    "zk_uptime\t391002",
    "zk_max_latency\t3",
    "zk_packets_sent\t8",
    "zk_packets_received\t9",
    "zk_watch_count\t0",
    "zk_peer_state\tfollowing - broadcast",
    "zk_quorum_size\t3",
    "",
].join("\n");

export const CONF_39_QUORUM = `clientPort=2181
secureClientPort=-1
dataDir=/var/lib/zookeeper/version-2
dataDirSize=67108880
dataLogDir=/var/lib/zookeeper/version-2
dataLogSize=67108880
tickTime=2000
maxClientCnxns=60
minSessionTimeout=4000
maxSessionTimeout=40000
clientPortListenBacklog=-1
serverId=2
initLimit=10
syncLimit=5
electionAlg=3
electionPort=3888
quorumPort=2888
peerType=0
membership: 
server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181
server.2=10.0.0.2:2888:3888:participant;0.0.0.0:2181
server.3=[2001:db8::3]:2888:3888:participant;[::]:2181
server.4=10.0.0.4:2888:3888:observer;0.0.0.0:2181
version=200000000
`;

export const NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n";

/** What 3.5+ answers for a word missing from 4lw.commands.whitelist. */
export const refusal = (word: string) => `${word} is not executed because it is not in the whitelist.\n`;
