#!/usr/bin/env bash
# `import` of the same archive hour files by two builds, side by side in
# alternating rounds, each into a fresh SQLite file: the import's speed
# before and after a change. The hours are generated
# (examples/generate_events.rs --hour), named as GH Archive names them, so
# the import records them as archive files and settles their hours.
#
#   benches/scripts/import_ab.sh OLD_BIN NEW_BIN   # HOURS=6 EVENTS=100000 (lines per hour) ROUNDS=3
#   e.g. git worktree add /tmp/old 4244269 && (cd /tmp/old && cargo build --release) &&
#        benches/scripts/import_ab.sh /tmp/old/target/release/ghmetrics target/release/ghmetrics
set -euo pipefail
[ $# -eq 2 ] || { sed -n 2,11p "$0"; exit 2; }
old_bin=$1 new_bin=$2
cd "$(dirname "$0")/../.."
hours=${HOURS:-6}
events=${EVENTS:-100000}
work=$(mktemp -d /tmp/ghmetrics-import-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --locked --examples
mkdir -p "$work/files"
for h in $(seq 0 $((hours - 1))); do
    ./target/release/examples/generate_events --events "$events" --hour "2026-11-01T$(printf %02d "$h")" \
        --seed "$h" --out "$work/files/2026-11-01-$h.json.gz" >/dev/null
done
echo "$hours hours of $events lines: $(du -sh "$work/files" | cut -f1) gzipped"
for round in $(seq "${ROUNDS:-3}"); do
    for build in old new; do
        if [ "$build" = old ]; then bin=$old_bin; else bin=$new_bin; fi
        rm -f "$work/$build.db"*
        /usr/bin/time -f "%e %M" -o "$work/time" "$bin" import --db "$work/$build.db" "$work/files" >"$work/out" 2>/dev/null
        read -r seconds rss <"$work/time"
        printf 'round %s %-3s %7.2f s  peak RSS %4d MB  %s\n' "$round" "$build" "$seconds" $((rss / 1024)) "$(head -c 90 "$work/out")"
    done
done
