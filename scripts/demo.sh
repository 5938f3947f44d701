#!/usr/bin/env bash
# wasmq's main job, end to end on this machine: build the example plugins and
# wasmq, then run plugins through `wasmq run` and show their results.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
plugins=$(scripts/build-plugins.sh | tail -n 1)
cargo build --quiet --locked --bin wasmq
wasmq="${CARGO_TARGET_DIR:-$root/target}/debug/wasmq"

show() { echo; echo "\$ wasmq run $*"; "$wasmq" run "$@"; }
show "$plugins/echo.wasm" '{"hello": "sandbox"}'
show "$plugins/wordcount.wasm" "{\"text\": \"$(head -n 3 README.md | tr -d '"`\\' | tr '\n' ' ')\", \"top\": 3}"
show "$plugins/primes.wasm" '{"limit": 2000000}'
show "$plugins/hello-command.wasm" '{"name": "command plugin"}'
echo; echo "# a plugin that never stops is stopped by its fuel budget (exit code 12):"
show "$plugins/infinite-loop.wasm" '{}' --fuel 50000000 || echo "(exit code $?)"
