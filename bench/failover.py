#!/usr/bin/env python3
"""Failover latency: from the moment the primary dies to the first DNS answer naming the standby.

For each check kind (tcp, http) and fall (2, 3), with interval 200 ms and timeout 200 ms, the
primary is killed (the process exits: connections refused, "RST") and hung (SIGSTOP: the
kernel still accepts connections, nothing answers) RUNS times each, at a random phase of the
check interval. A UDP query is sent every 2 ms from the kill until the answer is the standby.
Prints p50/p95/max per case. Everything runs on loopback addresses; loops are bounded.

Usage: bench/failover.py [runs per case, default 20] [servers, default failover-dns;
e.g. failover-dns,gdnsd,pdns]   (builds nothing: run `cargo build --release` first).
For failover-dns: HOLD=1 adds `hold = true` and `fast_interval = "10ms"`; INTERVAL=1s sets its
interval (default 200ms); MODES=rst and FALLS=2 pick cases (default: all). gdnsd runs
with its fastest monitoring (interval 2 s, its minimum; timeout 1 s; down_thresh = fall).
"""

import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "failover-dns")
DNS = ("127.0.0.1", 5388)
PRIMARY, STANDBY, PORT = "127.0.0.21", "127.0.0.22", 5302
NAME = "www.bench.test."

BACKEND = r"""
import http.server, socketserver, sys
class Health(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as any real server: a held http check uses it
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args): pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    def handle_error(self, request, client_address): pass  # checkers that gave up: fine
Server((sys.argv[1], int(sys.argv[2])), Health).serve_forever()
"""

ZONE = """$ORIGIN bench.test.
$TTL 3600
@ IN SOA ns1 hostmaster 1 7200 900 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.1
"""


def query_a(name, timeout=0.5, server=None):
    """The A addresses `server` (default: the benchmark's DNS address) answers for `name` now,
    or None if no answer comes within `timeout` seconds."""
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, server or DNS)
        try:
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            return None
    ancount = struct.unpack(">H", data[6:8])[0]
    i = skip_name(data, 12) + 4  # the question
    addresses = []
    for _ in range(ancount):
        i = skip_name(data, i)
        rtype, _, _, rdlength = struct.unpack(">HHIH", data[i:i + 10])
        i += 10
        if rtype == 1:
            addresses.append(socket.inet_ntoa(data[i:i + 4]))
        i += rdlength
    return addresses


def skip_name(data, i):
    """The offset after the (possibly compressed) name at `i`."""
    while True:
        if data[i] & 0xC0 == 0xC0:
            return i + 2
        if data[i] == 0:
            return i + 1
        i += data[i] + 1


def wait_for(what, condition, limit):
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {limit}s waiting for {what}")
        time.sleep(0.005)


def start_backend(ip):
    return subprocess.Popen([sys.executable, "-c", BACKEND, ip, str(PORT)])


INTERVAL = os.environ.get("INTERVAL", "200ms")
HOLD = os.environ.get("HOLD") == "1"


def seconds(text):
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def start_failover_dns(kind, fall, workdir):
    """failover-dns with interval INTERVAL (200 ms), timeout 200 ms; HOLD=1 holds connections."""
    config = os.path.join(workdir, f"{kind}-{fall}.toml")
    path_line = 'path = "/health"\n' if kind == "http" else ""
    if HOLD:
        path_line += 'hold = true\nfast_interval = "10ms"\n'
    with open(config, "w") as f:
        f.write(f"""[server]
listen = ["{DNS[0]}:{DNS[1]}"]
rate_limit = 0
[[zone]]
origin = "bench.test."
file = "bench.zone"
[[service]]
name = "{NAME}"
ttl = 5
members = ["{PRIMARY}", "{STANDBY}"]
[service.check]
kind = "{kind}"
port = {PORT}
{path_line}interval = "{INTERVAL}"
timeout = "200ms"
rise = 2
fall = {fall}
""")
    return subprocess.Popen([BINARY, "run", "--config", config], stderr=subprocess.DEVNULL)


