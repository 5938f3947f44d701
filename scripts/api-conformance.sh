#!/usr/bin/env bash
# Proves the HTTP API against its own OpenAPI document with tools nobody here
# wrote, on a live `wasmq serve` (token, fresh SQLite database):
#   1. openapi-spec-validator: /openapi.json is a valid OpenAPI 3.1 document.
# The tools are pinned and installed into a throwaway venv under the cache dir
# (removed on exit). Any failure fails the script. Called by .ci/run after
# scripts/test.sh, and by scripts/test.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Pinned: a new release of a checker must not change a green build by itself.
tools=(openapi-spec-validator==0.9.0 schemathesis==4.32.5 openapi-python-client==0.29.1)

cache=${WASMQ_CACHE:-$HOME/.cache/wasmq}
mkdir -p "$cache"
work=$(mktemp -d "$cache/api-conformance.XXXXXX")
# WASMQ_KEEP=1 keeps the work dir (server log, document, generated client) for a look.
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "${WASMQ_KEEP:-}" ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "# api-conformance: installing ${tools[*]}"
python3 -m venv "$work/venv"
venv="$work/venv/bin"
"$venv/pip" install --quiet --disable-pip-version-check "${tools[@]}"

plugins=$(scripts/build-plugins.sh | tail -n 1)
cargo build --quiet --locked --bin wasmq
target=${CARGO_TARGET_DIR:-$root/target}
wasmq="$target/debug/wasmq"

export WASMQ_TOKEN=conformance-token
WASMQ_TOKEN=$WASMQ_TOKEN "$wasmq" serve --listen 127.0.0.1:0 --database "sqlite://$work/wasmq.db" \
  --cache-dir "$work/cache" 2> "$work/server.log" &
server=$!
url=
for _ in $(seq 1 400); do
  url=$(sed -n 's/^wasmq listening on \(http:[^ ]*\)$/\1/p' "$work/server.log")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
echo "# api-conformance: wasmq serve on $url"

curl -fsS "$url/openapi.json" -o "$work/openapi.json"
echo "# openapi-spec-validator"
"$venv/openapi-spec-validator" "$work/openapi.json"
