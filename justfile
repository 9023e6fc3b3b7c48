# Commands contributors type. `just --list` shows them.

# Install what building guests needs (the wasm32-wasip2 standard library).
setup:
    rustup target add wasm32-wasip2

# Serve the counter example on 127.0.0.1:8787.
run example="counter":
    cargo run -- run guest-examples/{{example}}

# The whole test suite (builds the test guests first).
test:
    cargo test --workspace

# The chat-room page in two headless Chromium tabs, and the admin inspector (installs Debian's chromium if missing).
browser-check:
    bash tests/browser/check.sh

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cd tests/guests && cargo fmt --all -- --check
    cd guest-examples && cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format everything, including the guest workspaces.
fmt:
    cargo fmt --all
    cd tests/guests && cargo fmt --all
    cd guest-examples && cargo fmt --all

# Benchmark open-do against workerd (installs workerd with npm); see docs/performance.md.
bench *args:
    bash bench/run.sh {{args}}

# The same workloads with the JavaScript benchmark object (workerd's worker.js, built by opendo):
# 2,000 objects, as each active JavaScript object holds a few MiB; see docs/performance.md.
bench-js *args:
    bash bench/run.sh --module bench/workerd/worker.js --objects 2000 --micro-iterations 0 --cluster-nodes 0 --json target/bench-js.json {{args}}
