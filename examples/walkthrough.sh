#!/usr/bin/env bash
# The wasmq HTTP API with nothing but curl: upload a plugin, name it, dispatch a
# job and wait for its result.
#
#   WASMQ_URL=http://127.0.0.1:7700 examples/walkthrough.sh path/to/echo.wasm
#
# With a token-protected server, set WASMQ_TOKEN too.
set -euo pipefail
url=${WASMQ_URL:-http://127.0.0.1:7700}
plugin=${1:?usage: walkthrough.sh <plugin.wasm>}
auth=()
[ -n "${WASMQ_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $WASMQ_TOKEN")
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

echo "# 1. upload the module: the answer names it by its blake3 digest"
module=$(curl -sS --fail-with-body "${auth[@]}" -H 'Content-Type: application/wasm' \
  --data-binary "@$plugin" "$url/v1/modules")
echo "$module"
digest=$(echo "$module" | field digest)

echo "# 2. point the alias 'walkthrough' at it (aliases keep a version history)"
curl -sS --fail-with-body "${auth[@]}" -X PUT -H 'Content-Type: application/json' \
  -d "{\"module\": \"$digest\", \"max_attempts\": 2}" "$url/v1/aliases/walkthrough"
echo

echo "# 3. dispatch a job by alias"
job=$(curl -sS --fail-with-body "${auth[@]}" -H 'Content-Type: application/json' \
  -d '{"alias": "walkthrough", "payload": {"hello": "curl"}, "priority": 700}' "$url/v1/jobs")
echo "$job"
id=$(echo "$job" | field id)

echo "# 4. wait for it (long-poll) and show the result"
curl -sS --fail-with-body "${auth[@]}" "$url/v1/jobs/$id/wait?timeout_ms=30000"
echo