def start_gdnsd(kind, fall, workdir):
    """gdnsd with a simplefo DYNA record and its fastest monitoring: interval 2 s (its minimum),
    timeout 1 s, down_thresh = fall."""
    directory = os.path.join(workdir, f"gdnsd-{kind}-{fall}")
    os.makedirs(os.path.join(directory, "zones"), exist_ok=True)
    with open(os.path.join(directory, "zones", "bench.test"), "w") as f:
        f.write(ZONE + "www 5 DYNA simplefo!www\n")
    plugin = "http_status, url_path => /health" if kind == "http" else "tcp_connect"
    with open(os.path.join(directory, "config"), "w") as f:
        f.write(f"""options => {{
    listen => [ {DNS[0]}:{DNS[1]} ]
    run_dir => {directory}/run
    state_dir => {directory}/state
}}
service_types => {{
    member => {{ plugin => {plugin}, port => {PORT}, interval => 2, timeout => 1,
                 down_thresh => {fall}, ok_thresh => 2, up_thresh => 2 }}
}}
plugins => {{
    simplefo => {{ www => {{ service_types => [ member ], primary => {PRIMARY}, secondary => {STANDBY} }} }}
}}
""")
    return subprocess.Popen(["/usr/sbin/gdnsd", "-c", directory, "start"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_pdns(kind, fall, workdir):
    """PowerDNS 4.7 with a LUA record, health checks every second (the least its setting takes),
    check timeout 1 s, and its caches off so they do not hide the change. It has no fall
    count: one failed check marks an address down. ifportup answers every live address;
    ifurlup takes address sets, so it fails over in order."""
    directory = os.path.join(workdir, f"pdns-{kind}")
    os.makedirs(directory, exist_ok=True)
    if kind == "tcp":
        lua = f"ifportup({PORT}, {{'{PRIMARY}', '{STANDBY}'}}, {{selector='all', timeout=1}})"
    else:
        lua = (f"ifurlup('http://www.bench.test:{PORT}/health', "
               f"{{{{'{PRIMARY}'}}, {{'{STANDBY}'}}}}, {{timeout=1}})")
    with open(os.path.join(directory, "bench.zone"), "w") as f:
        f.write(ZONE + f'www 5 IN LUA A "{lua}"\n')
    with open(os.path.join(directory, "named.conf"), "w") as f:
        f.write(f'zone "bench.test" {{ type master; file "{directory}/bench.zone"; }};\n')
    with open(os.path.join(directory, "pdns.conf"), "w") as f:
        f.write(f"""launch=bind
bind-config={directory}/named.conf
local-address={DNS[0]}
local-port={DNS[1]}
enable-lua-records=yes
lua-health-checks-interval=1
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
socket-dir={directory}
guardian=no
daemon=no
disable-syslog=yes
""")
    return subprocess.Popen(["pdns_server", f"--config-dir={directory}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(start_server, kind, fall, mode, runs, workdir, interval):
    standby = start_backend(STANDBY)
    primary = start_backend(PRIMARY)
    server = start_server(kind, fall, workdir)
    results = []
    try:
        # Healthy: the primary is answered (PowerDNS's ifportup answers both members).
        wait_for("the server", lambda: PRIMARY in (query_a(NAME) or []), 30)
        for _ in range(runs):
            time.sleep(0.5 + random.random() * interval)  # settle, then a random check phase
            killed = time.monotonic()
            if mode == "rst":
                primary.kill()
                primary.wait()
            else:
                primary.send_signal(signal.SIGSTOP)
            deadline = killed + 30
            while query_a(NAME) != [STANDBY]:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{kind} fall {fall} {mode}: no failover within 30s")
                time.sleep(0.002)
            results.append(time.monotonic() - killed)
            if mode == "rst":
                primary = start_backend(PRIMARY)
            else:
                primary.send_signal(signal.SIGCONT)
            wait_for("the failback", lambda: PRIMARY in (query_a(NAME) or []), 60)
    finally:
        for process in (server, primary, standby):
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait()
    return results


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    servers = sys.argv[2].split(",") if len(sys.argv) > 2 else ["failover-dns"]
    if not os.path.exists(BINARY):
        raise SystemExit("build first: cargo build --release")
    random.seed(1)
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "bench.zone"), "w") as f:
            f.write(ZONE)
        print(f"failover latency, {runs} runs per case")
        print(f"{'server':13} {'check':6} {'fall':>4} {'primary':>9} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'max ms':>8}")
        for server in servers:
            start_server, interval, falls = {
                "failover-dns": (start_failover_dns, seconds(INTERVAL), (2, 3)),
                "gdnsd": (start_gdnsd, 2.0, (2, 3)),
                "pdns": (start_pdns, 1.0, (1,)),
            }[server]
            falls = [f for f in falls if str(f) in os.environ.get("FALLS", str(f)).split(",")]
            modes = os.environ.get("MODES", "rst,hang").split(",")
            for kind in ("tcp", "http"):
                for fall in falls:
                    for mode in modes:
                        results = measure(start_server, kind, fall, mode, runs, workdir, interval)
                        ms = sorted(1000 * r for r in results)
                        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
                        print(f"{server:13} {kind:6} {fall:>4} {mode:>9} "
                              f"{statistics.median(ms):8.0f} {p95:8.0f} {ms[-1]:8.0f}",
                              flush=True)


if __name__ == "__main__":
    main()
