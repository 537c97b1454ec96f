import os
import sys
import time

from common import db

print("migrating", os.environ["ENV_NAME"], flush=True)
time.sleep(float(os.environ.get("MIGRATE_SLEEP", "0")))
if os.environ.get("MIGRATE_FAIL") == "1":
    print("migration failed on purpose", flush=True)
    sys.exit(1)
with db() as conn, conn.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, body text NOT NULL)")
static = os.path.join(os.environ["STATIC_DIR"], "static")
os.makedirs(static, exist_ok=True)
with open(os.path.join(static, "hello.txt"), "w") as f:
    f.write("static of " + os.environ["ENV_NAME"] + "\n")
print("migrated", flush=True)
