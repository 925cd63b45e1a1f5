#!/usr/bin/env bash
# `import` of the same archive hour files by two builds, side by side in
# alternating rounds, each into a fresh SQLite file: the import's speed
# before and after a change. The hours are generated
# (examples/generate_events.rs --hour), named as GH Archive names them, so
# the import records them as archive files and settles their hours.
#
#   benches/scripts/import_ab.sh OLD_BIN NEW_BIN   # HOURS=6 EVENTS=100000 (lines per hour) ROUNDS=3
#   MODE=gharchive: `import --gharchive` of the same hours from 127.0.0.1
#   (Python's http.server) instead of `import DIR`.
#   e.g. git worktree add /tmp/old 4244269 && (cd /tmp/old && cargo build --release) &&
#        benches/scripts/import_ab.sh /tmp/old/target/release/ghmetrics target/release/ghmetrics
set -euo pipefail
[ $# -eq 2 ] || { sed -n 2,11p "$0"; exit 2; }
old_bin=$1 new_bin=$2
cd "$(dirname "$0")/../.."
hours=${HOURS:-6}
events=${EVENTS:-100000}
work=$(mktemp -d /tmp/ghmetrics-import-ab.XXXXXX)
server=""
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$work"' EXIT
cargo build --release --quiet --locked --examples
mkdir -p "$work/files"
for h in $(seq 0 $((hours - 1))); do
    ./target/release/examples/generate_events --events "$events" --hour "2026-11-01T$(printf %02d "$h")" \
        --seed "$h" --out "$work/files/2026-11-01-$h.json.gz" >/dev/null
done
echo "$hours hours of $events lines: $(du -sh "$work/files" | cut -f1) gzipped; ${MODE:-files}"
source_args=("$work/files")
if [ "${MODE:-files}" = gharchive ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/files" >/dev/null 2>&1 &
    server=$!
    until curl -sf "http://127.0.0.1:$port/" >/dev/null; do sleep 0.1; done
    source_args=(--gharchive "2026-11-01T00..2026-11-01T$(printf %02d $((hours - 1)))" --gharchive-url "http://127.0.0.1:$port/")
fi
for round in $(seq "${ROUNDS:-3}"); do
    for build in old new; do
        if [ "$build" = old ]; then bin=$old_bin; else bin=$new_bin; fi
        rm -f "$work/$build.db"*
        /usr/bin/time -f "%e %M" -o "$work/time" "$bin" import --db "$work/$build.db" "${source_args[@]}" >"$work/out" 2>/dev/null
        read -r seconds rss <"$work/time"
        printf 'round %s %-3s %7.2f s  peak RSS %4d MB  %s\n' "$round" "$build" "$seconds" $((rss / 1024)) "$(head -c 90 "$work/out")"
    done
done
