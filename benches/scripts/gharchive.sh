#!/usr/bin/env bash
# `import --gharchive` against the same hours imported from disk, and against
# downloading and importing them one by one (curl, then `import FILE`, per
# hour), side by side in alternating rounds; peak RSS for few and many hours.
# The hours are generated (examples/generate_events.rs --hour) and served from
# 127.0.0.1 by Python's http.server.
#
#   benches/scripts/gharchive.sh          # HOURS=6 EVENTS=100000 (lines per hour) ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/../.."
hours=${HOURS:-6}
events=${EVENTS:-100000}
work=$(mktemp -d /tmp/ghmetrics-gharchive-bench.XXXXXX)
server=""
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$work"' EXIT
cargo build --release --quiet --locked --bins --examples
bin=./target/release/ghmetrics
mkdir -p "$work/files"
for h in $(seq 0 $((hours - 1))); do
    ./target/release/examples/generate_events --events "$events" --hour "2026-11-01T$(printf %02d "$h")" \
        --seed "$h" --out "$work/files/2026-11-01-$h.json.gz" >/dev/null
done
echo "$hours hours of $events lines: $(du -sh "$work/files" | cut -f1) gzipped"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/files" >/dev/null 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$port/" >/dev/null; do sleep 0.1; done
range="2026-11-01T00..2026-11-01T$(printf %02d $((hours - 1)))"
timed() { # name, command...
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" "$work/out"; exit 1; }
    read -r seconds rss <"$work/time"
    printf '%-40s %7.2f s  peak RSS %4d MB  %s\n' "$name" "$seconds" $((rss / 1024)) "$(head -c 60 "$work/out")"
}
cat >"$work/one_by_one.sh" <<SH
for h in \$(seq 0 $((hours - 1))); do
    curl -sf -o "$work/one.json.gz" "http://127.0.0.1:$port/2026-11-01-\$h.json.gz"
    "$bin" import --db "$work/c.db" "$work/one.json.gz" >/dev/null
done
SH
for round in $(seq "${ROUNDS:-3}"); do
    rm -f "$work"/*.db*
    timed "import FILES (from disk)" "$bin" import --db "$work/a.db" "$work"/files/*.json.gz
    timed "import --gharchive (127.0.0.1)" "$bin" import --db "$work/b.db" --gharchive "$range" \
        --gharchive-url "http://127.0.0.1:$port/"
    timed "curl + import, hour by hour" bash "$work/one_by_one.sh"
done
rm -f "$work"/*.db*
timed "import --gharchive, 1 hour" "$bin" import --db "$work/d.db" --gharchive 2026-11-01T00 \
    --gharchive-url "http://127.0.0.1:$port/"
timed "import --gharchive, $hours hours" "$bin" import --db "$work/e.db" --gharchive "$range" \
    --gharchive-url "http://127.0.0.1:$port/"
