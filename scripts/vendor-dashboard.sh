#!/usr/bin/env bash
# Refreshes the dashboard's one vendored file: htm's `preact/standalone`
# build (Preact, its hooks and htm's tagged templates in one 13 KB ES
# module, no build step), from the npm registry, checked against the
# integrity the registry publishes. The file is committed, so neither the
# build nor the server needs npm or the network.
set -euo pipefail
version=3.1.1
integrity='sha512-983Vyg8NwUE7JkZ6NmOqpCZ+sh1bKv2iYTlUkzlWmA5JD2acKoxd4KVxbMmxX/85mtfdnDmTFoNKcg5DGAvxNQ=='
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "htm@$version" >/dev/null
got="sha512-$(openssl dgst -sha512 -binary "htm-$version.tgz" | base64 -w0)"
[ "$got" = "$integrity" ] || { echo "htm@$version: integrity $got, expected $integrity" >&2; exit 1; }
tar xzf "htm-$version.tgz"
out="$root/runtime/assets/dashboard/vendor"
cp package/preact/standalone.module.js "$out/htm-preact.js"
cp package/LICENSE "$out/LICENSE-htm"
echo "vendored htm@$version (preact/standalone) into $out"
