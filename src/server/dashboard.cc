#include "server/dashboard.h"

namespace adhoc::server {

namespace {

constexpr char kPage[] = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>adhoc</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e3e3e3; white-space: nowrap; }
  th { font-weight: 600; color: #555; }
  td.num, th.num { text-align: right; }
  tr.total td { font-weight: 600; border-top: 2px solid #bbb; }
  .status { padding: .1rem .45rem; border-radius: .6rem; background: #eee; }
  .running { background: #d9f2df; } .sleeping { background: #e4e9f7; }
  .failed { background: #f8d7d7; } .creating, .updating, .destroying { background: #fdf0cc; }
  button { margin-right: .3rem; }
  #message { margin: .8rem 0; color: #a00; min-height: 1.2em; }
</style>
</head>
<body>
<h1>adhoc: environments</h1>
<div id="message"></div>
<table>
  <thead><tr><th>environment</th><th>status</th><th>versions</th><th>owner</th><th>age</th>
  <th>last request</th><th>time left</th><th class="num">memory</th><th class="num">disk</th><th></th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script>
"use strict";
const rows = document.getElementById("rows");
const message = document.getElementById("message");

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function ago(ms) {
  if (ms === undefined || ms === null) return "-";
  let s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return span(s) + " ago";
}
function span(s) {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.round(s / 60) + "m";
  if (s < 86400) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}
function bytes(n) {
  if (!n) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}
async function api(method, path, body) {
  const init = {method, credentials: "same-origin", headers: {}};
  if (method !== "GET") {
    init.headers["X-Adhoc-Dashboard"] = "1";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body || {});
  }
  const res = await fetch(path, init);
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((json.error && json.error.message) || (res.status + " " + res.statusText));
  return json;
}
function action(label, env, verb, confirmText) {
  const b = document.createElement("button");
  b.textContent = label;
  b.onclick = async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    b.disabled = true;
    message.textContent = label + " " + env + "...";
    try {
      await api("POST", "/v1/environments/" + encodeURIComponent(env) + "/" + verb, {wait: true});
      message.textContent = "";
    } catch (e) {
      message.textContent = label + " " + env + ": " + e.message;
    }
    refresh();
  };
  return b;
}
function render(list) {
  rows.replaceChildren();
  for (const e of list.environments) {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const link = document.createElement("a");
    link.href = e.url;
    link.textContent = e.name;
    name.appendChild(link);
    tr.appendChild(name);
    const status = cell("");
    const badge = document.createElement("span");
    badge.className = "status " + e.status;
    badge.textContent = e.status;
    status.appendChild(badge);
    tr.appendChild(status);
    const versions = Object.entries(e.versions || {}).map(([image, v]) => image + " " + v.ref);
    tr.appendChild(cell(versions.join(", ")));
    tr.appendChild(cell(e.owner || "-"));
    tr.appendChild(cell(ago(e.created_ms).replace(" ago", "")));
    tr.appendChild(cell(ago(e.last_request_ms)));
    tr.appendChild(cell(e.expires_ms ? span(Math.max(0, Math.round((e.expires_ms - Date.now()) / 1000))) : "never"));
    tr.appendChild(cell(bytes(e.memory_bytes), "num"));
    tr.appendChild(cell(bytes(e.disk && e.disk.total_bytes), "num"));
    const actions = document.createElement("td");
    if (e.status === "running") actions.appendChild(action("sleep", e.name, "sleep"));
    if (e.status === "sleeping") actions.appendChild(action("wake", e.name, "wake"));
    actions.appendChild(action("destroy", e.name, "destroy",
        "Destroy " + e.name + "? Its database, Redis and files go with it."));
    tr.appendChild(actions);
    rows.appendChild(tr);
  }
  const t = list.total || {};
  const total = document.createElement("tr");
  total.className = "total";
  total.appendChild(cell((t.environments || 0) + " environments"));
  total.appendChild(cell((t.running || 0) + " running, " + (t.sleeping || 0) + " sleeping"));
  for (let i = 0; i < 5; i++) total.appendChild(cell(""));
  total.appendChild(cell(bytes(t.memory_bytes), "num"));
  total.appendChild(cell(bytes(t.disk_bytes), "num"));
  total.appendChild(cell(""));
  rows.appendChild(total);
}
async function refresh() {
  try {
    render(await api("GET", "/v1/environments"));
  } catch (e) {
    message.textContent = e.message;
  }
}
refresh();
setInterval(refresh, 5000);
</script>
</body>
</html>
)PAGE";

}  // namespace

const std::string& DashboardPage() {
  static const std::string page = kPage;
  return page;
}

}  // namespace adhoc::server
