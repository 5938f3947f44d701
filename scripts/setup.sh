#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test wasmq: the wasm targets
# the plugins are built for. Idempotent; called by demo.sh, test.sh and .ci/run.
set -euo pipefail
if ! command -v cargo >/dev/null; then
  echo "wasmq needs a Rust toolchain (rustup, Rust 1.95+)" >&2
  exit 1
fi
installed=$(rustup target list --installed)
for target in wasm32-wasip2 wasm32-wasip1; do
  grep -qx "$target" <<<"$installed" || rustup target add "$target" >&2
done
