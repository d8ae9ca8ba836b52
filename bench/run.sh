#!/usr/bin/env bash
# Throughput and CPU per query of failover-dns against Knot DNS, NSD and gdnsd, all serving the
# same zone on loopback with the same query mix. Each server is pinned to CPU 0 and dnsperf to
# CPU 1. Prints one table; see README "Performance".
#
# Needs: apt-get install -y dnsperf knot nsd gdnsd bind9-dnsutils python3; a Rust toolchain.
# Usage: bench/run.sh [seconds per run, default 10] [fixed rate in q/s, default 50000]
#        SERVERS="failover-dns knot" bench/run.sh   (default: all four)
#        HOSTS=1000000 bench/run.sh   (static hosts in the zone, default 200: cost as zones grow)
#        SERVERS="failover-dns ours-all ours-weighted" bench/run.sh   (the service under policy
#        "all" and "weighted", weights 3 and 1, beside the default "failover")
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${1:-10}
RATE=${2:-50000}
HOSTS=${HOSTS:-200}
WORK=$(mktemp -d /tmp/failover-dns-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in dnsperf knotd nsd gdnsd dig taskset python3; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
        echo "missing $tool: apt-get install -y dnsperf knot nsd gdnsd bind9-dnsutils python3" >&2
        exit 1
    }
done

cargo build --release --quiet
HOST=127.0.0.1
# Response rate limiting: off by default here (dnsperf is one client); RATE_LIMIT=N measures
# what the limiter costs when nobody is over it.
RATE_LIMIT=${RATE_LIMIT:-0}
PORT_OURS=5390 PORT_KNOT=5391 PORT_NSD=5392 PORT_GDNSD=5393
PRIMARY=127.0.0.11 STANDBY=127.0.0.12 CHECK_PORT=5301

# The members: one TCP listener each, so every server's checks see both up.
python3 - "$PRIMARY" "$STANDBY" "$CHECK_PORT" <<'EOF' &
import socket, sys, threading
def serve(ip):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, int(sys.argv[3]))); s.listen(1024)
    while True:
        c, _ = s.accept(); c.close()
for ip in sys.argv[1:3]:
    threading.Thread(target=serve, args=(ip,), daemon=True).start()
threading.Event().wait()
EOF
PIDS+=($!)

# The zone: $HOSTS static hosts, a TXT, MX and the failover name www (dynamic in failover-dns
# and gdnsd, a static A record of the primary in Knot and NSD).
zone_head() {
    cat <<EOF
\$ORIGIN bench.test.
\$TTL 3600
@ IN SOA ns1 hostmaster 1 7200 900 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.1
@ IN MX 10 mail
mail IN A 192.0.2.25
@ IN TXT "bench zone"
EOF
    awk -v n="$HOSTS" 'BEGIN { for (i = 1; i <= n; i++) printf "host%d IN A 192.0.2.%d\n", i, i % 250 + 1 }'
}
zone_head > "$WORK/ours.zone"
{ zone_head; echo "www 5 IN A $PRIMARY"; } > "$WORK/static.zone"
mkdir -p "$WORK/gdnsd/zones"
{ zone_head; echo "www 5 DYNA simplefo!www"; } > "$WORK/gdnsd/zones/bench.test"

# The query mix: 40% the service name, 30% static names, 15% NODATA, 15% NXDOMAIN; the static
# names drawn from all $HOSTS hosts.
python3 - "$HOSTS" > "$WORK/queries.txt" <<'EOF'
import random, sys
hosts = int(sys.argv[1])
random.seed(7)
for i in range(100000):
    r = random.random()
    if r < 0.40: print("www.bench.test A")
    elif r < 0.70: print(f"host{random.randint(1, hosts)}.bench.test A")
    elif r < 0.85: print(f"host{random.randint(1, hosts)}.bench.test MX")
    else: print(f"nx{random.randint(1, 100000)}.bench.test A")
EOF

# Random names, as in a random-subdomain flood: every query a new NXDOMAIN, so no answer can
# be reused from a previous query.
python3 - > "$WORK/random.txt" <<'EOF'
import random
random.seed(9)
for i in range(100000):
    print(f"r{random.getrandbits(40):x}.bench.test A")
EOF

