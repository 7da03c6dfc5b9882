#!/usr/bin/env node
// The `zkmigrate` bin (`npx zkmigrate ...` in this repository, or on PATH once the package is
// installed): the CLI is TypeScript (cli/zkmigrate.ts), run through tsx's CommonJS loader.
"use strict";
let tsx;
try {
    tsx = require("tsx/cjs/api");
} catch (e) {
    process.stderr.write(`zkmigrate: cannot load tsx (${e && e.code ? e.code : e}): run npm ci in ${require("node:path").join(__dirname, "..")}\n`);
    process.exit(70);
}
tsx.register();
require("./zkmigrate.ts").runProgram(process.argv.slice(2));
