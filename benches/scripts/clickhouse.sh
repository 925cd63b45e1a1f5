#!/usr/bin/env bash
# ClickHouse store benchmarks (issue 11), side by side in one run:
#
#  1. import: the same generated GH Archive hour into SQLite (`ghmetrics import
#     --db`), into ClickHouse (`ghmetrics import --store clickhouse://`), and the
#     way a user would without ghmetrics (flatten with Python, then
#     `clickhouse-client --query "INSERT ... FORMAT JSONEachRow"`); peak RSS.
#  2. metrics at scale: EVENTS (default 100 M) generated inside ClickHouse with
#     INSERT ... SELECT FROM numbers() (the generator's type/action mix and
#     repository skew; one actor in ten a bot), on one server and on a two-shard cluster; then each
#     metric over HTTP, each request with parameters not asked before (so the
#     answer cache cannot serve it): p50 and p90; pr-counts again once the writer
#     (`serve` with polling) has merged the bulk load's rollup parts.
#
#   benches/scripts/clickhouse.sh            # EVENTS=100000000 IMPORT_EVENTS=250000 SAMPLES=40
#   EVENTS=0 benches/scripts/clickhouse.sh   # the imports only
#   IMPORTS=0 benches/scripts/clickhouse.sh  # the metrics only
#   IMPORTS=0 FILTERS=1 benches/scripts/clickhouse.sh
#                                            # each metric with and without bots instead (filters.sh)
#   OLD_BIN=/path/to/older/ghmetrics EVENTS=0 benches/scripts/clickhouse.sh
#                                            # each ghmetrics import also with that build, alternating
#
# Needs clickhouse-server and clickhouse-client (apt-get install -y clickhouse-server
# clickhouse-client); starts its own servers on free ports under a temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."

events=${EVENTS:-100000000}
import_events=${IMPORT_EVENTS:-250000}
samples=${SAMPLES:-40}
work=$(mktemp -d /tmp/ghmetrics-ch-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A http tcp
for name in single shard1 shard2; do
    http[$name]=$(free_port); tcp[$name]=$(free_port)
done
for name in single shard1 shard2; do
    dir=$work/$name
    mkdir -p "$dir"
    cat >"$dir/config.xml" <<XML
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/error.log</errorlog></logger>
  <http_port>${http[$name]}</http_port><tcp_port>${tcp[$name]}</tcp_port>
  <interserver_http_port>$(free_port)</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path><tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path><format_schema_path>$dir/fs/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
  <remote_servers><bench><shard><replica><host>127.0.0.1</host><port>${tcp[shard1]}</port></replica></shard>
    <shard><replica><host>127.0.0.1</host><port>${tcp[shard2]}</port></replica></shard></bench></remote_servers>
</yandex>
XML
    cat >"$dir/users.xml" <<XML
<yandex><profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas></yandex>
XML
    clickhouse-server --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1 &
    pids+=($!)
done
for name in single shard1 shard2; do
    until curl -sf "http://127.0.0.1:${http[$name]}/ping" >/dev/null; do sleep 0.2; done
done
q() { curl -sfS "http://127.0.0.1:$1/" --data-binary "$2"; }

cargo build --release --quiet --locked --bins --examples
bin=./target/release/ghmetrics

if [ "${IMPORTS:-1}" != 0 ]; then
echo "== 1. import of $import_events generated events"
hour=$work/hour.json.gz
./target/release/examples/generate_events --events "$import_events" --days 1 --out "$hour" >/dev/null
cat >"$work/flatten.py" <<'PY'
import gzip, json, sys
from datetime import datetime, timezone
for line in gzip.open(sys.argv[1], "rt"):
    e = json.loads(line)
    if e["type"] not in ("WatchEvent", "PullRequestEvent", "IssuesEvent"):
        continue
    p = e.get("payload") or {}
    number = (p.get("pull_request") or p.get("issue") or {}).get("number", p.get("number"))
    at = datetime.strptime(e["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    print(json.dumps({"id": int(e["id"]), "type": e["type"], "created_at": int(at.timestamp()),
                      "repo_name": e["repo"]["name"], "actor_login": (e.get("actor") or {}).get("login"),
                      "action": p.get("action"), "number": number}))
