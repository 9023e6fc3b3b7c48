#!/usr/bin/env bash
# Benchmarks open-do against Cloudflare's workerd: builds what it needs, installs workerd from
# npm when npm is present, then runs `opendo-bench` (extra arguments are passed to it, e.g.
# `--duration 10s --objects 5000`). Prints a table and writes target/bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null
echo "building opendo and the load generator (release)..."
cargo build --release -p opendo-cli -p opendo-bench
echo "building the benchmark object..."
cargo build --release --target wasm32-wasip2 --manifest-path bench/object/Cargo.toml

if command -v npm >/dev/null; then
  echo "installing workerd (npm ci)..."
  (cd bench/workerd && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "npm not found: measuring open-do only"
fi

# Many objects hold files open: use the whole open-file allowance.
ulimit -n "$(ulimit -Hn)" || true
exec target/release/opendo-bench "$@"
