#!/usr/bin/env python3
"""The check plane at scale: 10,000 services with 20,000 members, each checked every second.

Members are loopback addresses on a closed port (connections refused at once), except the
first service's two, which get real listeners. The server runs pinned to CPU 0. Prints:
the server's CPU (share of one core) and RSS with only checks running; the kernel's own cost
of the same connects done in a tight loop (the floor any TCP check pays, with a socket reused
as failover-dns does and with a new one each time); then the time from
killing the first service's primary to its answer changing, without DNS load and with
dnsperf sending `rate` queries/s from CPU 1 (needs dnsperf). Loopback only; loops bounded.

Usage: bench/scale.py [services, default 10000] [rate, default 100000] [kind: tcp (default) or
http, for every service but the first, whose members are plain TCP listeners] [members: closed
(default: a closed port, refused at once) or live (one listener on CPU 1 accepts for them all;
tcp only)]
(run `cargo build --release` first)
"""

import ctypes
import errno
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from failover import query_a  # noqa: E402  (the same tiny DNS client)
import failover  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "failover-dns")
DNS = ("127.0.0.1", 5387)
CLOSED_PORT, LIVE_PORT, ACCEPTOR_PORT = 9, 5303, 5304
PRIMARY, STANDBY = "127.0.0.31", "127.0.0.32"
KILLS = 5


def member(n):
    """The n-th closed-port member address: 127.64.0.1 upwards."""
    return f"127.{64 + n // 65024}.{n // 254 % 256}.{n % 254 + 1}"


def cpu_seconds(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        fields = open(f"/proc/{pid}/task/{task}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Listener:
    """A TCP listener that accepts and closes, until closed (then: connection refused)."""

    def __init__(self, ip):
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((ip, LIVE_PORT))
        self.socket.listen(128)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                connection, _ = self.socket.accept()
                connection.close()
            except OSError:
                return

    def close(self):
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the
        # kernel socket listening until the next connection arrived.
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.socket.close()


LIBC = ctypes.CDLL(None, use_errno=True)
UNSPECIFIED = struct.pack("H14x", socket.AF_UNSPEC)  # a sockaddr that disconnects a TCP socket


def connect_floor(members, port, reuse, count=100000):
    """Kernel CPU of the bare minimum a TCP check does, in µs per check, measured in a tight
    loop on CPU 0: a non-blocking connect to a loopback port, and either a new socket each time
    closed with a reset (reuse=False), or, as failover-dns does, one socket asked how the
    attempt ended by connecting again (which disconnects it when refused) and disconnected
    with a reset (connect with AF_UNSPEC) when accepted. On loopback the kernel also does the
    member's side (the RST, or the handshake) in the caller's time."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    s = None
    try:
        before = os.times()
        for i in range(count):
            if s is None:
                s = socket.socket()
                s.setblocking(False)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            target = (member(i % members), port)
            s.connect_ex(target)
            if reuse:
                if s.connect_ex(target) in (0, errno.EISCONN, errno.EALREADY):
                    if LIBC.connect(s.fileno(), UNSPECIFIED, len(UNSPECIFIED)) != 0:
                        raise OSError(ctypes.get_errno(), "disconnect")
            else:
                s.close()
                s = None
        return (os.times().system - before.system) / count * 1e6
    finally:
        if s is not None:
            s.close()
        os.sched_setaffinity(0, affinity)


# Accepts and closes connections to any loopback address on ACCEPTOR_PORT, as fast as it can.
ACCEPTOR = f"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {ACCEPTOR_PORT}))
s.listen(4096)
while True:
    s.accept()[0].close()
"""


def time_wait():
    """Sockets in TIME_WAIT on the host (from /proc/net/sockstat)."""
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("tw") + 1])
    return 0


def failover_times(name, kills):
    times = []
    for _ in range(kills):
        primary = Listener(PRIMARY)
        failover.wait_for("the primary", lambda: query_a(name) == [PRIMARY], 30)
        time.sleep(1 + random.random())  # a random phase of the 1 s interval
        killed = time.monotonic()
        primary.close()
        # Under a flood the server drops a share of all queries, ours too: wait briefly for
        # each answer, so a dropped query adds at most 50 ms to the time measured, not 500.
        failover.wait_for("the failover", lambda: query_a(name, 0.05) == [STANDBY], 30)
        times.append(time.monotonic() - killed)
    return times


