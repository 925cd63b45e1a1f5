#!/usr/bin/env bash
# What the HTTP layers cost (issue 4): requests/s of the same endpoints served by
#   base       a build of BASE_REV, before the layers (default 2027b51),
#   layers     this checkout: metrics, gzip, timeout, concurrency limit (the defaults),
#   +limit     this checkout with --rate-limit (set so high it never refuses),
#   +cors      this checkout with --cors-origin and an Origin header on every request,
# in interleaved rounds (base, layers, +limit, +cors, base, ...) so that the
# machine's drift hits every configuration alike; prints the median per cell.
#
#   benches/scripts/layers.sh [DB] [BASE_REV]
#
# DB: a database file (e.g. from examples/generate_events). BASE_BIN / HEAD_BIN:
# already built binaries (skip the builds). Needs wrk, curl and sqlite3.
set -euo pipefail
cd "$(dirname "$0")/../.."

db=${1:-target/bench-10m.db}
base_rev=${2:-2027b51}
rounds=${ROUNDS:-3}
duration=${DURATION:-5s}
port=18349
url=http://127.0.0.1:$port

base_dir=target/layers-base
base_bin=${BASE_BIN:-$base_dir/target/release/ghmetrics}
if [[ ! -x $base_bin ]]; then
    rm -rf "$base_dir"
    git worktree add -f "$base_dir" "$base_rev" >/dev/null
    (cd "$base_dir" && CARGO_TARGET_DIR=target cargo build --release --quiet)
fi
head_bin=${HEAD_BIN:-target/release/ghmetrics}
[[ -n ${HEAD_BIN:-} ]] || cargo build --release --quiet

repo=$(sqlite3 -readonly "$db" 'SELECT repo_name FROM pr_openings ORDER BY openings DESC LIMIT 1')
endpoints=(
    "/metrics/event-counts?offset_minutes=60"
    "/metrics/average-pr-time?repo_name=$repo"
    "/health"
)
configs=(base layers +limit +cors)
declare -A results

serve() { # config
    local bin=$head_bin extra=()
    case $1 in
        base) bin=$base_bin ;;
        +limit) extra=(--rate-limit 1000000000) ;;
        +cors) extra=(--cors-origin https://dash.example.com) ;;
    esac
    RUST_LOG=warn "$bin" --db "$db" --no-poll --listen "127.0.0.1:$port" "${extra[@]}" >/dev/null 2>&1 &
    echo $!
}

for round in $(seq "$rounds"); do
    for config in "${configs[@]}"; do
        pid=$(serve "$config")
        until curl -sf "$url/health" >/dev/null; do sleep 0.1; done
        header=()
        [[ $config == +cors ]] && header=(-H "Origin: https://dash.example.com")
        for path in "${endpoints[@]}"; do
            rps=$(wrk -t2 -c16 -d"$duration" "${header[@]}" "$url$path" | awk '/Requests\/sec/ {print $2}')
            results[$config,$path]+="$rps "
        done
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
    echo "round $round done" >&2
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
printf '%-50s' endpoint
for config in "${configs[@]}"; do printf '%12s' "$config"; done
printf '%13s\n' layers/base
for path in "${endpoints[@]}"; do
    printf '%-50s' "${path:0:50}"
    for config in "${configs[@]}"; do
        printf '%12s' "$(median <<<"${results[$config,$path]}")"
    done
    base=$(median <<<"${results[base,$path]}")
    layered=$(median <<<"${results[layers,$path]}")
    printf '%10s\n' "$(awk -v a="$layered" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
done
