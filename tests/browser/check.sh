#!/usr/bin/env bash
# Drives the chat-room example's page and the admin inspector in headless Chromium
# (tests/e2e/tests/browser.rs).
# Installs Debian's chromium when it is missing and this user can (root, or sudo without a password).
set -euo pipefail
cd "$(dirname "$0")/../.."

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    if command -v apt-get > /dev/null; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
        echo "Installing chromium with apt-get..."
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium > /dev/null
    else
        echo "error: Chromium not found at $chromium; install it or set CHROMIUM=/path/to/chromium" >&2
        exit 1
    fi
fi

# The test runs the opendo binary next to it; building the whole workspace's tests builds it with
# the same features as `cargo test --workspace` (a no-op right after the test suite).
cargo test --workspace --no-run
CHROMIUM="$chromium" cargo test --workspace --test browser -- --ignored
