#!/usr/bin/env bash
# Builds the guest SDK and every plugin in plugins/ and collects the .wasm files.
#
#   scripts/build-plugins.sh            # -> $CARGO_TARGET_DIR/wasm-plugins/out (or target/...)
#   WASMQ_PLUGINS_DIR=/some/dir scripts/build-plugins.sh
#
# Output names follow the crate names: echo.wasm, thumbnail.wasm, ..., plus
# hello-command.p1.wasm and env-command.p1.wasm (the same programs as WASI preview 1
# core modules).
# Prints the output directory on its last line. The integration tests call this.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${WASMQ_PLUGINS_DIR:-${CARGO_TARGET_DIR:-$root/target}/wasm-plugins}
out=$base/out
mkdir -p "$out"
export CARGO_TARGET_DIR=$base/target
manifest=$root/plugins/Cargo.toml

cargo build --quiet --release --locked --manifest-path "$manifest" --target wasm32-wasip2 >&2
cargo build --quiet --release --locked --manifest-path "$manifest" --target wasm32-wasip1 -p hello-command -p env-command >&2

for dir in "$root"/plugins/examples/* "$root"/plugins/testing/*; do
  name=$(basename "$dir")
  artifact=$CARGO_TARGET_DIR/wasm32-wasip2/release/${name//-/_}.wasm
  [ -f "$artifact" ] || artifact=$CARGO_TARGET_DIR/wasm32-wasip2/release/$name.wasm
  cp -f "$artifact" "$out/$name.wasm"
done
for name in hello-command env-command; do
  cp -f "$CARGO_TARGET_DIR/wasm32-wasip1/release/$name.wasm" "$out/$name.p1.wasm"
done
echo "$out"
