#!/usr/bin/env bash
# Clients generated from the OpenAPI document work: openapi-spec-validator
# checks /openapi.json against OpenAPI 3.1, openapi-python-client generates a
# Python client from it, and client_check.py calls every endpoint through
# that client (typed JSON answers equal to the raw ones, the 422 body, and
# both charts' PNG and SVG bytes).
#
#   tests/contract/client.sh        (creates target/client-venv on first use)
#
# Writes target/client/{openapi.json,service.log} and the generated client.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/serve.sh

target="${CARGO_TARGET_DIR:-target}"
out="$target/client"
venv="$target/client-venv"
rm -rf "$out" && mkdir -p "$out"
if [ ! -x "$venv/bin/openapi-python-client" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "openapi-python-client==0.29.1" "openapi-spec-validator==0.9.0"
fi
serve_imported_fixtures "$out"

curl -sf "http://$address/openapi.json" >"$out/openapi.json"
"$venv/bin/openapi-spec-validator" "$out/openapi.json"
# The generator reads only JSON, text and octet-stream answers by default;
# its documented override maps the charts' image types to bytes.
printf 'content_type_overrides:\n  image/png: application/octet-stream\n  image/svg+xml: application/octet-stream\n' \
    >"$out/generator.yaml"
generator="$(cd "$venv" && pwd)/bin/openapi-python-client"   # absolute: run from $out
(cd "$out" && "$generator" generate --path openapi.json \
    --meta none --config generator.yaml --output-path ghmetrics_client >generate.log 2>&1) \
    || { cat "$out/generate.log" >&2; exit 1; }
if grep -q "WARNING" "$out/generate.log"; then
    cat "$out/generate.log" >&2
    echo "client.sh: the generator left something out" >&2
    exit 1
fi
PYTHONPATH="$out" "$venv/bin/python" tests/contract/client_check.py "http://$address"
