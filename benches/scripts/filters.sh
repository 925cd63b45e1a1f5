#!/usr/bin/env bash
# Latency of each metric with and without `exclude_bots=true`, and of one
# repository's timeline, side by side in one run: for each question, ROUNDS
# (default 15) windows at distinct starts anywhere in the stored range (so no
# answer comes from the cache), one request each; prints the p50 of each and
# the ratio of the p50 without bots to the p50 with them.
#
#   benches/scripts/filters.sh DB [BIN]   # e.g. /tmp/10m.db from examples/generate_events
#   SERVE_URL=http://HOST:PORT FIRST=T LAST=T REPO=R benches/scripts/filters.sh
#                                         # a service already running (ClickHouse: clickhouse.sh)
#
# DAYS (default 1) is the window's width; REPO (default: the busiest) the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-15}
days=${DAYS:-1}
if [ -n "${SERVE_URL:-}" ]; then
    address=${SERVE_URL#http://}
    first=$FIRST last=$LAST repo=$REPO
else
    [ $# -ge 1 ] || { sed -n 2,12p "$0"; exit 2; }
    db=$1
    bin=${2:-target/release/ghmetrics}
    export RUST_LOG=warn,ghmetrics::app=info
    . tests/serve.sh
    serve_fixture "$db" "${TMPDIR:-/tmp}/filters.log"
    read -r first last < <(sqlite3 -readonly -separator ' ' "$db" "SELECT min(created_at), max(created_at) FROM events")
    repo=${REPO:-$(sqlite3 -readonly "$db" "SELECT repo_name FROM pr_counts ORDER BY events DESC LIMIT 1")}
fi
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
width=$((days * 86400))
span=$((last - first - width))
[ "$span" -gt 0 ] || span=1
# p50 in ms of ROUNDS requests of PATH?QUERY&from=..&to=.. (QUERY may be empty).
p50() {
    local times=()
    for round in $(seq "$rounds"); do
        from=$((first + (span * (round - 1)) / rounds + round + ${SALT:-0}))
        times+=("$(curl -sf -o /dev/null -w '%{time_total}' "http://$address/$1&from=$(iso $from)&to=$(iso $((from + width)))")")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk '{v[NR] = $1 * 1000} END {printf "%.1f", v[int((NR + 1) / 2)]}'
}
printf '%-46s %10s %14s %6s\n' "question ($days d windows)" p50_ms no_bots_p50_ms ratio
for question in \
    "metrics/event-counts?" \
    "metrics/top?type=WatchEvent&limit=100" \
    "metrics/pr-counts?limit=100" \
    "metrics/average-pr-time?repo_name=$repo" \
    "metrics/visualization?format=svg" \
    "metrics/visualization/timeline?format=json&bucket_minutes=60" \
    "metrics/visualization/timeline?format=json&repo_name=$repo"; do
    with=$(p50 "$question")
    without=$(SALT=7 p50 "$question&exclude_bots=true")
    printf '%-46s %10s %14s %6.2f\n' "${question/$repo/REPO}" "$with" "$without" "$(echo "$without / $with" | bc -l)"
done
echo "REPO: $repo"