cat > "$WORK/ours.toml" <<EOF
[server]
listen = ["$HOST:$PORT_OURS"]
rate_limit = $RATE_LIMIT
[[zone]]
origin = "bench.test."
file = "ours.zone"
[[service]]
name = "www.bench.test."
ttl = 5
members = ["$PRIMARY", "$STANDBY"]
[service.check]
kind = "tcp"
port = $CHECK_PORT
interval = "1s"
timeout = "500ms"
EOF

mkdir -p "$WORK/knot"
cat > "$WORK/knot.conf" <<EOF
server:
    rundir: $WORK/knot
    listen: $HOST@$PORT_KNOT
log:
  - target: stderr
    any: warning
database:
    storage: $WORK/knot
zone:
  - domain: bench.test
    file: $WORK/static.zone
    journal-content: none
    zonefile-sync: -1
EOF

mkdir -p "$WORK/nsd"
cat > "$WORK/nsd.conf" <<EOF
server:
    ip-address: $HOST@$PORT_NSD
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$WORK"
    database: ""
    zonelistfile: "$WORK/nsd/zone.list"
    xfrdfile: "$WORK/nsd/xfrd.state"
    pidfile: "$WORK/nsd/nsd.pid"
    logfile: "$WORK/nsd/nsd.log"
    verbosity: 0
    # Debian's NSD limits responses per client network by default; dnsperf is one client.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: bench.test
    zonefile: static.zone
EOF

cat > "$WORK/gdnsd/config" <<EOF
options => {
    listen => [ $HOST:$PORT_GDNSD ]
    run_dir => $WORK/gdnsd/run
    state_dir => $WORK/gdnsd/state
}
service_types => {
    member => { plugin => tcp_connect, port => $CHECK_PORT, interval => 2, timeout => 1 }
}
plugins => {
    simplefo => {
        www => { service_types => [ member ], primary => $PRIMARY, secondary => $STANDBY }
    }
}
EOF

