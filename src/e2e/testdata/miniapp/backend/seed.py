import os
import time

from common import db

# Tests make an `up` slower than they like with SEED_SECONDS (an env file's [env]).
time.sleep(float(os.environ.get("SEED_SECONDS", "0")))
with db() as conn, conn.cursor() as cur:
    cur.execute("INSERT INTO items (body) VALUES ('seed')")
print("seeded", flush=True)
