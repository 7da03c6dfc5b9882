// A fake iptables/ip6tables (filter table only) keeping its rules in $FAKE_IPTABLES_DIR/<tool>.json,
// so that the firewall scripts' idempotency can be tested without root. Rules are compared as
// the argument text they were given; the real iptables runs in the integration tests.
//
//   node fake-iptables.cjs <tool> [-w N] [-n] -N|-F|-X|-L|-S|-A|-I|-C|-D ...
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const [tool, ...argv] = process.argv.slice(2);
const dir = process.env.FAKE_IPTABLES_DIR;
if (!dir) {
    console.error("fake iptables: FAKE_IPTABLES_DIR is not set");
    process.exit(3);
}
fs.appendFileSync(path.join(dir, "calls.log"), `${tool} ${argv.join(" ")}\n`);
const file = path.join(dir, `${tool}.json`);
const BUILTIN = ["INPUT", "FORWARD", "OUTPUT"];
const state = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : { chains: Object.fromEntries(BUILTIN.map((c) => [c, []])) };
const save = () => fs.writeFileSync(file, JSON.stringify(state, null, 1));
const die = (msg, code = 1) => {
    console.error(`${tool}: ${msg}`);
    process.exit(code);
};

const args = [];
for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "-w") i++;
    else if (argv[i] !== "-n") args.push(argv[i]);
}
const [op, chain, ...rest] = args;
const exists = (c) => Object.prototype.hasOwnProperty.call(state.chains, c);
const need = (c) => exists(c) || die(`No chain/target/match by that name.`);
const jumpTarget = (spec) => {
    const i = spec.indexOf("-j");
    return i >= 0 ? spec[i + 1] : undefined;
};
const checkTarget = (spec) => {
    const t = jumpTarget(spec);
    if (t && !["ACCEPT", "DROP", "REJECT", "RETURN"].includes(t) && !exists(t)) die(`Couldn't load target \`${t}'`, 2);
};

switch (op) {
    case "-N":
        if (exists(chain)) die("Chain already exists.");
        state.chains[chain] = [];
        save();
        break;
    case "-F":
        need(chain);
        state.chains[chain] = [];
        save();
        break;
    case "-X":
        need(chain);
        if (state.chains[chain].length > 0) die("Directory not empty.");
        if (Object.values(state.chains).some((rules) => rules.some((r) => jumpTarget(r.split(" ")) === chain))) die("Too many links.");
        delete state.chains[chain];
        save();
        break;
    case "-L":
        need(chain);
        console.log(`Chain ${chain}`);
        break;
    case "-S": {
        const chains = chain ? [chain] : Object.keys(state.chains);
        if (chain) need(chain);
        for (const c of chains) console.log(BUILTIN.includes(c) ? `-P ${c} ACCEPT` : `-N ${c}`);
        for (const c of chains) for (const r of state.chains[c]) console.log(`-A ${c} ${r}`);
        break;
    }
    case "-A":
        need(chain);
        checkTarget(rest);
        state.chains[chain].push(rest.join(" "));
        save();
        break;
    case "-I": {
        need(chain);
        let pos = 1;
        let spec = rest;
        if (/^\d+$/.test(rest[0] ?? "")) {
            pos = Number(rest[0]);
            spec = rest.slice(1);
        }
        checkTarget(spec);
        state.chains[chain].splice(pos - 1, 0, spec.join(" "));
        save();
        break;
    }
    case "-C":
        need(chain);
        checkTarget(rest);
        process.exit(state.chains[chain].includes(rest.join(" ")) ? 0 : 1);
        break;
    case "-D": {
        need(chain);
        const i = state.chains[chain].indexOf(rest.join(" "));
        if (i < 0) die("Bad rule (does a matching rule exist in that chain?).");
        state.chains[chain].splice(i, 1);
        save();
        break;
    }
    case undefined:
        die("no command");
        break;
    default:
        die(`fake iptables does not know ${op}`);
}
