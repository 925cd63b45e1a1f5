#!/usr/bin/env bash
# HTTP throughput of every endpoint with wrk at 16 connections (issue 3).
#
#   benches/scripts/http.sh [DB]
#
# DB defaults to target/bench-10m.db, generated on first use (10 million
# events over 30 days; a few minutes). The service runs with --no-poll and
# RUST_LOG=warn; a second pass with the default log level shows what the
# per-request log lines cost. Needs wrk (apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."

db=${1:-target/bench-10m.db}
duration=${DURATION:-8s}
if [[ ! -e $db ]]; then
    cargo run --release --quiet --example generate_events -- \
        --events 10000000 --days 30 --db "$db"
fi
cargo build --release --quiet
ls -l "$db"

port=18347
base=http://127.0.0.1:$port
repo=$(sqlite3 -readonly "$db" 'SELECT repo_name FROM pr_openings ORDER BY openings DESC LIMIT 1' 2>/dev/null \
    || echo org1/repo1)
endpoints=(
    "/metrics/event-counts?offset_minutes=1"
    "/metrics/event-counts?offset_minutes=60"
    "/metrics/event-counts?offset_minutes=10080"
    "/metrics/event-counts?offset_minutes=100000000"
    "/metrics/average-pr-time?repo_name=$repo"
    "/metrics/pr-counts?limit=100"
    "/metrics/visualization?offset_minutes=60"
    "/health"
)

run_pass() {
    local log_level=$1
    RUST_LOG=$log_level ./target/release/ghmetrics --db "$db" --no-poll --listen "127.0.0.1:$port" \
        >/dev/null 2>&1 &
    local pid=$!
    until curl -sf "$base/health" >/dev/null; do sleep 0.2; done
    echo "== RUST_LOG=$log_level"
    printf '%-55s %12s %10s\n' endpoint requests/s p50
    for path in "${endpoints[@]}"; do
        out=$(wrk -t2 -c16 -d"$duration" --latency "$base$path")
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        printf '%-55s %12s %10s\n' "$path" "$rps" "$p50"
    done
    curl -s -o /dev/null -w 'full pr-counts: %{size_download} bytes in %{time_total} s\n' "$base/metrics/pr-counts"
    echo "resident memory after the runs: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
    echo "peak resident memory: $(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")"
    kill "$pid"
    wait "$pid" || true
}

run_pass warn
run_pass "${DEFAULT_LOG:-ghmetrics=info,tower_http=info}"
