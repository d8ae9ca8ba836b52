#!/usr/bin/env python3
"""What the hardening limits cost an attacker and the server (README "Limits and hardening").

Starts the release binary on loopback with 1,024 descriptors, a service of two healthy members
checked over HTTP every 200 ms, and the API; then, one after another, for SECONDS each:

  tcp    CLIENTS idle DNS TCP clients that reconnect as soon as they are cut
  api    CLIENTS API connections each sending a request head one header every 100 ms
  udp    one source sending SOA queries for a 2 KB TXT as fast as it can, with rate_limit on

and reports, for each: the server's RSS and CPU, connections cut, answer changes (must be 0),
how long a TCP query and GET /status take meanwhile, and for UDP the bytes the server sent per
byte it was sent (its amplification, from its own counts).

  bench/flood.py [SECONDS, default 20] [CLIENTS, default 5000]
  RATE_LIMIT=0 bench/flood.py ...   (the server's rate_limit; default: the server's default)
Needs python3 and a Rust toolchain; sends only to 127.0.0.0/8.
"""
import http.client
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "failover-dns")
DNS = ("127.0.0.77", 5377)
API = ("127.0.0.77", 8377)
MEMBERS = ("127.0.0.78", "127.0.0.79")
CHECK_PORT = 5378


def backend(ip):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, CHECK_PORT))
    listener.listen(1024)

    def answer(conn):
        try:
            conn.settimeout(2)
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        conn.close()

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=answer, args=(conn,), daemon=True).start()


def query(name, qtype=1):
    header = struct.pack(">HHHHHH", random.getrandbits(16), 0, 1, 0, 0, 1)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split("."))
    # EDNS with a 4096-byte buffer, as an amplifier's spoofed queries would ask.
    opt = b"\x00" + struct.pack(">HHIH", 41, 4096, 0, 0)
    return header + labels + b"\x00" + struct.pack(">HH", qtype, 1) + opt


def tcp_query_seconds():
    started = time.monotonic()
    try:
        with socket.create_connection(DNS, timeout=5) as conn:
            q = query("www.svc.example.test")
            conn.sendall(struct.pack(">H", len(q)) + q)
            length = struct.unpack(">H", conn.recv(2))[0]
            while length > 0:
                length -= len(conn.recv(length))
        return time.monotonic() - started
    except OSError:
        return None


def status_seconds():
    started = time.monotonic()
    try:
        conn = http.client.HTTPConnection(*API, timeout=5)
        conn.request("GET", "/status")
        conn.getresponse().read()
        return time.monotonic() - started
    except OSError:
        return None


