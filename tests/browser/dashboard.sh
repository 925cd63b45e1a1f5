#!/usr/bin/env bash
# The dashboard in a real headless browser: import known events, serve them,
# load `/` in Chromium, and check that the numbers, both charts, the trending and
# top-repository tables and a repository's view appear and match answers computed
# with sqlite3 straight from the events table; then save a screenshot. Then the
# bots switch (one busy stargazer named a bot) on every panel, an absolute range
# from the URL, a window holding nothing (the notice and its one-click jump to the
# newest data), and an empty store whose polls fail (why, and how to get data).
#
#   tests/browser/dashboard.sh            (needs chromium, sqlite3, curl; CI installs them)
#
# Writes target/browser/{dashboard.html,dashboard.png,service.log}.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/serve.sh

for tool in chromium sqlite3 curl; do
    command -v "$tool" >/dev/null || { echo "dashboard.sh: $tool is not installed" >&2; exit 1; }
done

target="${CARGO_TARGET_DIR:-target}"
out="$target/browser"
rm -rf "$out" && mkdir -p "$out"
cargo build --quiet --locked
bin="$target/debug/ghmetrics"
db="$out/events.db"
"$bin" import --db "$db" tests/fixtures/events-2015-01-01-first1000.json.gz >/dev/null

# Expected answers, from the raw events (not the rollups the service reads).
count_of() { sqlite3 "$db" "SELECT count(*) FROM events WHERE type = '$1'"; }
repo=$(sqlite3 "$db" "SELECT repo_name FROM events
    WHERE type = 'PullRequestEvent' AND action = 'opened'
    GROUP BY repo_name HAVING count(*) >= 2 ORDER BY count(*) DESC, repo_name LIMIT 1")
average=$(sqlite3 "$db" "SELECT avg(gap) FROM (
    SELECT created_at - LAG(created_at) OVER (ORDER BY created_at, id) AS gap
    FROM events WHERE type = 'PullRequestEvent' AND action = 'opened' AND repo_name = '$repo')")
top_repo=$(sqlite3 "$db" "SELECT repo_name FROM events WHERE type = 'PullRequestEvent'
    GROUP BY repo_name ORDER BY count(*) DESC, repo_name LIMIT 1")
# The trending panel's rows: the ten most starred, most first, ties by name.
trending=$(sqlite3 "$db" "SELECT repo_name FROM events WHERE type = 'WatchEvent'
    GROUP BY repo_name ORDER BY count(*) DESC, repo_name LIMIT 10" | paste -sd ' ')

# One busy stargazer is named a bot, so that the bots switch changes the page.
bot=$(sqlite3 "$db" "SELECT lower(actor_login) FROM events WHERE type = 'WatchEvent'
    GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
human="lower(actor_login) IS NOT '$bot'"
serve_fixture "$db" "$out/service.log" --no-poll --bot-login "$bot"
curl -fsS "http://$address/health" >/dev/null

# The fixture is from 2015: a window of 10,000,000 minutes (19 years) holds it all.
url="http://$address/?offset_minutes=10000000&repo=$repo"
browser=(chromium --headless --no-sandbox --disable-gpu --disable-background-networking
    --disable-dev-shm-usage --hide-scrollbars
    # Virtual time runs the page's timers without waiting for them: 35 s is
    # the first load plus one automatic refresh (every 30 s).
    --virtual-time-budget=35000)
"${browser[@]}" --dump-dom "$url" >"$out/dashboard.html" 2>"$out/chromium.log"
"${browser[@]}" --window-size=1280,1500 --screenshot="$out/dashboard.png" "$url" >>"$out/chromium.log" 2>&1

dom="$out/dashboard.html"
failures=0
check() { # description, command...
    local what=$1; shift
    if "$@"; then echo "ok: $what"; else echo "FAILED: $what" >&2; failures=$((failures + 1)); fi
}
shown_count() { sed -n "s/.*id=\"count-$1\">\([0-9,]*\)<.*/\1/p" "$dom" | tr -d ,; }
for type in WatchEvent PullRequestEvent IssuesEvent; do
    expected=$(count_of "$type")
    check "$type count shows $expected (got '$(shown_count "$type")')" test "$(shown_count "$type")" = "$expected"
done
for chart in bar-chart timeline-chart; do
    check "$chart loaded" grep -q "id=\"$chart\"[^>]*data-state=\"loaded\"\|data-state=\"loaded\"[^>]*id=\"$chart\"" "$dom"
done
shown_average=$(sed -n 's/.*id="repo-average" data-seconds="\([0-9.]*\)".*/\1/p' "$dom")
check "average PR gap of $repo is $average (got '$shown_average')" \
    awk -v a="$average" -v b="$shown_average" 'BEGIN { exit !(b != "" && (a - b) < 0.001 && (b - a) < 0.001) }'
check "lookup shows $repo" grep -q "id=\"repo-shown\">$repo<" "$dom"
check "top repositories list $top_repo" grep -q ">$top_repo</a>" "$dom"
shown_trending=$(python3 -c 'import re, sys
table = re.search(r"<tbody id=\"trending\">(.*?)</tbody>", open(sys.argv[1]).read(), re.S)
print(" ".join(re.findall(r"<a href=\"#\">([^<]*)</a>", table.group(1) if table else "")))' "$dom")
check "trending lists the ten most starred in order (got '$shown_trending')" test "$shown_trending" = "$trending"
check "the page refreshed itself" grep -q 'data-refreshed="2"' "$dom"
# A repository's events as its view writes them: "1 WatchEvent, 2 PullRequestEvent, 0 IssuesEvent".
repo_counts() { # repository, condition
    for type in WatchEvent PullRequestEvent IssuesEvent; do
        echo "$(sqlite3 "$db" "SELECT count(*) FROM events WHERE type = '$type' AND repo_name = '$1' AND $2") $type"
    done | paste -sd ',' | sed 's/,/, /g'
}
shown_repo_counts() { sed -n 's/.*id="repo-counts"[^>]*>\([^<]*\)<.*/\1/p' "$dom"; }
expected=$(repo_counts "$repo" 1)
check "the repository's view counts its events ($expected; got '$(shown_repo_counts)')" test "$(shown_repo_counts)" = "$expected"
for chart in repo-timeline repo-stars; do
    check "$chart loaded" grep -q "id=\"$chart\"[^>]*data-state=\"loaded\"\|data-state=\"loaded\"[^>]*id=\"$chart\"" "$dom"
done
check "no error shown" bash -c "! grep -q 'class=\"error\" id=\"[a-z-]*\">[^<]' '$dom'"
check "screenshot saved" bash -c "[ \$(stat -c %s '$out/dashboard.png') -gt 20000 ]"

# The bots switch, from the URL: every panel leaves the named bot's events out.
bot_repo=$(sqlite3 "$db" "SELECT repo_name FROM events WHERE lower(actor_login) = '$bot' ORDER BY id LIMIT 1")
url="http://$address/?offset_minutes=10000000&exclude_bots=true&repo=$bot_repo"
"${browser[@]}" --dump-dom "$url" >"$out/without-bots.html" 2>>"$out/chromium.log"
dom="$out/without-bots.html"
check "without bots: the switch is on" grep -q 'id="exclude-bots"[^>]*checked\|checked[^>]*id="exclude-bots"' "$dom"
for type in WatchEvent PullRequestEvent IssuesEvent; do
    expected=$(sqlite3 "$db" "SELECT count(*) FROM events WHERE type = '$type' AND $human")
    check "without bots: $type count shows $expected (got '$(shown_count "$type")')" test "$(shown_count "$type")" = "$expected"
done
trending=$(sqlite3 "$db" "SELECT repo_name FROM events WHERE type = 'WatchEvent' AND $human
    GROUP BY repo_name ORDER BY count(*) DESC, repo_name LIMIT 10" | paste -sd ' ')
shown_trending=$(python3 -c 'import re, sys
table = re.search(r"<tbody id=\"trending\">(.*?)</tbody>", open(sys.argv[1]).read(), re.S)
print(" ".join(re.findall(r"<a href=\"#\">([^<]*)</a>", table.group(1) if table else "")))' "$dom")
check "without bots: trending leaves the bot's stars out (got '$shown_trending')" test "$shown_trending" = "$trending"
expected=$(repo_counts "$bot_repo" "$human")
check "without bots: $bot_repo's view leaves the bot out ($expected, not $(repo_counts "$bot_repo" 1); got '$(shown_repo_counts)')" \
    test "$(shown_repo_counts)" = "$expected" -a "$expected" != "$(repo_counts "$bot_repo" 1)"
check "without bots: the bot share is shown" grep -q "% by bots" "$dom"
"${browser[@]}" --window-size=1280,1700 --screenshot="$out/without-bots.png" "$url" >>"$out/chromium.log" 2>&1

# An absolute range from the URL: the middle third of the fixture's time.
read -r first last < <(sqlite3 -separator ' ' "$db" "SELECT min(created_at), max(created_at) FROM events")
from=$((first + (last - first) / 3))
to=$((first + 2 * (last - first) / 3))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
url="http://$address/?from=$(iso $from)&to=$(iso $to)"
"${browser[@]}" --dump-dom "$url" >"$out/range.html" 2>>"$out/chromium.log"
dom="$out/range.html"
for type in WatchEvent PullRequestEvent IssuesEvent; do
    expected=$(sqlite3 "$db" "SELECT count(*) FROM events WHERE type = '$type' AND created_at >= $from AND created_at < $to")
    check "range: $type count shows $expected (got '$(shown_count "$type")')" test "$(shown_count "$type")" = "$expected"
done
check "range: the from/to pickers show the range" grep -q "id=\"range\">" "$dom"
check "range: no notice for a window with events" grep -q 'class="notice" id="window-notice" hidden' "$dom"
check "range: the pickers take UTC in ISO form" grep -q 'id="from" class="utc"[^>]*placeholder="2015-01-01T03:00:00"' "$dom"


# A window with nothing in it (the fixture is from 2015): the notice offers the
# newest data in one click, a link that shows every stored event.
"${browser[@]}" --dump-dom "http://$address/?offset_minutes=60" >"$out/empty-window.html" 2>>"$out/chromium.log"
dom="$out/empty-window.html"
check "empty window: the notice says where the data is" grep -q "No events in this window. The [0-9,]* stored events are from 2015-01-01" "$dom"
jump=$(sed -n 's/.*<a id="jump" href="\([^"]*\)".*/\1/p' "$dom" | sed 's/&amp;/\&/g')
check "empty window: a link to the newest data ($jump)" test -n "$jump"
"${browser[@]}" --dump-dom "http://$address$jump" >"$out/jumped.html" 2>>"$out/chromium.log"
dom="$out/jumped.html"
for type in WatchEvent PullRequestEvent IssuesEvent; do
    expected=$(count_of "$type")
    check "after the jump: $type count shows $expected (got '$(shown_count "$type")')" test "$(shown_count "$type")" = "$expected"
done

# A store spanning years (the fixtures of 2015, 2019 and 2021): the window menu
# offers all of it and its newest day, week and month.
"$bin" import --db "$out/years.db" tests/fixtures/ >/dev/null
serve_fixture "$out/years.db" "$out/years-service.log"
"${browser[@]}" --dump-dom "http://$address/" >"$out/years.html" 2>>"$out/chromium.log"
dom="$out/years.html"
span=$(sqlite3 "$out/years.db" "SELECT strftime('%Y-%m-%d %H:%M:%S UTC', min(created_at), 'unixepoch') || ' to ' || strftime('%Y-%m-%d %H:%M:%S UTC', max(created_at), 'unixepoch') FROM events")
check "years: the stored range is offered ($span)" grep -q "<option value=\"stored-all\"[^>]*>everything stored: $span</option>" "$dom"
for newest in day "7 days" "30 days"; do
    check "years: its newest $newest is offered" grep -q ">its newest $newest</option>" "$dom"
done

# Archive hour files (2021-07-21's hours 06 to 09, filed by created hour, so each
# settles with its own file), hour 08 cut to two events: the page says up to
# when the window is final and names the thin hour as suspect.
mkdir -p "$out/hours"
python3 - "$out/hours" <<'PY'
import gzip, json, sys
lines = gzip.open("tests/fixtures/events-2021-07-21-sample.json.gz", "rt").read().splitlines()
hours = {}
for line in lines:
    hours.setdefault(json.loads(line)["created_at"][11:13], []).append(line)
for hour, events in hours.items():
    if hour == "08":
        events = [e for e in events if json.loads(e)["type"] == "WatchEvent"][:2]
    with gzip.open(f"{sys.argv[1]}/2021-07-21-{int(hour)}.json.gz", "wt") as out:
        out.write("\n".join(events) + "\n")
PY
"$bin" import --db "$out/hours.db" "$out/hours" >/dev/null
serve_fixture "$out/hours.db" "$out/hours-service.log"
"${browser[@]}" --dump-dom "http://$address/?from=2021-07-21T06:00:00Z&to=2021-07-21T10:00:00Z" >"$out/hours.html" 2>>"$out/chromium.log"
dom="$out/hours.html"
check "archive hours: final up to the last settled hour" grep -q "Final up to 2021-07-21 10:00:00 UTC" "$dom"
check "archive hours: the thin hour is suspect" grep -q "Suspect hours (likely holes in the archive): 2021-07-21 08:00:00 UTC\." "$dom"

# Nothing stored and GitHub unreachable: the page says why and how to get data.
serve_fixture "$out/empty.db" "$out/empty-service.log" --github-api-url http://127.0.0.1:9/
for _ in $(seq 100); do
    curl -fsS "http://$address/health" | grep -q '"last_poll_problem":"' && break
    sleep 0.1
done
"${browser[@]}" --dump-dom "http://$address/" >"$out/empty-store.html" 2>>"$out/chromium.log"
dom="$out/empty-store.html"
check "empty store: says polling fails and why" grep -q "Nothing is stored yet, and polling GitHub fails: cannot reach the GitHub API" "$dom"
check "empty store: says how to import" grep -q "<code>ghmetrics import FILE.json.gz</code>" "$dom"

if [ "$failures" -gt 0 ]; then
    echo "dashboard.sh: $failures check(s) failed; see $out/" >&2
    exit 1
fi
echo "dashboard.sh: all checks passed; screenshot in $out/dashboard.png"
