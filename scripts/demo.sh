#!/usr/bin/env bash
# wasmq's main job, end to end on this machine: build wasmq and the example
# plugins, start the server on a fresh SQLite database, register the examples
# under aliases, dispatch jobs and show their results, then stop the server.
#
#   scripts/demo.sh            # leaves the database in a temp dir, printed at the end
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
plugins=$(scripts/build-plugins.sh | tail -n 1)
cargo build --quiet --locked --bin wasmq --example thumbnails
target=${CARGO_TARGET_DIR:-$root/target}
wasmq="$target/debug/wasmq"

work=$(mktemp -d)
# The thumbnails example receives its callbacks on 127.0.0.1: allow loopback
# (callbacks to loopback and private addresses are refused by default).
"$wasmq" serve --listen 127.0.0.1:0 --database "sqlite://$work/wasmq.db" --cache-dir "$work/cache" \
  --callback-allow 127.0.0.0/8 2> "$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  url=$(sed -n 's/^wasmq listening on \(http:[^ ]*\)$/\1/p' "$work/server.log")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "${url:-}" ] || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
export WASMQ_URL=$url
unset WASMQ_TOKEN
echo "# wasmq serve on $url (database $work/wasmq.db); dashboard: $url/, API reference: $url/docs"

run() { echo; echo "\$ wasmq $*"; "$wasmq" "$@"; }
for plugin in echo wordcount thumbnail primes hello-command; do
  run push "$plugins/$plugin.wasm" --alias "$plugin"
done
run dispatch echo '{"hello": "wasmq"}' --wait
run dispatch wordcount '{"text": "One job, one sandbox. One bad job cannot take the host down.", "top": 3}' --wait
run dispatch primes '{"limit": 50000000}' --fuel 10000000000 --wait
run dispatch hello-command '{"name": "command plugin"}' --wait
echo; echo "\$ cargo run --example thumbnails -- examples/images $work/thumbs --size 64"
"$target/debug/examples/thumbnails" examples/images "$work/thumbs" --size 64
run status
# Plugins that use capabilities (contract 0.2.0), run locally: a secret from a flag,
# key-value state kept in a file between runs (on a server, the alias grants them).
run run "$plugins/sign.wasm" '{"message": "pay 10 to bob"}' --secret key=demo-key
run run "$plugins/counter.wasm" '{}' --kv-file "$work/kv.json"
run run "$plugins/counter.wasm" '{"by": 41}' --kv-file "$work/kv.json"
