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
# The dashboard's browser test (tests/all/server/dashboard.rs) drives Chromium
# through playwright-core, pinned by tests/dashboard's lock file.
if command -v npm >/dev/null && [ ! -d tests/dashboard/node_modules/playwright-core ]; then
  npm ci --prefix tests/dashboard --no-audit --no-fund --silent
fi
cargo test --locked --workspace "$@"
# The integration suite again with every test server on PostgreSQL (a database
# of its own per test, see tests/all/support.rs); the storage suite already ran
# on both backends above. Needs PostgreSQL at WASMQ_TEST_POSTGRES (default
# postgres://postgres@127.0.0.1:5432/postgres): required under CI=true,
# skipped loudly elsewhere when nothing listens on 127.0.0.1:5432.
if [ "${CI:-}" = true ] || [ -n "${WASMQ_TEST_POSTGRES:-}" ] || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  WASMQ_TEST_BACKEND=postgres cargo test --locked --test all "$@" -- --skip store::
else
  echo "SKIPPED: the integration suite on PostgreSQL (nothing listens on 127.0.0.1:5432; set WASMQ_TEST_POSTGRES)" >&2
fi
if [ $# -eq 0 ]; then
  # Bounded: a hung server or checker fails the run instead of stalling it.
  timeout 900 scripts/api-conformance.sh
fi
