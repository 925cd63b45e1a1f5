#!/usr/bin/env bash
# Import throughput, side by side with DuckDB and `zcat | wc -l` (issue 3).
#
#   benches/scripts/import.sh [HOUR.json.gz]
#
# Without an argument it generates a GH-Archive-sized hour (250,000 events of
# the tracked types) with examples/generate_events.rs. Needs hyperfine
# (apt-get install -y hyperfine); the DuckDB row is skipped unless
# `python3 -c 'import duckdb'` works (pip install duckdb).
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=${1:-}
if [[ -z $input ]]; then
    input=$work/hour.json.gz
    cargo run --release --quiet --example generate_events -- \
        --events 250000 --days 1 --out "$input"
fi
cargo build --release --quiet
ls -l "$input"

cat >"$work/duck.py" <<'PY'
import duckdb, os, sys
path, db = sys.argv[1], sys.argv[2]
if os.path.exists(db):
    os.remove(db)
con = duckdb.connect(db)
con.execute(f"""CREATE TABLE events AS
SELECT id, type, created_at, repo.name AS repo_name, actor.login AS actor_login,
       payload->>'action' AS action
FROM read_json('{path}', format='newline_delimited',
     columns={{'id': 'VARCHAR', 'type': 'VARCHAR', 'created_at': 'VARCHAR',
               'repo': 'STRUCT(name VARCHAR)', 'actor': 'STRUCT(login VARCHAR)', 'payload': 'JSON'}})
WHERE type IN ('WatchEvent', 'PullRequestEvent', 'IssuesEvent')""")
PY

commands=(
    -n ghmetrics "rm -f $work/g.db*; ./target/release/ghmetrics import --db $work/g.db $input"
    -n zcat "zcat $input | wc -l"
)
if python3 -c 'import duckdb' 2>/dev/null; then
    commands+=(-n duckdb "python3 $work/duck.py $input $work/d.duckdb")
fi
hyperfine --warmup 1 --runs "${RUNS:-5}" "${commands[@]}"

# Peak resident memory of one import.
rm -f "$work"/g.db*
/usr/bin/time -f 'ghmetrics import: max RSS %M KiB' \
    ./target/release/ghmetrics import --db "$work/g.db" "$input" >/dev/null 2>"$work/time.txt" || true
tail -n 1 "$work/time.txt"
