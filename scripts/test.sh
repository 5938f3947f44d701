#!/usr/bin/env bash
# Runs every test of wasmq: unit tests, the integration suite in tests/all
# (which builds the plugins in plugins/ itself, once per run), and the API's
# conformance to its OpenAPI document (scripts/api-conformance.sh). Arguments
# are passed to `cargo test` (e.g. a test name filter) and then skip the
# conformance run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
cargo test --locked --workspace "$@"
if [ $# -eq 0 ]; then
  # Bounded: a hung server or checker fails the run instead of stalling it.
  timeout 900 scripts/api-conformance.sh
fi
