#!/usr/bin/env bash
# A/B throughput of two builds (or two databases) on the same endpoints, in
# interleaved rounds so that the machine's drift hits both alike.
#
#   benches/scripts/ab.sh OLD_BIN OLD_DB NEW_BIN NEW_DB PATH...
#   e.g. benches/scripts/ab.sh /tmp/old /tmp/10m.db target/release/ghmetrics /tmp/10m-v6.db \
#            '/metrics/event-counts?offset_minutes=10080'
#
# Prints one line per round, build and path: requests/s of wrk -t2 -c16. Each
# build gets its own copy of the database if a migration would change it.
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,10p "$0"; exit 2; }
old_bin=$1 old_db=$2 new_bin=$3 new_db=$4
shift 4
port=18350
for round in $(seq "${ROUNDS:-3}"); do
    for build in old new; do
        if [ "$build" = old ]; then bin=$old_bin db=$old_db; else bin=$new_bin db=$new_db; fi
        RUST_LOG=warn "$bin" --db "$db" --no-poll --listen "127.0.0.1:$port" >/dev/null 2>&1 &
        pid=$!
        until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.1; done
        for path in "$@"; do
            rps=$(wrk -t2 -c16 -d"${DURATION:-5s}" "http://127.0.0.1:$port$path" | awk '/Requests\/sec/ {print $2}')
            echo "round $round $build $path $rps $(date -u +%H:%M:%S)"
        done
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
done