# start NAME PORT COMMAND...: starts a server pinned to CPU 0 and waits until it answers (up
# to a minute or so: a zone of a million hosts takes seconds to load).
start() {
    local name=$1 port=$2
    shift 2
    taskset -c 0 "$@" > "$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 1200); do
        if dig +short +time=1 +tries=1 @"$HOST" -p "$port" www.bench.test A 2>/dev/null | grep -q "$PRIMARY"; then
            echo "$pid"
            return
        fi
        sleep 0.05
    done
    echo "$name did not start:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

# descendants PID: the process and every process below it (NSD runs as three generations).
descendants() {
    echo "$1"
    local child
    for child in $(pgrep -P "$1" || true); do descendants "$child"; done
}

# cpu_ticks PID: utime + stime of the process and all its descendants, in clock ticks.
cpu_ticks() {
    local total=0 pid
    for pid in $(descendants "$1"); do
        local stat
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        local fields=($stat)
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

rss_kb() {
    local total=0 pid
    for pid in $(descendants "$1"); do
        total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# perf PORT [dnsperf args]: runs dnsperf on CPU 1 with the mix in $QUERIES (default: the
# standard mix); prints "completed qps avg_latency_s p50_s p99_s". The percentiles come from
# dnsperf's per-response lines, so only when the arguments include -v ("0 0" otherwise).
perf() {
    local port=$1
    shift
    taskset -c 1 dnsperf -s "$HOST" -p "$port" -d "${QUERIES:-$WORK/queries.txt}" -l "$SECONDS_PER_RUN" \
        -c 20 -q 500 "$@" > "$WORK/dnsperf.out" 2>&1
    python3 - "$WORK/dnsperf.out" <<'EOF'
import sys
completed = qps = avg = "0"
latencies = []
for line in open(sys.argv[1]):
    fields = line.split()
    if line.startswith("> ") and len(fields) >= 5 and fields[1] != "T":
        latencies.append(float(fields[-1]))  # "> RCODE name type latency"
    elif line.lstrip().startswith("Queries completed:"):
        completed = fields[2]
    elif line.lstrip().startswith("Queries per second:"):
        qps = fields[3]
    elif line.lstrip().startswith("Average Latency"):
        avg = fields[3]
latencies.sort()
def pct(p):
    return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else 0
print(completed, qps, avg, pct(0.50), pct(0.99))
EOF
}

TICKS=$(getconf CLK_TCK)
ROWS=()
measure() {
    local name=$1 port=$2 pid=$3
    # Warm up, then unthrottled, then at the fixed rate with CPU accounting.
    perf "$port" -l 2 >/dev/null
    local before after
    # How busy the server's core is when unthrottled: below 100%, dnsperf is what limits.
    before=$(cpu_ticks "$pid")
    read -r _ qps_max _ _ _ < <(perf "$port")
    after=$(cpu_ticks "$pid")
    local busy_max
    busy_max=$(python3 -c "print(f'{($after - $before) / $TICKS * 100 / $SECONDS_PER_RUN:.0f}')")
    before=$(cpu_ticks "$pid")
    read -r completed qps lat p50 p99 < <(perf "$port" -Q "$RATE" -v)
    after=$(cpu_ticks "$pid")
    local us_per_query
    us_per_query=$(python3 -c "print(f'{($after - $before) / $TICKS * 1e6 / max($completed, 1):.2f}')")
    # The same rate of random names.
    before=$(cpu_ticks "$pid")
    read -r random_completed _ _ _ _ < <(QUERIES="$WORK/random.txt" perf "$port" -Q "$RATE")
    after=$(cpu_ticks "$pid")
    local us_random
    us_random=$(python3 -c "print(f'{($after - $before) / $TICKS * 1e6 / max($random_completed, 1):.2f}')")
    ROWS+=("$name $qps_max $us_per_query $qps $lat $p50 $p99 $(rss_kb "$pid") $us_random $busy_max")
}

for server in ${SERVERS:-failover-dns knot nsd gdnsd}; do
    case $server in
        failover-dns) port=$PORT_OURS; command=(target/release/failover-dns run --config "$WORK/ours.toml") ;;
        ours-all|ours-weighted)
            port=$PORT_OURS
            policy=${server#ours-}
            sed -e "s/^ttl = 5$/ttl = 5\npolicy = \"$policy\"/" \
                -e "s/^members = .*/members = [{ address = \"$PRIMARY\", weight = 3 }, \"$STANDBY\"]/" \
                "$WORK/ours.toml" > "$WORK/ours-$policy.toml"
            command=(target/release/failover-dns run --config "$WORK/ours-$policy.toml") ;;
        knot) port=$PORT_KNOT; command=(/usr/sbin/knotd -c "$WORK/knot.conf") ;;
        nsd) port=$PORT_NSD; command=(/usr/sbin/nsd -d -c "$WORK/nsd.conf") ;;
        gdnsd) port=$PORT_GDNSD; command=(/usr/sbin/gdnsd -c "$WORK/gdnsd" start) ;;
        *) echo "unknown server $server" >&2; exit 1 ;;
    esac
    PID=$(start "$server" "$port" "${command[@]}")
    measure "$server" "$port" "$PID"
    kill "$PID"
done

echo
echo "$(date -u +%Y-%m-%d) $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "runs of ${SECONDS_PER_RUN}s; CPU per query measured at ${RATE} q/s; $HOSTS static hosts; server on CPU 0, dnsperf on CPU 1"
printf "%-13s %10s %8s %13s %8s %12s %8s %8s %8s %8s %14s %8s\n" server "max q/s" "its CPU%" \
    "CPU µs/query" "vs best" "q/s at rate" "avg ms" "p50 ms" "p99 ms" "RSS MB" "µs/q random" "vs best"
best() {
    local best
    best=$(printf '%s\n' "${ROWS[@]}" | awk -v col="$1" '$1 != "failover-dns" && $1 !~ /^ours-/ && $col > 0 {print $col}' | sort -g | head -1)
    echo "${best:-0}"
}
best_mix=$(best 3)
best_random=$(best 9)
ratio() { python3 -c "print(f'{$1 / $2:.2f}x' if $2 else '-')"; }
ms() { python3 -c "print(f'{$1 * 1000:.3f}')"; }
for row in "${ROWS[@]}"; do
    read -r name qps_max us qps lat p50 p99 rss us_random busy_max <<<"$row"
    printf "%-13s %10.0f %8s %13s %8s %12.0f %8s %8s %8s %8.1f %14s %8s\n" "$name" "$qps_max" "$busy_max" "$us" \
        "$(ratio "$us" "$best_mix")" "$qps" "$(ms "$lat")" "$(ms "$p50")" "$(ms "$p99")" \
        "$(python3 -c "print($rss / 1024)")" "$us_random" "$(ratio "$us_random" "$best_random")"
done
