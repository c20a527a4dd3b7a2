// Tokenize a file with a TextMate grammar, as VS Code does (vscode-textmate + the
// Oniguruma regex engine compiled to WASM), and print one JSON line per token:
// {"line": N, "text": "...", "scopes": [...]}.
// Usage: NODE_PATH=<node_modules> node textmate_tokenize.js GRAMMAR.json FILE
//        NODE_PATH=<node_modules> node textmate_tokenize.js --compile GRAMMAR.json
// (--compile: compile every regex of the grammar with Oniguruma; print each failure.)
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

function compileAll(grammarPath) {
  let count = 0;
  let failures = 0;
  const walk = (node, where) => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}[${i}]`));
    if (!node || typeof node !== "object") return;
    for (const [key, value] of Object.entries(node)) {
      if (["match", "begin", "end", "while"].includes(key) && typeof value === "string") {
        count++;
        try {
          new oniguruma.OnigScanner([value]);
        } catch (error) {
          failures++;
          process.stdout.write(`${where}.${key}: ${error.message || error}\n`);
        }
      } else {
        walk(value, `${where}.${key}`);
      }
    }
  };
  walk(JSON.parse(fs.readFileSync(grammarPath, "utf8")), "$");
  process.stdout.write(`compiled ${count} regexes, ${failures} failed\n`);
  process.exit(failures ? 1 : 0);
}

async function main() {
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer);
  if (process.argv[2] === "--compile") return compileAll(process.argv[3]);
  const [grammarPath, filePath] = process.argv.slice(2);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () => vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath),
  });
  const grammar = await registry.loadGrammar("source.buildfile");
  if (!grammar) throw new Error("the grammar did not load");
  let state = vsctm.INITIAL;
  const lines = fs.readFileSync(filePath, "utf8").split("\n");
  lines.forEach((line, index) => {
    const result = grammar.tokenizeLine(line, state);
    for (const token of result.tokens) {
      const text = line.substring(token.startIndex, token.endIndex);
      process.stdout.write(JSON.stringify({ line: index + 1, text, scopes: token.scopes }) + "\n");
    }
    state = result.ruleStack;
  });
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack || error) + "\n");
  process.exit(1);
});
