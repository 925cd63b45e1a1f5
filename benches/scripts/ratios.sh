#!/usr/bin/env bash
# Each endpoint's throughput as a share of the 404 path's, in one run (issue 12).
#
#   benches/scripts/ratios.sh DB [BIN]
#
# Starts BIN (default target/release/ghmetrics) with --no-poll on DB, runs
# `wrk -t1 -c16 --latency` on each endpoint, each time right after a run on an
# unknown path (a 404 through every layer: the framework's ceiling), and prints
# the endpoint's req/s and p99, the 404's req/s just before, and their ratio
# (pairing each endpoint with its own 404 run keeps the machine's drift out of
# the ratio); then the service's RSS after the run.
# DURATION (default 5s) sets each wrk run. ROUNDS (default 1) repeats the whole
# list; with more than one, each line gives the median of the rounds (req/s, p99
# and ratio each) and the ratios' range: this machine's req/s moves by a tenth
# from run to run. Where wrk runs: by default anywhere, sharing every core
# with the service's workers; PIN_WRK=1 keeps wrk on the first core and
# leaves the service as it is (one async worker per core, free to move);
# SPLIT_CORES=1 also gives the service the last core alone (taskset), as with
# a client on another machine: it then sees one core and runs one worker.
# Needs wrk (apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { sed -n 2,10p "$0"; exit 2; }
db=$1
bin=${2:-target/release/ghmetrics}
duration=${DURATION:-5s}
repo=$(sqlite3 -readonly "$db" "SELECT repo_name FROM pr_counts ORDER BY events DESC LIMIT 1")

# The per-request log lines are not what is measured here.
export RUST_LOG=warn,ghmetrics::app=info
wrk=(wrk)
last=$(($(nproc) - 1))
if [ "${SPLIT_CORES:-}" = 1 ]; then
    export SERVE_PREFIX="taskset -c $last"
    wrk=(taskset -c "0-$((last > 0 ? last - 1 : 0))" wrk)
elif [ "${PIN_WRK:-}" = 1 ]; then
    wrk=(taskset -c 0 wrk)
fi
. tests/serve.sh
serve_fixture "$db" "${TMPDIR:-/tmp}/ratios.log"

run() { # path -> "req/s p99_ms"
    "${wrk[@]}" -t1 -c16 -d"$duration" --latency "http://$address$1" | awk '
        /Requests\/sec/ {rps = $2}
        /^ +99%/ {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; p99 = v}
        END {printf "%s %s", rps, p99}'
}
rounds=${ROUNDS:-1}
paths=(
    "/metrics/event-counts?offset_minutes=1"
    "/metrics/event-counts?offset_minutes=60"
    "/metrics/event-counts?offset_minutes=10080"
    "/metrics/event-counts?offset_minutes=52560000"
    "/metrics/average-pr-time?repo_name=$repo"
    "/metrics/pr-counts?limit=100"
    "/metrics/pr-counts"
    "/health"
    "/metrics/visualization"
    "/metrics/visualization?format=svg"
    "/metrics/visualization/timeline"
    "/metrics/visualization/timeline?format=svg"
)
results=$(mktemp)
for round in $(seq "$rounds"); do
    for i in "${!paths[@]}"; do
        read -r base base_p99 <<<"$(run /no/such/path)"
        read -r rps p99 <<<"$(run "${paths[$i]}")"
        echo "$i $rps $p99 $base $base_p99 $(echo "$rps / $base" | bc -l)" >>"$results"
    done
done
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
column() { awk -v i="$1" -v c="$2" '$1 == i {print $c}' "$results" | median; }
printf '%-58s %10s %8s %10s %8s %6s' path req/s p99_ms 404_req/s 404_p99 ratio
[ "$rounds" -gt 1 ] && printf '  %s' "ratios (of $rounds rounds)"
echo
for i in "${!paths[@]}"; do
    printf '%-58s %10.0f %8.3f %10.0f %8.3f %6.2f' "${paths[$i]}" "$(column "$i" 2)" "$(column "$i" 3)" \
        "$(column "$i" 4)" "$(column "$i" 5)" "$(column "$i" 6)"
    [ "$rounds" -gt 1 ] && printf '  %s-%s' \
        "$(awk -v i="$i" '$1 == i {printf "%.2f\n", $6}' "$results" | sort -g | head -n 1)" \
        "$(awk -v i="$i" '$1 == i {printf "%.2f\n", $6}' "$results" | sort -g | tail -n 1)"
    echo
done
rm -f "$results"
echo "RSS after the run: $(awk '/VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$service/status")"
