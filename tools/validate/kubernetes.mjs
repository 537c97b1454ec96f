// Validates rendered Kubernetes manifests offline, two ways:
//   1. kubernetes-models: each document against the API's JSON schema (required fields, types);
//   2. kubernetes-types + tsc --strict: each document as a typed object literal, which rejects
//      unknown fields (a misspelt key passes a lenient schema but not an excess-property check).
// Usage: node kubernetes.mjs FILE.yaml... ; exits 1 on any problem, 2 when given no document.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// apiVersion -> module path of both packages ("apps/v1", "v1" is the core group).
const group = (apiVersion) => (apiVersion.includes("/") ? apiVersion : `v1`);
const files = process.argv.slice(2);
const docs = [];
for (const file of files) {
  for (const d of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (d.errors.length) {
      console.error(`${file}: YAML: ${d.errors[0].message}`);
      process.exit(1);
    }
    const value = d.toJS();
    if (value) docs.push({ file, value });
  }
}
if (docs.length === 0) {
  console.error("no Kubernetes document given");
  process.exit(2);
}

let problems = 0;
for (const { file, value } of docs) {
  const where = `${file}: ${value.kind}/${value.metadata?.name}`;
  try {
    const mod = require(`kubernetes-models/${group(value.apiVersion)}/${value.kind}`);
    const Model = mod[value.kind] ?? mod.default;
    new Model(value).validate();
  } catch (e) {
    problems++;
    console.error(`${where}: ${e.message}`);
  }
}

// Typed documents: one .ts file, checked with the packaged tsc.
const dir = mkdtempSync(join(tmpdir(), "adhoc-k8s-types-"));
try {
  let source = "";
  const imported = new Set();
  docs.forEach(({ value }, i) => {
    const path = `kubernetes-types/${value.apiVersion.includes("/") ? value.apiVersion.replace(".k8s.io", "") : "core/v1"}`;
    const alias = `${value.kind}_${group(value.apiVersion).replace(/[^A-Za-z0-9]/g, "_")}`;
    if (!imported.has(alias)) {
      source += `import type { ${value.kind} as ${alias} } from "${path}";\n`;
      imported.add(alias);
    }
    source += `export const doc${i}: ${alias} = ${JSON.stringify(value, null, 1)};\n`;
  });
  writeFileSync(join(dir, "manifests.ts"), source);
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, module: "esnext", moduleResolution: "node", target: "es2020",
        typeRoots: [], types: [], baseUrl: here, paths: { "kubernetes-types/*": [join(here, "node_modules/kubernetes-types/*")] },
      },
      files: [join(dir, "manifests.ts")],
    }),
  );
  try {
    execFileSync(process.execPath, [join(here, "node_modules/typescript/bin/tsc"), "-p", join(dir, "tsconfig.json")], { stdio: "pipe" });
  } catch (e) {
    problems++;
    console.error(`tsc --strict over the typed documents:\n${e.stdout}${e.stderr}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (problems) process.exit(1);
console.log(`${docs.length} Kubernetes documents valid (schemas and types)`);
