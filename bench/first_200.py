#!/usr/bin/env python3
"""Waits until every URL has answered 200 once and prints the milliseconds since --since.

One process polls them all in turn, every 10 ms, with a connection per attempt: a loop of curl
processes (two per round) costs a good part of a core on a 2-core machine, which the thing being
measured then shares. bench/up.sh polls adhoc's router with it and bench/naive_up.sh its own
services, so both sides are measured the same way.

Usage: first_200.py --since EPOCH_MS [--host HOST] [--while-pid PID] [--timeout S] URL...
Exit status: 0 all answered; 1 timed out, or PID ended first (its failure is its own to tell).
"""
import argparse
import http.client
import os
import sys
import time
import urllib.parse


def status(url, host):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=5)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.request("GET", path, headers={"Host": host or parts.netloc, "Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--since", type=int, required=True, help="epoch milliseconds")
    parser.add_argument("--host", default="")
    parser.add_argument("--while-pid", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()
    waiting = list(args.urls)
    deadline = time.time() + args.timeout
    while waiting:
        waiting = [u for u in waiting if status(u, args.host) != 200]
        if not waiting:
            break
        if time.time() > deadline:
            print("no 200 from %s within %.0f s" % (" ".join(waiting), args.timeout),
                  file=sys.stderr)
            return 1
        if args.while_pid and not alive(args.while_pid):
            # One more round: it may have ended just after making the last one answer.
            waiting = [u for u in waiting if status(u, args.host) != 200]
            if waiting:
                return 1
            break
        time.sleep(0.01)
    print(int(time.time() * 1000) - args.since)
    return 0


if __name__ == "__main__":
    sys.exit(main())
