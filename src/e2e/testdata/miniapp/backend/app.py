import json
import os
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import cache, db


class Handler(BaseHTTPRequestHandler):
    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/health":
            return self.answer(200, {"ok": True})
        if self.path == "/api/version":
            return self.answer(200, {"version": os.environ.get("VERSION", "")})
        if self.path == "/api/env":
            return self.answer(200, {"env": os.environ["ENV_NAME"], "pid": os.getpid()})
        if self.path == "/api/items":
            with db() as conn, conn.cursor() as cur:
                cur.execute("SELECT body FROM items ORDER BY id")
                return self.answer(200, [row[0] for row in cur.fetchall()])
        if self.path.split("?")[0] == "/api/headers":
            # What reached the app: the router must not pass on credentials it consumed.
            headers = {k.lower(): v for k, v in self.headers.items()}
            return self.answer(200, {"path": self.path, "headers": headers})
        if self.path.split("?")[0] == "/api/slow":
            # A request still in flight when the environment is put to sleep.
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            time.sleep(float(query.get("seconds", ["3"])[0]))
            return self.answer(200, {"slow": True})
        if self.path == "/api/heartbeats":
            return self.answer(200, {"heartbeats": int(cache().get("heartbeats") or 0)})
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        if self.path == "/api/items":
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            with db() as conn, conn.cursor() as cur:
                cur.execute("INSERT INTO items (body) VALUES (%s)", (body,))
            return self.answer(201, {"created": body})
        self.answer(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
