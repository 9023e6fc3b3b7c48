#!/usr/bin/env bash
# Benchmarks open-do against Cloudflare's workerd: builds what it needs, installs workerd from
# npm when npm is present and etcd (Debian's etcd-server, for the three-node rows) when apt-get
# can, then runs `opendo-bench` (extra arguments are passed to it, e.g. `--duration 10s
# --objects 5000`). Prints tables and writes target/bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null
echo "building opendo and the load generator (release)..."
cargo build --release -p opendo-cli -p opendo-bench
echo "building the benchmark object..."
cargo build --release --target wasm32-wasip2 --manifest-path bench/object/Cargo.toml

if command -v npm >/dev/null; then
  # `npm install` with the committed lock file: the same pinned version as `npm ci`, but it also
  # works with registries that serve only this platform's workerd package (`npm ci` then
  # refuses the lock file for missing the other platforms' optional packages).
  echo "installing workerd (npm install, pinned by package-lock.json)..."
  (cd bench/workerd && npm install --no-audit --no-fund --loglevel=error)
else
  echo "npm not found: measuring open-do only"
fi

if ! command -v etcd >/dev/null && command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  echo "installing etcd (Debian's etcd-server) for the three-node rows..."
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends etcd-server >/dev/null; then
    echo "could not install etcd: the three-node rows are skipped"
  fi
fi

# Many objects hold files open: use the whole open-file allowance.
ulimit -n "$(ulimit -Hn)" || true
exec target/release/opendo-bench "$@"