PY
port=${http[single]}
run() { # name, command...: wall seconds and peak RSS of one run
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    read -r seconds rss <"$work/time"
    printf '%-44s %6.2f s  %8.0f events/s  peak RSS %4d MB\n' "$name" "$seconds" \
        "$(echo "$import_events / $seconds" | bc -l)" $((rss / 1024))
}
# The builds measured: this one, and OLD_BIN before it in each round if set.
builds=(${OLD_BIN:+old} new)
build_bin() { if [ "$1" = old ]; then echo "$OLD_BIN"; else echo "$bin"; fi; }
for round in 1 2 3; do
  for build in "${builds[@]}"; do
    rm -f "$work"/s.db*
    run "ghmetrics import --db (SQLite) [$build]" "$(build_bin "$build")" import --db "$work/s.db" "$hour"
    run "ghmetrics import --store clickhouse:// [$build]" "$(build_bin "$build")" import --store "clickhouse://127.0.0.1:$port/imp$build$round" "$hour"
  done
    q "$port" "CREATE DATABASE IF NOT EXISTS py$round"
    q "$port" "CREATE TABLE py$round.events (id UInt64, type Enum8('WatchEvent' = 1, 'PullRequestEvent' = 2, 'IssuesEvent' = 3),
        created_at DateTime('UTC'), repo_name String, actor_login Nullable(String), action Nullable(String),
        number Nullable(Int64)) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(created_at) ORDER BY (type, created_at, id)"
    run "python3 flatten | clickhouse-client JSONEachRow" sh -c \
        "python3 $work/flatten.py $hour | clickhouse-client --port ${tcp[single]} --query 'INSERT INTO py$round.events FORMAT JSONEachRow'"
done
echo "stored: $(q "$port" "SELECT count() FROM impnew1.events") by ghmetrics, $(q "$port" "SELECT count() FROM py1.events") by the script"

# The hour above is mostly untracked events: both imports wait on gunzip and
# the JSON parser, not on their store. Where the store is the limit: only the
# tracked events, each cut to the fields ghmetrics reads, twelve copies with
# new ids an hour apart.
cat >"$work/dense.py" <<'PY'
import gzip, json, sys
from datetime import datetime, timedelta
kept = []
for line in gzip.open(sys.argv[1], "rt"):
    e = json.loads(line)
    if e["type"] not in ("WatchEvent", "PullRequestEvent", "IssuesEvent"):
        continue
    p = e.get("payload") or {}
    small = {k: v for k, v in p.items() if k in ("action", "number")}
    for key in ("pull_request", "issue"):
        if key in p:
            small[key] = {"number": p[key].get("number")}
    kept.append((e, small))
