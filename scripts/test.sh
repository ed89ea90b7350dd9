#!/usr/bin/env bash
# The test command (`make test`, and so CI): lint, build, start a real Kafka broker (unless
# KAFKA_BOOTSTRAP names one), run every test of the workspace against it, stop the broker.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "test dependencies (Chromium, playwright-core, prometheus-client)"
bash "$ROOT/scripts/deps.sh"

step "build"
cargo build --workspace --all-targets --locked

RUN_DIR="$ROOT/.run/test-kafka"
if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
  step "start Kafka (KRaft, loopback)"
  trap 'bash "$ROOT/scripts/kafka.sh" stop "$RUN_DIR" >/dev/null 2>&1 || true' EXIT
  KAFKA_BOOTSTRAP="$(bash "$ROOT/scripts/kafka.sh" start "$RUN_DIR" | tail -n1)"
fi
export KAFKA_BOOTSTRAP
echo "Kafka at $KAFKA_BOOTSTRAP"

step "tests"
# Two test threads: the end-to-end tests start several processes each on a 2-core machine.
cargo test --workspace --locked -- --test-threads=2
