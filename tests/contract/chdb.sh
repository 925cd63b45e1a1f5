#!/usr/bin/env bash
# The ClickHouse statements ghmetrics sends, on a current ClickHouse engine:
# the tests speak to Debian's clickhouse-server (18.16); users run current
# releases. One test asks a ClickHouse store every question the service has
# (inserts, every metric, retention, feed bookkeeping) and writes each
# statement and its answer to a transcript; chdb (ClickHouse 26.x embedded
# in Python) replays the same statement strings and must give the same
# answers.
#
#   tests/contract/chdb.sh        (creates target/chdb-venv on first use)
#
# Writes target/chdb/{transcript.jsonl,report.txt}.
set -euo pipefail
cd "$(dirname "$0")/../.."

target="${CARGO_TARGET_DIR:-target}"
out="$target/chdb"
venv="$target/chdb-venv"
rm -rf "$out" && mkdir -p "$out"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import chdb" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "chdb==4.4.0"
fi
transcript="$(mkdir -p "$out" && cd "$out" && pwd)/transcript.jsonl"   # absolute: the tests run elsewhere
GHMETRICS_REQUIRE_CLICKHOUSE=1 GHMETRICS_CLICKHOUSE_TRANSCRIPT="$transcript" \
    cargo test --quiet --locked --test api -- --exact clickhouse::both_stores_answer_every_question_alike
"$venv/bin/python" tests/contract/chdb_replay.py "$transcript" | tee "$out/report.txt"