with gzip.open(sys.argv[2], "wt", compresslevel=1) as out:
    for copy in range(12):
        for e, small in kept:
            at = datetime.strptime(e["created_at"], "%Y-%m-%dT%H:%M:%SZ") - timedelta(hours=copy)
            out.write(json.dumps({"id": str(int(e["id"]) + copy * 10**11), "type": e["type"],
                                  "actor": {"login": e["actor"]["login"]}, "repo": {"name": e["repo"]["name"]},
                                  "payload": small, "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
                                 separators=(",", ":")) + "\n")
PY
dense=$work/dense.json.gz
python3 "$work/dense.py" "$hour" "$dense"
import_events=$(gzip -dc "$dense" | wc -l)
echo "== 1b. import of $import_events tracked events only (write-bound)"
for round in 1 2 3; do
  for build in "${builds[@]}"; do
    rm -f "$work"/s.db*
    run "ghmetrics import --db (SQLite) [$build]" "$(build_bin "$build")" import --db "$work/s.db" "$dense"
    run "ghmetrics import --store clickhouse:// [$build]" "$(build_bin "$build")" import --store "clickhouse://127.0.0.1:$port/dense$build$round" "$dense"
  done
done
fi
[ "$events" -gt 0 ] || exit 0

echo "== 2. $events events generated in ClickHouse"
# The generator's mix (tests/fixtures' tracked events): WatchEvent started 145,
# IssuesEvent opened 53, PullRequestEvent opened 52, closed 43, IssuesEvent closed 26
# (of 319); repositories: half log-uniform over 1..1M (a heavy head), half uniform.
kinds="[(1,'started'),(3,'opened'),(2,'opened'),(2,'closed'),(3,'closed')]"
weights="[145,53,52,43,26]"
span=$((30 * 86400))
start=$(($(date +%s) - span))
generate() { # port, database, events table, openings table, filter
    q "$1" "INSERT INTO $2.$3 (id, type, created_at, repo_name, actor_login, action, number)
    SELECT id, CAST(tupleElement(kind, 1) AS Enum8('WatchEvent' = 1, 'PullRequestEvent' = 2, 'IssuesEvent' = 3)),
           toDateTime($start + intDiv(number * $span, $events)), concat('org', toString(rank % 9973), '/repo', toString(rank)),
           concat('user', toString(1 + intHash64(number * 13) % 1000000), if(number % 10 = 0, '[bot]', '')),
           tupleElement(kind, 2), toInt64(1 + intHash64(number * 17) % 99999)
    FROM (SELECT number, 10000000000 + number AS id,
                 if(intHash64(number * 3) % 2 = 0,
                    greatest(1, least(1000000, toUInt64(pow(1000000, (intHash64(number * 7) % 1000000) / 1000000)))),
                    1 + intHash64(number * 11) % 1000000) AS rank,
                 arrayElement($kinds, 1 + arrayFirstIndex(c -> c > intHash64(number * 5) % 319, arrayCumSum($weights)) - 1) AS kind
          FROM numbers($events) $5)"
    q "$1" "INSERT INTO $2.$4 (repo_name, created_at, id, number)
            SELECT repo_name, created_at, id, number FROM $2.$3 WHERE type = 'PullRequestEvent' AND action = 'opened'"
}
# Schema first, by ghmetrics itself (an import of nothing fails after migrating).
"$bin" import --store "clickhouse://127.0.0.1:${http[single]}/big" "$work/none.json" >/dev/null 2>&1 || true
"$bin" import --store "clickhouse://127.0.0.1:${http[shard1]}/big" --clickhouse-cluster bench \
    --clickhouse-shard-url "http://127.0.0.1:${http[shard1]}/" --clickhouse-shard-url "http://127.0.0.1:${http[shard2]}/" \
    "$work/none.json" >/dev/null 2>&1 || true
started=$(date +%s)
generate "${http[single]}" big events pr_openings ""
echo "one server: $(q "${http[single]}" "SELECT count() FROM big.events") events in $(($(date +%s) - started)) s"
started=$(date +%s)
generating=()
for shard in 0 1; do
    name=shard$((shard + 1))
    generate "${http[$name]}" big events_local pr_openings_local "WHERE intHash64(10000000000 + number) % 2 = $shard" &
    generating+=($!)
done
wait "${generating[@]}"
echo "cluster: $(q "${http[shard1]}" "SELECT count() FROM big.events") events in $(($(date +%s) - started)) s"
q "${http[single]}" "SELECT 'largest repository', repo_name, count() AS n FROM big.pr_openings GROUP BY repo_name ORDER BY n DESC LIMIT 1 FORMAT TabSeparated"

echo "== exactly once at query time instead, what it would cost (one server, clickhouse-client --time, best of 3)"
for sql in "SELECT count() FROM big.events" \
           "SELECT count() FROM big.events FINAL" \
           "SELECT uniqExact(id) FROM big.events" \
           "SELECT sum(events) FROM big.event_counts_by_minute"; do
    best=$(for _ in 1 2 3; do
        clickhouse-client --port "${tcp[single]}" --time --query "$sql" 2>&1 >/dev/null | tail -n 1
    done | sort -n | head -n 1)
    printf '  %-55s %8.3f s\n' "$sql" "$best"
done

largest=$(q "${http[single]}" "SELECT repo_name FROM big.pr_openings GROUP BY repo_name ORDER BY count() DESC LIMIT $samples")
for layout in single cluster; do
    if [ $layout = single ]; then
        store=(--store "clickhouse://127.0.0.1:${http[single]}/big")
    else
        store=(--store "clickhouse://127.0.0.1:${http[shard1]}/big" --clickhouse-cluster bench
               --clickhouse-shard-url "http://127.0.0.1:${http[shard1]}/" --clickhouse-shard-url "http://127.0.0.1:${http[shard2]}/")
    fi
    listen=127.0.0.1:$(free_port)
    "$bin" serve --no-poll --listen "$listen" "${store[@]}" >"$work/serve-$layout.log" 2>&1 &
    pids+=($!)
    until curl -sf "http://$listen/health" >/dev/null; do sleep 0.2; done
    if [ -n "${FILTERS:-}" ]; then
        echo "== with and without bots, $layout"
        for days in 1 30; do
            SERVE_URL="http://$listen" FIRST=$start LAST=$((start + span)) REPO=${largest%%$'\n'*} \
                DAYS=$days ROUNDS=$samples benches/scripts/filters.sh
        done
        continue
    fi
    echo "== metrics over HTTP, $layout ($samples requests each, none answered from the cache)"
    # shellcheck disable=SC2086 # one argument per repository
    python3 benches/scripts/latency.py "http://$listen" "$samples" "$start" "$((start + span))" $largest
    # pr-counts proves short rankings from the rollup's top rows; parts of
    # similar size (a bulk load's) weaken the proof, and rankings over a window
    # are proven from the hours' summaries, which writers make. The writer
    # (serve with polling; GitHub is a closed port here, so its polls fail and
    # are retried) merges the parts and summarises the hours at start: measure
    # again once it has.
    wlisten=127.0.0.1:$(free_port)
    "$bin" serve --listen "$wlisten" --github-api-url http://127.0.0.1:9/ "${store[@]}" \
        >"$work/writer-$layout.log" 2>&1 &
    writer=$!
    pids+=($writer)
    for _ in $(seq 1500); do
        grep -q "summarized the hours" "$work/writer-$layout.log" && break
        sleep 0.2
    done
    kill "$writer"
    echo "  (after the writer started: $(grep -o 'merged the ClickHouse rollups.*' "$work/writer-$layout.log" | head -n 1);" \
         "$(grep -o 'summarized the hours.*' "$work/writer-$layout.log" | head -n 1))"
    python3 benches/scripts/latency.py "http://$listen" "$samples" "$start" "$((start + span))" --pr-counts-only
done
