#!/usr/bin/env bash
# The main job (`make demo`): build, start Kafka, the target, the orchestrator and two drivers
# as separate processes, run a Tsunami and an Avalanche test through the CLI, print the
# results, and stop everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/build/release"
RUN="$ROOT/.run/demo"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "${STARTED_KAFKA:-}" ]] && bash "$ROOT/scripts/kafka.sh" stop "$RUN/kafka" >/dev/null 2>&1
  return 0
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits (with a deadline) until a log file has a line containing $2.
wait_for() {
  local file=$1 needle=$2 deadline=$((SECONDS + 60))
  until grep -q -- "$needle" "$file" 2>/dev/null; do
    (( SECONDS < deadline )) || { echo "demo: timed out waiting for '$needle' in $file" >&2; tail -20 "$file" >&2; exit 1; }
    sleep 0.2
  done
}

echo "==> build (release)"
cargo build --release --locked -p floodgate -p floodgate-target

rm -rf "$RUN" && mkdir -p "$RUN"
if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
  echo "==> start Kafka"
  STARTED_KAFKA=1
  KAFKA_BOOTSTRAP="$(bash "$ROOT/scripts/kafka.sh" start "$RUN/kafka" | tail -n1)"
fi
echo "Kafka at $KAFKA_BOOTSTRAP"

TARGET_PORT=$(free_port)
API_PORT=$(free_port)
API="127.0.0.1:$API_PORT"
TARGET="http://127.0.0.1:$TARGET_PORT/ping"
export FLOODGATE_KAFKA="$KAFKA_BOOTSTRAP" FLOODGATE_DATA_DIR="$RUN/data" FLOODGATE_TOPIC_PREFIX="demo.$(date +%s)."

echo "==> start the target, the orchestrator and two drivers"
"$BIN/floodgate-target" --listen "127.0.0.1:$TARGET_PORT" >"$RUN/target.log" 2>&1 & PIDS+=($!)
"$BIN/floodgate" orchestrator --listen "$API" >"$RUN/orchestrator.log" 2>&1 & PIDS+=($!)
wait_for "$RUN/orchestrator.log" "listening on"
for i in 1 2; do
  "$BIN/floodgate" driver --orchestrator "$API" --id "driver-$i" >"$RUN/driver-$i.log" 2>&1 & PIDS+=($!)
done
deadline=$((SECONDS + 60))
until [[ "$("$BIN/floodgate" nodes --orchestrator "$API" 2>/dev/null | grep -c ' alive ')" -ge 2 ]]; do
  (( SECONDS < deadline )) || { echo "demo: drivers did not come up" >&2; tail -20 "$RUN"/driver-*.log >&2; exit 1; }
  sleep 0.2
done
"$BIN/floodgate" nodes --orchestrator "$API"

echo
echo "==> Tsunami: 500 requests per driver, one every 4 ms"
"$BIN/floodgate" test run --orchestrator "$API" --type tsunami --delay-ms 4 -n 500 --url "$TARGET"

echo
echo "==> Avalanche: 20,000 requests per driver, capped at 10,000 req/s per driver, 32 connections each"
"$BIN/floodgate" test run --orchestrator "$API" --type avalanche -n 20000 --rate 10000 -c 32 --url "$TARGET"

echo
echo "==> history"
"$BIN/floodgate" test list --orchestrator "$API"
echo
echo "==> the target counted: $(curl -s "http://127.0.0.1:$TARGET_PORT/metrics")  (expected 2 × 500 + 2 × 20000 = 41000)"
