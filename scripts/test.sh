#!/usr/bin/env bash
# Runs every test of wasmq: unit tests, and the integration suite in tests/all,
# which builds the plugins in plugins/ itself (once per run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
cargo test --locked --workspace "$@"
