#!/usr/bin/env bash
# The OpenAPI document against the real service: schemathesis generates
# requests from /openapi.json (valid and invalid ones) and checks every answer
# with all its checks: no 5xx, every status and body documented, every
# schema-valid request accepted, every schema-invalid one rejected.
#
#   tests/contract/schemathesis.sh        (creates target/schemathesis-venv on first use)
#
# Writes target/schemathesis/{service.log,report.txt}.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/serve.sh

target="${CARGO_TARGET_DIR:-target}"
out="$target/schemathesis"
venv="$target/schemathesis-venv"
rm -rf "$out" && mkdir -p "$out"
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
serve_imported_fixtures "$out"

status=0
"$venv/bin/schemathesis" --config-file tests/contract/schemathesis.toml \
    run "http://$address/openapi.json" --checks all \
    --max-examples 100 --seed 1 --no-color >"$out/report.txt" 2>&1 || status=$?
tail -n 25 "$out/report.txt"
if [ "$status" -ne 0 ]; then
    echo "schemathesis.sh: failures above (whole report: $out/report.txt)" >&2
    exit "$status"
fi
