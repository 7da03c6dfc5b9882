// Preloaded (node --require) by the CLI tests to provoke an internal error: every TCP connect
// throws, as a bug in zkmigrate or a library would. ZooKeeper's client connects from a timer
// callback, so the error escapes every promise: the process-level handler must report it.
"use strict";
const net = require("node:net");
const fault = () => {
    throw new TypeError("injected fault: net.connect is broken");
};
net.connect = fault;
net.createConnection = fault;