def main():
    services = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    kind = sys.argv[3] if len(sys.argv) > 3 else "tcp"
    live = len(sys.argv) > 4 and sys.argv[4] == "live"
    member_port = ACCEPTOR_PORT if live else CLOSED_PORT
    failover.DNS = DNS
    random.seed(3)
    with tempfile.TemporaryDirectory() as work:
        zone = os.path.join(work, "scale.zone")
        with open(zone, "w") as f:
            f.write("$ORIGIN scale.test.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n"
                    "@ IN NS ns1\nns1 IN A 192.0.2.1\n")
        config = os.path.join(work, "scale.toml")
        with open(config, "w") as f:
            f.write(f'[server]\nlisten = ["{DNS[0]}:{DNS[1]}"]\nrate_limit = 0\n\n[[zone]]\norigin = "scale.test."\n'
                    f'file = "scale.zone"\n\n')
            for i in range(services):
                if i == 0:
                    members, port, check = f'"{PRIMARY}", "{STANDBY}"', LIVE_PORT, "tcp"
                else:
                    members, port = f'"{member(2 * i)}", "{member(2 * i + 1)}"', member_port
                    check = kind
                f.write(f'[[service]]\nname = "svc{i}.scale.test."\nttl = 5\nmembers = [{members}]\n'
                        f'[service.check]\nkind = "{check}"\nport = {port}\ninterval = "1s"\n'
                        f'timeout = "500ms"\nrise = 2\nfall = 2\n\n')
        queries = os.path.join(work, "queries.txt")
        with open(queries, "w") as f:
            for _ in range(100000):
                f.write(f"svc{random.randrange(services)}.scale.test A\n")

        standby = Listener(STANDBY)
        acceptor = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", ACCEPTOR]) \
            if live else None
        server = subprocess.Popen(["taskset", "-c", "0", BINARY, "run", "--config", config],
                                  stderr=subprocess.DEVNULL)
        try:
            failover.wait_for("the server", lambda: query_a("svc0.scale.test.") is not None, 60)
            time.sleep(10)  # every member checked a few times; start-up transitions done
            before, started = cpu_seconds(server.pid), time.monotonic()
            time.sleep(20)
            share = (cpu_seconds(server.pid) - before) / (time.monotonic() - started)
            print(f"{services} services, {2 * services} members "
                  f"({'live' if live else 'closed port'}), {kind} checks every 1s")
            print(f"checks only: {100 * share:.1f}% of one core, RSS {rss_mb(server.pid):.1f} MB, "
                  f"{time_wait()} sockets in TIME_WAIT")
            for reuse, what in ((True, "reused socket"), (False, "socket+connect+close")):
                floor = connect_floor(2 * services, member_port, reuse)
                print(f"kernel floor ({what} in a loop): {floor:.1f} µs per check = "
                      f"{floor * 2 * services / 1e4:.1f}% of one core at {2 * services} checks/s")

            idle = failover_times("svc0.scale.test.", KILLS)
            print(f"failover without DNS load: median {1000 * statistics.median(idle):.0f} ms, "
                  f"max {1000 * max(idle):.0f} ms ({KILLS} kills)")

            load = subprocess.Popen(
                ["taskset", "-c", "1", "dnsperf", "-s", DNS[0], "-p", str(DNS[1]), "-d", queries,
                 "-l", "25", "-c", "20", "-q", "1000", "-Q", str(rate)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(2)
            loaded = failover_times("svc0.scale.test.", KILLS)
            output = load.communicate(timeout=60)[0]  # dnsperf stops itself after 25 s
            qps = next((line.split()[3] for line in output.splitlines()
                        if "Queries per second" in line), "?")
            print(f"failover with {rate} q/s offered ({qps} q/s answered): median "
                  f"{1000 * statistics.median(loaded):.0f} ms, max {1000 * max(loaded):.0f} ms "
                  f"({KILLS} kills); RSS {rss_mb(server.pid):.1f} MB")
        finally:
            server.kill()
            server.wait()
            standby.close()
            if acceptor:
                acceptor.kill()


if __name__ == "__main__":
    main()
