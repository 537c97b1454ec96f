#!/usr/bin/env python3
"""bench/env_memory.py: the memory of one running adhoc environment, per service and for its
Redis, from /proc/PID/smaps_rollup of every process of each task's process group.

Usage: adhoc --json status ENV > status.json
       bench/env_memory.py status.json HOME_ENV_DIR [--processes]
HOME_ENV_DIR is $ADHOC_HOME/envs/ENV (its redis/redis.pid names the environment's Redis).

Columns (MiB):
  RSS      resident pages, every shared page counted in full in every process (what
           `adhoc status` reports; summing it over processes counts shared pages many times)
  PSS      proportional set size: each page divided by the number of processes mapping it,
           on the whole machine; the honest share of one environment when processes share
           pages (a fork's copy-on-write pages, the interpreter's and libraries' files)
  private  pages no other process maps (USS): what stopping the process would give back
  shared   RSS - private
With --processes, one row per process as well.
"""
import json
import os
import sys


def rollup(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[-1] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        return None
    return out


def pgid_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return int(s[s.rindex(")") + 2:].split()[2])


def cmd_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def group(pgid):
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and pgid_of(int(name)) == pgid:
            pids.append(int(name))
    return sorted(pids)


def measure(pids):
    rows = []
    for pid in pids:
        r = rollup(pid)
        if r is None:
            continue
        private = r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)
        rows.append({"pid": pid, "cmd": cmd_of(pid), "rss": r.get("Rss", 0),
                     "pss": r.get("Pss", 0), "private": private})
    return rows


def main():
    status = json.load(open(sys.argv[1]))
    env_dir = sys.argv[2]
    detail = "--processes" in sys.argv
    mib = lambda kb: f"{kb / 1024:.0f}"
    lines = []
    total = {"rss": 0, "pss": 0, "private": 0}
    print("| service | processes | RSS MiB | PSS MiB | private MiB | shared MiB |")
    print("|---|---:|---:|---:|---:|---:|")

    def row(name, rows):
        s = {k: sum(r[k] for r in rows) for k in ("rss", "pss", "private")}
        for k in total:
            total[k] += s[k]
        print(f"| {name} | {len(rows)} | {mib(s['rss'])} | {mib(s['pss'])} | "
              f"{mib(s['private'])} | {mib(s['rss'] - s['private'])} |")
        for r in rows:
            lines.append(f"| {name} | {r['pid']} | {mib(r['rss'])} | {mib(r['pss'])} | "
                         f"{mib(r['private'])} | {r['cmd'][:90]} |")

    for s in status["services"]:
        rows = []
        for t in s["tasks"]:
            pgid = pgid_of(t["pid"]) if t.get("pid") else None
            if pgid:
                rows += measure(group(pgid))
        row(s["name"], rows)
    services = dict(total)
    redis_rows = []
    try:
        with open(os.path.join(env_dir, "redis", "redis.pid")) as f:
            redis_rows = measure([int(f.read().strip())])
    except (OSError, ValueError):
        pass
    print(f"| all services | | {mib(services['rss'])} | {mib(services['pss'])} | "
          f"{mib(services['private'])} | {mib(services['rss'] - services['private'])} |")
    row("Redis", redis_rows)
    print(f"| environment (services + Redis) | | {mib(total['rss'])} | {mib(total['pss'])} | "
          f"{mib(total['private'])} | {mib(total['rss'] - total['private'])} |")
    if detail:
        print()
        print("| service | pid | RSS MiB | PSS MiB | private MiB | command |")
        print("|---|---:|---:|---:|---:|---|")
        print("\n".join(lines))


main()
