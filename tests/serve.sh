# Sourced by the shell tests: `serve_fixture DB LOG [ARGS...]` starts `$bin serve`
# with ARGS (default `--no-poll`) on DB at 127.0.0.1:0 in the background, stops it
# (and any other it started) when the script exits, and sets `address` to where it
# listens (or fails with its log). SERVE_PREFIX, if set, is a command the service
# is started under (e.g. `taskset -c 1`).
services=""
serve_fixture() {
    local db=$1 log=$2
    shift 2
    [ "$#" -gt 0 ] || set -- --no-poll
    # shellcheck disable=SC2086 # the prefix is words
    ${SERVE_PREFIX:-} "$bin" serve "$@" --db "$db" --listen 127.0.0.1:0 >"$log" 2>&1 &
    service=$!
    services="$services $service"
    # shellcheck disable=SC2064,SC2086 # the list is expanded now, on purpose
    trap "kill $services 2>/dev/null || true" EXIT
    address=""
    for _ in $(seq 100); do
        address=$(sed -n 's/.*serving HTTP address=\([0-9.:]*\).*/\1/p' "$log")
        [ -n "$address" ] && break
        sleep 0.1
    done
    [ -n "$address" ] || { cat "$log" >&2; echo "the service did not start" >&2; exit 1; }
}

# `serve_imported_fixtures OUT`: builds the debug binary (as `$bin`), imports
# tests/fixtures into OUT/events.db (real events, so that answers are not all
# zeros) and serves it as serve_fixture does, logging to OUT/service.log.
serve_imported_fixtures() {
    cargo build --quiet --locked
    bin="${CARGO_TARGET_DIR:-target}/debug/ghmetrics"
    "$bin" import --db "$1/events.db" tests/fixtures/*.json.gz >/dev/null
    serve_fixture "$1/events.db" "$1/service.log"
}
