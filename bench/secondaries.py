#!/usr/bin/env python3
"""From our answer change to each secondary's: Knot, NSD and BIND as TSIG-keyed secondaries of
failover-dns, fed by NOTIFY and IXFR. Each run kills the primary backend (its listener closes:
connections refused), notes when failover-dns first answers the standby and when each secondary
does (a UDP query to each every 1 ms), then brings the primary back and waits for everyone to
fail back, and waits SETTLE seconds. Prints p50/p95/max of (secondary's change - ours) per secondary, and our own
detection time for reference. Everything runs on loopback; loops are bounded.

Needs: apt-get install -y knot nsd bind9; `cargo build --release` first.
Usage: bench/secondaries.py [runs, default 20]
"""

import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import failover  # noqa: E402  (its DNS query and wait helpers)
from failover import BINARY, wait_for  # noqa: E402
OURS = ("127.0.0.41", 5441)
KNOT = ("127.0.0.42", 5442)
NSD = ("127.0.0.43", 5443)
BIND = ("127.0.0.1", 5444)  # BIND listens only on addresses an interface has
BIND_SOURCE = "127.0.0.44"
PRIMARY, STANDBY, PORT = "127.0.0.45", "127.0.0.46", 5445
NAME = "www.svc.bench.test."
SETTLE = 3.0  # seconds between one run's failback and the next kill
ZONE_NAME = "svc.bench.test."
KEY = "xfr.bench.test."
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="

ZONE = f"""$ORIGIN {ZONE_NAME}
$TTL 3600
@ IN SOA ns1 hostmaster 1 300 60 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.1
"""


def answer(server, name=NAME, timeout=0.2):
    """The A addresses `server` answers for `name`, or None (also while it is not listening
    yet: a refused datagram)."""
    try:
        return failover.query_a(name, timeout, server)
    except OSError:
        return None


class Listener:
    """A member: a TCP listener (tcp checks connect to it), closed to kill it."""

    def __init__(self, ip):
        self.ip = ip
        self.sock = None
        self.start()

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.ip, PORT))
        self.sock.listen(1024)

    def kill(self):
        self.sock.close()


