#!/usr/bin/env bash
# Latency of `/metrics/top` over windows of 1, 7 and 30 days placed anywhere in
# the stored range: for each width, ROUNDS (default 15) windows at distinct
# starts (so that no answer comes from the cache), one request each, in turn;
# prints the p50 and the slowest of each width, for every type asked.
#
#   benches/scripts/top.sh DB [BIN]      # e.g. /tmp/10m.db from examples/generate_events
#
# TYPES (default WatchEvent) lists the types asked; LIMIT (default 100).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
db=$1
bin=${2:-target/release/ghmetrics}
rounds=${ROUNDS:-15}
limit=${LIMIT:-100}
export RUST_LOG=warn,ghmetrics::app=info
. tests/serve.sh
serve_fixture "$db" "${TMPDIR:-/tmp}/top.log"
read -r first last < <(sqlite3 -readonly -separator ' ' "$db" "SELECT min(created_at), max(created_at) FROM events")
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
printf '%-18s %6s %10s %10s\n' type days p50_ms max_ms
for type in ${TYPES:-WatchEvent}; do
    for days in 1 7 30; do
        width=$((days * 86400))
        span=$((last - first - width))
        [ "$span" -gt 0 ] || span=1
        times=()
        for round in $(seq "$rounds"); do
            # Starts spread over the range, each a different second.
            from=$((first + (span * (round - 1)) / rounds + round))
            url="http://$address/metrics/top?type=$type&limit=$limit&from=$(iso $from)&to=$(iso $((from + width)))"
            times+=("$(curl -sf -o /dev/null -w '%{time_total}' "$url")")
        done
        printf '%s\n' "${times[@]}" | sort -g | awk -v t="$type" -v d="$days" '
            {v[NR] = $1 * 1000} END {printf "%-18s %6d %10.1f %10.1f\n", t, d, v[int((NR + 1) / 2)], v[NR]}'
    done
done
