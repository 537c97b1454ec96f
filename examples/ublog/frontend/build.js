#!/usr/bin/env node
// Builds src/ into dist/: assets copied under a content hash (so nginx can cache them forever),
// index.html pointing at them, and version.json. No dependencies, no network, deterministic.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const root = __dirname;
const src = path.join(root, "src");
const dist = path.join(root, "dist");
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));

// The release folder is served by nginx workers that may run as another user than the build:
// everything must be world-readable whatever the umask.
function write(file, content) {
  fs.writeFileSync(file, content);
  fs.chmodSync(file, 0o644);
}

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(path.join(dist, "assets"), { recursive: true });
fs.chmodSync(dist, 0o755);
fs.chmodSync(path.join(dist, "assets"), 0o755);

const names = {};
for (const name of ["app.js", "style.css"]) {
  const content = fs.readFileSync(path.join(src, name));
  const hash = crypto.createHash("sha256").update(content).digest("hex").slice(0, 10);
  const ext = path.extname(name);
  const hashed = `${path.basename(name, ext)}.${hash}${ext}`;
  write(path.join(dist, "assets", hashed), content);
  names[name] = `/assets/${hashed}`;
}

const index = fs
  .readFileSync(path.join(src, "index.html"), "utf8")
  .replaceAll("%APP_JS%", names["app.js"])
  .replaceAll("%STYLE_CSS%", names["style.css"])
  .replaceAll("%VERSION%", pkg.version);
write(path.join(dist, "index.html"), index);
write(path.join(dist, "version.json"), JSON.stringify({ name: pkg.name, version: pkg.version }) + "\n");

console.log(`built ${pkg.name} ${pkg.version} into dist/: ${Object.values(names).join(", ")}`);