def start_all(work):
    with open(os.path.join(work, "svc.zone"), "w") as f:
        f.write(ZONE)
    notify = ", ".join(f'"{ip}:{port}"' for ip, port in (KNOT, NSD, BIND))
    with open(os.path.join(work, "fdns.toml"), "w") as f:
        f.write(f"""[server]
listen = ["{OURS[0]}:{OURS[1]}"]
state_file = "{work}/state.json"
rate_limit = 0

[[key]]
name = "{KEY}"
secret = "{SECRET}"

[[zone]]
origin = "{ZONE_NAME}"
file = "svc.zone"
allow_transfer = ["127.0.0.0/8"]
transfer_key = "{KEY}"
notify = [{notify}]

[[service]]
name = "{NAME}"
ttl = 5
members = ["{PRIMARY}", "{STANDBY}"]
[service.check]
kind = "tcp"
port = {PORT}
interval = "200ms"
timeout = "200ms"
rise = 2
fall = 2
""")
    log = open(os.path.join(work, "fdns.log"), "w")
    procs = [subprocess.Popen([BINARY, "run", "--config", os.path.join(work, "fdns.toml")],
                              stdout=log, stderr=log)]
    knot = os.path.join(work, "knot")
    os.makedirs(knot)
    with open(os.path.join(knot, "knot.conf"), "w") as f:
        f.write(f"""server:
    rundir: {knot}
    listen: {KNOT[0]}@{KNOT[1]}
database:
    storage: {knot}
key:
  - id: {KEY}
    algorithm: hmac-sha256
    secret: {SECRET}
remote:
  - id: primary
    address: {OURS[0]}@{OURS[1]}
    key: {KEY}
    via: {KNOT[0]}
acl:
  - id: notify
    address: {OURS[0]}
    action: notify
    key: {KEY}
template:
  - id: default
    storage: {knot}
zone:
  - domain: {ZONE_NAME}
    master: primary
    acl: notify
    zonefile-sync: -1
""")
    procs.append(subprocess.Popen(["/usr/sbin/knotd", "-c", os.path.join(knot, "knot.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    nsd = os.path.join(work, "nsd")
    os.makedirs(nsd)
    with open(os.path.join(nsd, "nsd.conf"), "w") as f:
        f.write(f"""server:
  ip-address: {NSD[0]}@{NSD[1]}
  port: {NSD[1]}
  username: ""
  chroot: ""
  zonesdir: "{nsd}"
  database: ""
  pidfile: "{nsd}/nsd.pid"
  xfrdfile: "{nsd}/xfrd.state"
  zonelistfile: "{nsd}/zone.list"
  logfile: "{nsd}/nsd.log"
  xfrd-reload-timeout: 0
remote-control:
  control-enable: no
key:
  name: {KEY}
  algorithm: hmac-sha256
  secret: "{SECRET}"
zone:
  name: {ZONE_NAME}
  zonefile: "{nsd}/secondary.zone"
  request-xfr: {OURS[0]}@{OURS[1]} {KEY}
  allow-notify: {OURS[0]} {KEY}
  outgoing-interface: {NSD[0]}
""")
    procs.append(subprocess.Popen(["/usr/sbin/nsd", "-d", "-c", os.path.join(nsd, "nsd.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    bind = os.path.join(work, "bind")
    os.makedirs(bind)
    with open(os.path.join(bind, "named.conf"), "w") as f:
        f.write(f"""options {{
  directory "{bind}";
  listen-on port {BIND[1]} {{ {BIND[0]}; }};
  listen-on-v6 {{ none; }};
  pid-file "{bind}/named.pid";
  session-keyfile "{bind}/session.key";
  managed-keys-directory "{bind}";
  recursion no;
  notify no;
  transfer-source {BIND_SOURCE};
  query-source address {BIND_SOURCE};
}};
controls {{ }};
key "{KEY}" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "{ZONE_NAME}" {{
  type secondary;
  file "{bind}/secondary.zone";
  primaries port {OURS[1]} {{ {OURS[0]} key "{KEY}"; }};
  allow-notify {{ {OURS[0]}; }};
}};
""")
    procs.append(subprocess.Popen(["/usr/sbin/named", "-f", "-c", os.path.join(bind, "named.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    primary, _standby = Listener(PRIMARY), Listener(STANDBY)
    servers = {"failover-dns": OURS, "Knot": KNOT, "NSD": NSD, "BIND": BIND}
    with tempfile.TemporaryDirectory() as work:
        procs = start_all(work)
        try:
            for name, addr in servers.items():
                wait_for(f"{name} to answer the primary", lambda a=addr: answer(a) == [PRIMARY], 30)
            lags = {name: [] for name in servers if name != "failover-dns"}
            detection = []
            for _ in range(runs):
                # Runs apart as failovers are: Knot refreshes a zone at most every 2 s
                # (refresh-min-interval), so a kill right after the last failback would measure
                # that. Then a random phase of the check interval.
                time.sleep(SETTLE + random.uniform(0, 0.2))
                killed = time.monotonic()
                primary.kill()
                changed = {}
                deadline = killed + 10
                while len(changed) < len(servers) and time.monotonic() < deadline:
                    for name, addr in servers.items():
                        if name not in changed and answer(addr, timeout=0.05) == [STANDBY]:
                            changed[name] = time.monotonic()
                    time.sleep(0.001)
                if len(changed) < len(servers):
                    sys.exit(f"not every server moved to the standby: {sorted(changed)}")
                detection.append(changed["failover-dns"] - killed)
                for name in lags:
                    lags[name].append(changed[name] - changed["failover-dns"])
                primary.start()
                for name, addr in servers.items():
                    wait_for(f"{name} to fail back", lambda a=addr: answer(a) == [PRIMARY], 10)
            print(f"{runs} runs {SETTLE:.0f} s apart; tcp checks every 200 ms, fall 2; NOTIFY + IXFR, TSIG hmac-sha256")
            print(f"{'server':<14} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   (after failover-dns changed)")
            for name, values in lags.items():
                ms = [v * 1000 for v in values]
                print(f"{name:<14} {statistics.median(ms):8.1f} {percentile(ms, 95):8.1f} {max(ms):8.1f}")
            ms = [v * 1000 for v in detection]
            print(f"{'(ours, from the kill)':<14} {statistics.median(ms):8.1f} {percentile(ms, 95):8.1f} {max(ms):8.1f}")
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
