import os
import signal
import sys
import time

from common import cache


def stop(signum, frame):
    # A worker finishing its job: a moment (longer when a test wants a slow stop), then out.
    time.sleep(float(os.environ.get("WORKER_STOP_SECONDS", "0.2")))
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
r = cache()
while True:
    r.incr("heartbeats")
    time.sleep(0.2)