def metric(name):
    try:
        conn = http.client.HTTPConnection(*API, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    except OSError:
        return float("nan")
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def top_up(open_, target, first_bytes=b""):
    """Opens up to 500 more connections to `target` (at most CLIENTS in all), each sending
    `first_bytes`, non-blocking afterwards."""
    for _ in range(500):
        if len(open_) >= CLIENTS:
            return
        try:
            s = socket.create_connection(target, timeout=1)
            if first_bytes:
                s.sendall(first_bytes)
            s.setblocking(False)
            open_.append(s)
        except OSError:
            return


def tcp_flood(stop):
    """Idle clients that reconnect as soon as the server cuts them."""
    open_ = []
    while not stop.is_set():
        top_up(open_, DNS)
        kept = []
        for s in open_:
            try:
                if s.recv(64) == b"":
                    s.close()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                continue
            kept.append(s)
        open_ = kept
        time.sleep(0.01)
    for s in open_:
        s.close()


def api_flood(stop):
    """Clients that send a request head one header every 100 ms, never finishing it."""
    open_ = []
    head = b"GET /status HTTP/1.1\r\nHost: %s:%d\r\n" % (API[0].encode(), API[1])
    while not stop.is_set():
        top_up(open_, API, head)
        kept = []
        for s in open_:
            try:
                s.send(b"X-Slow: 1\r\n")
                kept.append(s)
            except OSError:
                s.close()
        open_ = kept
        time.sleep(0.1)
    for s in open_:
        s.close()


BIG_QUERY = query("big.svc.example.test", 16)


def udp_flood(stop, counts):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    while not stop.is_set():
        for _ in range(200):
            try:
                s.sendto(BIG_QUERY, DNS)
                counts["queries"] += 1
            except BlockingIOError:
                pass
        while True:
            try:
                s.recv(65536)
            except BlockingIOError:
                break


def big_response_bytes():
    """The size of the whole answer to BIG_QUERY, asked once."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(BIG_QUERY, DNS)
        return len(s.recv(65536))


def main():
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    for ip in MEMBERS:
        threading.Thread(target=backend, args=(ip,), daemon=True).start()
    work = tempfile.mkdtemp()
    txt = " ".join('"%s"' % ("x" * 250) for _ in range(8))
    with open(os.path.join(ROOT, "zones", "svc.example.test.zone")) as f:
        zone = f.read() + f"big 300 IN TXT {txt}\n"
    with open(os.path.join(work, "svc.zone"), "w") as f:
        f.write(zone)
    config = os.path.join(work, "c.toml")
    with open(config, "w") as f:
        rate_limit = os.environ.get("RATE_LIMIT")
        f.write(f"""[server]
listen = ["{DNS[0]}:{DNS[1]}"]
http = "{API[0]}:{API[1]}"
{f"rate_limit = {rate_limit}" if rate_limit else ""}
[[zone]]
origin = "svc.example.test."
file = "svc.zone"
[[service]]
name = "www.svc.example.test."
members = ["{MEMBERS[0]}", "{MEMBERS[1]}"]
[service.check]
kind = "http"
port = {CHECK_PORT}
interval = "200ms"
timeout = "200ms"
""")
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen(["prlimit", "--nofile=1024:1024", BIN, "run", "--config", config],
                              stderr=log)
    try:
        deadline = time.monotonic() + 20
        while status_seconds() is None:
            if time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.05)
        time.sleep(1)  # two check rounds: both members up
        big = big_response_bytes()
        print(f"{SECONDS:.0f} s each, {CLIENTS} clients, 1,024 descriptors; idle RSS "
              f"{rss_mb(server.pid):.1f} MB")
        print(f"{'attack':6} {'RSS MB':>7} {'CPU %':>6} {'cut':>8} {'failovers':>9} "
              f"{'TCP query ms':>13} {'/status ms':>11} {'UDP out/in, to victim':>22}")
        for attack in ("tcp", "api", "udp"):
            stop = threading.Event()
            counts = {"queries": 0}
            before = {
                "udp": metric('failover_dns_queries_total{rcode="NOERROR",qtype="TXT",transport="udp"'),
                "slipped": metric('failover_dns_rate_limited_total{reason="slipped"'),
                "cut": metric("failover_dns_tcp_connections_dropped_total")
                + metric("failover_dns_api_connections_refused_total"),
                "failovers": metric("failover_dns_failovers_total"),
                "cpu": cpu_seconds(server.pid),
            }
            target = {"tcp": tcp_flood, "api": api_flood}.get(attack)
            args = (stop,) if target else (stop, counts)
            thread = threading.Thread(target=target or udp_flood, args=args, daemon=True)
            thread.start()
            started = time.monotonic()
            peak, tcp_times, status_times = 0.0, [], []
            while time.monotonic() - started < SECONDS:
                peak = max(peak, rss_mb(server.pid))
                tcp_times.append(tcp_query_seconds())
                status_times.append(status_seconds())
                time.sleep(0.5)
            cpu = (cpu_seconds(server.pid) - before["cpu"]) / (time.monotonic() - started) * 100
            stop.set()
            thread.join()
            cut = (metric("failover_dns_tcp_connections_dropped_total")
                   + metric("failover_dns_api_connections_refused_total") - before["cut"])
            failovers = metric("failover_dns_failovers_total") - before["failovers"]

            def worst(times):
                answered = [t for t in times if t is not None]
                lost = len(times) - len(answered)
                text = f"{max(answered) * 1000:.1f}" if answered else "-"
                return text + (f" ({lost} lost)" if lost else "")

            ratio = "-"
            if counts["queries"]:
                # What the server sent, per byte it was sent: whole answers, and the truncated
                # ones (header and question, no OPT) that slipped. IP and UDP headers included.
                sent = metric('failover_dns_queries_total{rcode="NOERROR",qtype="TXT",transport="udp"') - before["udp"]
                slipped = metric('failover_dns_rate_limited_total{reason="slipped"') - before["slipped"]
                out = (sent - slipped) * (big + 28) + slipped * (len(BIG_QUERY) - 11 + 28)
                seconds = time.monotonic() - started
                ratio = (f"{out / (counts['queries'] * (len(BIG_QUERY) + 28)):.2f}, "
                         f"{out / seconds / 1e6:.1f} MB/s")
            print(f"{attack:6} {peak:7.1f} {cpu:6.1f} {cut:8.0f} {failovers:9.0f} "
                  f"{worst(tcp_times):>13} {worst(status_times):>11} {ratio:>22}")
        limited = metric("failover_dns_rate_limited_total")
        print(f"UDP responses held back by rate limiting: {limited:.0f}")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
