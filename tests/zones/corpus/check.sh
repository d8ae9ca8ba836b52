#!/usr/bin/env bash
# Which zone files of the corpus NSD, Knot and failover-dns each load. Prints one line per file
# (ok/refused per server) and the totals; with -v, the first error line of each refusal.
#
# Needs: nsd-checkzone (apt-get install nsd), kzonecheck (apt-get install knot-dnssecutils),
# and a built failover-dns (cargo build --release; FAILOVER_DNS=path to use another).
# Usage: tests/zones/corpus/check.sh [-v]
set -uo pipefail
cd "$(dirname "$0")"
VERBOSE=${1:-}
OURS=${FAILOVER_DNS:-../../../target/release/failover-dns}
for tool in nsd-checkzone kzonecheck "$OURS"; do
    command -v "$tool" >/dev/null || [ -x "$tool" ] || { echo "missing $tool" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/zone-corpus.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

nsd_ok=0 knot_ok=0 ours_ok=0 both=0 both_ours=0 total=0
printf '%-60s %-8s %-8s %-8s\n' file nsd knot ours
while IFS=$'\t' read -r file origin _source; do
    case "$file" in ''|'#'*) continue ;; esac
    total=$((total + 1))
    nsd=refused knot=refused ours=refused
    nsd_error=$(nsd-checkzone "$origin" "$file" 2>&1) && nsd=ok
    knot_error=$(kzonecheck -o "$origin" "$file" 2>&1) && knot=ok
    cat > "$WORK/c.toml" <<TOML
[server]
listen = ["127.0.0.1:53"]
state_file = "$WORK/state.json"

[[zone]]
origin = "$origin"
file = "$PWD/$file"
TOML
    ours_error=$("$OURS" check --config "$WORK/c.toml" 2>&1) && ours=ok
    [ "$nsd" = ok ] && nsd_ok=$((nsd_ok + 1))
    [ "$knot" = ok ] && knot_ok=$((knot_ok + 1))
    [ "$ours" = ok ] && ours_ok=$((ours_ok + 1))
    if [ "$nsd" = ok ] && [ "$knot" = ok ]; then
        both=$((both + 1))
        [ "$ours" = ok ] && both_ours=$((both_ours + 1))
    fi
    printf '%-60s %-8s %-8s %-8s\n' "$file" "$nsd" "$knot" "$ours"
    if [ -n "$VERBOSE" ]; then
        [ "$nsd" = ok ] || echo "    nsd:  $(echo "$nsd_error" | head -1)"
        [ "$knot" = ok ] || echo "    knot: $(echo "$knot_error" | grep -v '^$' | head -1)"
        [ "$ours" = ok ] || echo "    ours: $(echo "$ours_error" | grep -m1 '^error' || echo "$ours_error" | head -1)"
    fi
done < MANIFEST
echo
echo "$total files: NSD loads $nsd_ok, Knot $knot_ok, failover-dns $ours_ok;" \
    "of the $both both peers load, failover-dns loads $both_ours"
