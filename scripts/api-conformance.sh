#!/usr/bin/env bash
# Proves the HTTP API against its own OpenAPI document with tools nobody here
# wrote, on a live `wasmq serve` (token, fresh SQLite database):
#   1. openapi-spec-validator: /openapi.json is a valid OpenAPI 3.1 document;
#   2. schemathesis (`--checks all`): every operation answers what the document
#      says, for generated requests around real data (an alias, a job, a batch).
# WASMQ_CONFORMANCE_SEED / WASMQ_CONFORMANCE_EXAMPLES explore further than CI.
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

# Real data for the operations that name a resource: a module, an alias to it,
# a finished job whose payload is an array, and a batch.
api() { curl -fsS -H "Authorization: Bearer $WASMQ_TOKEN" "$@"; }
json() { "$venv/python" -c "import json, sys; print(json.load(sys.stdin)$1)"; }
digest=$(api -H 'Content-Type: application/wasm' --data-binary "@$plugins/echo.wasm" "$url/v1/modules" | json '["digest"]')
api -X PUT -H 'Content-Type: application/json' -d "{\"module\": \"$digest\"}" "$url/v1/aliases/echo" >/dev/null
job=$(api -H 'Content-Type: application/json' -d '{"alias": "echo", "payload": [1, 2, 3]}' "$url/v1/jobs" | json '["id"]')
api "$url/v1/jobs/$job/wait?timeout_ms=60000" | json '["status"]' | grep -qx succeeded
batch=$(api -H 'Content-Type: application/json' -d '{"jobs": [{"alias": "echo", "payload": "x"}]}' "$url/v1/batches" | json '["id"]')

# schemathesis: every check, on every operation, bounded by --max-examples and
# a fixed seed (the same cases every run; a failure reproduces). Path
# parameters point at the data above, so operations reach past their 404s.
cat > "$work/schemathesis.toml" <<TOML
headers = { Authorization = "Bearer $WASMQ_TOKEN" }
# Event streams end when the job has ended (the seeded job has).
max-stream-events = 10
request-timeout = 30.0

[[operations]]
include-operation-id = ["getJob", "waitJob", "cancelJob", "retryJob", "streamJobEvents"]
parameters = { id = "$job" }

[[operations]]
include-operation-id = "getBatch"
parameters = { id = "$batch" }

[[operations]]
include-path-regex = "^/v1/aliases/"
parameters = { name = "echo" }

[[operations]]
include-operation-id = ["getModule", "deleteModule"]
parameters = { digest = "$digest" }

# callback_secret needs callback_url, a dependency between query parameters
# that OpenAPI cannot state: the URL is always given (.invalid never resolves,
# so the deliveries fail without leaving the machine).
[[operations]]
include-operation-id = "dispatchJob"
parameters = { alias = "echo", callback_url = "https://callback.invalid/hook" }

# No schema can say which bytes are a valid WebAssembly module: generated
# bodies are refused with 400 invalid_module, as documented.
[[operations]]
include-operation-id = "uploadModule"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404"]
TOML
echo "# schemathesis"
(cd "$work" && timeout 600 "$venv/schemathesis" --config-file "$work/schemathesis.toml" run "$url/openapi.json" \
  --checks all --max-examples "${WASMQ_CONFORMANCE_EXAMPLES:-25}" --seed "${WASMQ_CONFORMANCE_SEED:-1}" --no-color)
