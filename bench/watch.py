#!/usr/bin/env python3
"""From the DNS answer change to the /watch event: failover-dns with `hold = true` over two real
backend processes; a client follows GET /watch; each run kills the primary backend (SIGKILL),
notes when DNS first answers the standby (a UDP query every 1 ms) and when the answer_changed
event arrives, then restarts the primary and waits for the failback. Prints p50/p95/max of
(event - DNS change); negative means the event came first. Loopback only; loops are bounded.

Usage: bench/watch.py [runs, default 20]   (after `cargo build --release`)
"""

import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import failover  # noqa: E402  (its backend and DNS query helpers)

API = ("127.0.0.1", 5389)


def start(workdir):
    config = os.path.join(workdir, "watch.toml")
    with open(os.path.join(workdir, "bench.zone"), "w") as f:
        f.write(failover.ZONE)
    with open(config, "w") as f:
        f.write(f"""[server]
listen = ["{failover.DNS[0]}:{failover.DNS[1]}"]
http = "{API[0]}:{API[1]}"
rate_limit = 0
[[zone]]
origin = "bench.test."
file = "bench.zone"
[[service]]
name = "{failover.NAME}"
ttl = 5
members = ["{failover.PRIMARY}", "{failover.STANDBY}"]
[service.check]
kind = "tcp"
port = {failover.PORT}
interval = "1s"
timeout = "200ms"
fast_interval = "10ms"
hold = true
rise = 2
fall = 2
""")
    return subprocess.Popen([failover.BINARY, "run", "--config", config], stderr=subprocess.DEVNULL)


def follow(events):
    """Appends (arrival time, event JSON) for every answer_changed event, forever."""
    request = urllib.request.Request(f"http://{API[0]}:{API[1]}/watch",
                                     headers={"Accept": "text/event-stream"})
    with urllib.request.urlopen(request) as stream:
        event, data = None, ""
        for raw in stream:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif not line and event:
                if event == "answer_changed":
                    events.append((time.monotonic(), json.loads(data)))
                event, data = None, ""


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as workdir:
        standby = failover.start_backend(failover.STANDBY)
        primary = failover.start_backend(failover.PRIMARY)
        server = start(workdir)
        try:
            failover.wait_for("the server", lambda: failover.query_a(failover.NAME) == [failover.PRIMARY], 30)
            events = []
            threading.Thread(target=follow, args=(events,), daemon=True).start()
            time.sleep(0.5)  # the stream's first event (the snapshot) is not measured
            lags = []
            for _ in range(runs):
                time.sleep(1 + random.random())
                seen = len(events)
                primary.send_signal(signal.SIGKILL)
                primary.wait()
                deadline = time.monotonic() + 10
                while failover.query_a(failover.NAME, timeout=0.05) != [failover.STANDBY]:
                    if time.monotonic() > deadline:
                        sys.exit("no failover within 10 s")
                    time.sleep(0.001)
                changed = time.monotonic()
                failover.wait_for("the event", lambda: any(
                    e[1]["to"] == [failover.STANDBY] for e in events[seen:]), 10)
                arrived = next(e[0] for e in events[seen:] if e[1]["to"] == [failover.STANDBY])
                lags.append(arrived - changed)
                primary = failover.start_backend(failover.PRIMARY)
                failover.wait_for("the failback",
                                  lambda: failover.query_a(failover.NAME) == [failover.PRIMARY], 30)
            ms = sorted(1000 * v for v in lags)
            p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
            print(f"{runs} runs: /watch event after the DNS change (ms; negative: before)")
            print(f"p50 {statistics.median(ms):.1f}  p95 {p95:.1f}  max {ms[-1]:.1f}  min {ms[0]:.1f}")
        finally:
            for process in (server, primary, standby):
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
