#!/usr/bin/env python3
"""What `hold = true` costs at scale: 10,000 services of one member each, tcp checks every
second, with and without held connections. One acceptor (pinned to CPU 1) listens on a port of
the wildcard address, so it answers for every 127.64.x.y member, and keeps each connection open
until its peer closes it. failover-dns runs pinned to CPU 0; prints its CPU (share of one core)
over a measured window and its RSS, for each setting. Loopback only; loops are bounded.

Usage: bench/hold_scale.py [services, default 10000] [seconds, default 20]
(run `cargo build --release` first)
"""

import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale import BINARY, cpu_seconds, member, rss_mb  # noqa: E402

DNS = ("127.0.0.1", 5386)
PORT = 5306


def acceptor(stop):
    """Accepts every connection to PORT and holds it until the peer closes or resets it."""
    os.sched_setaffinity(0, {1})
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", PORT))
    listener.listen(4096)
    listener.setblocking(False)
    poll = select.epoll()
    poll.register(listener.fileno(), select.EPOLLIN)
    held = {}
    while not stop.is_set():
        for fd, events in poll.poll(0.1):
            if fd == listener.fileno():
                while True:
                    try:
                        connection, _ = listener.accept()
                    except (BlockingIOError, OSError):
                        break
                    connection.setblocking(False)
                    held[connection.fileno()] = connection
                    poll.register(connection.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
            else:
                connection = held.pop(fd, None)
                if connection is not None:
                    poll.unregister(fd)
                    connection.close()
    for connection in held.values():
        connection.close()
    listener.close()


def measure(services, seconds, hold, work):
    config = os.path.join(work, f"hold-{hold}.toml")
    with open(config, "w") as f:
        f.write(f'[server]\nlisten = ["{DNS[0]}:{DNS[1]}"]\nrate_limit = 0\n'
                f'[[zone]]\norigin = "scale.test."\nfile = "scale.zone"\n')
        for n in range(services):
            f.write(f'[[service]]\nname = "s{n}.scale.test."\nmembers = ["{member(n)}"]\n'
                    f'[service.check]\nkind = "tcp"\nport = {PORT}\ninterval = "1s"\n'
                    f'timeout = "500ms"\nhold = {"true" if hold else "false"}\n')
    server = subprocess.Popen(["taskset", "-c", "0", BINARY, "run", "--config", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)  # start-up: every member checked, every hold opened
        before = cpu_seconds(server.pid)
        time.sleep(seconds)
        cpu = (cpu_seconds(server.pid) - before) / seconds
        return cpu, rss_mb(server.pid)
    finally:
        server.kill()
        server.wait()


def main():
    services = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop = threading.Event()
    thread = threading.Thread(target=acceptor, args=(stop,), daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "scale.zone"), "w") as f:
            f.write("$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n")
        print(f"{services} members, tcp checks every 1 s, {seconds:.0f} s measured")
        for hold in (False, True):
            cpu, rss = measure(services, seconds, hold, work)
            print(f"hold = {str(hold).lower():5}  CPU {100 * cpu:5.1f}% of a core  RSS {rss:6.1f} MB",
                  flush=True)
    stop.set()
    thread.join()


if __name__ == "__main__":
    main()
