from common import db

with db() as conn, conn.cursor() as cur:
    cur.execute("INSERT INTO items (body) VALUES ('seed')")
print("seeded", flush=True)
