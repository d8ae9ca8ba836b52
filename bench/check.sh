#!/usr/bin/env bash
# How long `failover-dns check` takes for N services (default 100,000), two members each, in
# one zone: validation must stay linear in the number of services.
#   bench/check.sh [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp zones/svc.example.test.zone "$WORK/svc.zone"
set -- ${@:-20000 100000}
for n in "$@"; do
    python3 - "$n" > "$WORK/c.toml" <<'PY'
import sys
n = int(sys.argv[1])
print('[server]\nlisten = ["127.0.0.1:5300"]\n[[zone]]\norigin = "svc.example.test."\nfile = "svc.zone"')
for i in range(n):
    print(f'[[service]]\nname = "s{i}.svc.example.test."\nmembers = ["192.0.2.{i % 250 + 1}", "198.51.100.{i % 250 + 1}"]\n[service.check]\nkind = "tcp"\nport = 80')
PY
    start=$(date +%s.%N)
    ./target/release/failover-dns check --config "$WORK/c.toml" >/dev/null
    end=$(date +%s.%N)
    printf '%7d services: check in %.2f s\n' "$n" "$(echo "$end - $start" | bc)"
done
