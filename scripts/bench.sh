#!/usr/bin/env bash
# Benchmark of the load engine (`floodgate load`) against wrk, on loopback. A benchmark, not a
# test: it prints figures and marks each goal OK or MISSED, and exits 0 either way (non-zero
# only when it cannot run at all).
#
#   scripts/bench.sh        (or: make bench)
#
# What it measures, against one floodgate-target on 127.0.0.1:
#   1. Saturation: wrk -t1 -cC -dDs and `floodgate load -cC -nM` (M sized to run about as long),
#      REPEATS times each, alternating; median req/s and CPU µs per request (user+sys of the
#      load generator, from /usr/bin/time) of each, and floodgate/wrk ratios.
#   2. Fixed rate: `floodgate load --rate RATE -n RATE_N -cC`: achieved rate vs the cap, p50/p99.
#   3. Memory: peak RSS of `floodgate load` for 10k, 100k and 1M uncapped requests.
#
# Fairness on a 2-core machine: the target gets one core (one tokio worker, pinned to
# BENCH_TARGET_CPU) and the load generator the other (pinned to BENCH_GEN_CPU); both generators
# run one event-loop thread: wrk -t1, and floodgate with TOKIO_WORKER_THREADS=1 (its tokio
# runtime then has one worker; the main thread only waits for the end). Same URL, same
# connection count, similar durations, alternating order, medians.
#
# Environment (all optional): BENCH_CONNECTIONS (50), BENCH_DURATION seconds per saturation run
# (5), BENCH_REPEATS (5), BENCH_RATE (5000), BENCH_RATE_REQUESTS (50000), BENCH_MEM_SIZES
# ("10000 100000 1000000"), BENCH_GEN_CPU (0), BENCH_TARGET_CPU (1), FLOODGATE_BIN (measure
# another floodgate binary, e.g. an older build, instead of the one just built).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
cd "$ROOT"

CONNS="${BENCH_CONNECTIONS:-50}"
DURATION="${BENCH_DURATION:-5}"
REPEATS="${BENCH_REPEATS:-5}"
RATE="${BENCH_RATE:-5000}"
RATE_N="${BENCH_RATE_REQUESTS:-50000}"
MEM_SIZES="${BENCH_MEM_SIZES:-10000 100000 1000000}"
GEN_CPU="${BENCH_GEN_CPU:-0}"
TARGET_CPU="${BENCH_TARGET_CPU:-1}"

# Goals.
GOAL_RPS_RATIO=0.9   # floodgate req/s ≥ 0.9 × wrk
GOAL_CPU_RATIO=1.2   # floodgate CPU/request ≤ 1.2 × wrk
GOAL_RATE_ERR=1      # achieved rate within 1% of the cap
GOAL_RSS_MB=50       # peak RSS below 50 MB at every size...
GOAL_RSS_GROWTH=1.25 # ...and flat: the largest run at most 1.25 × the smallest

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------------------

SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO=(sudo); fi
APT_UPDATED=0
apt_install() { # PACKAGE: install from Debian (only called when the tool is missing)
    command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available; install $1"
    if [[ $APT_UPDATED -eq 0 ]]; then "${SUDO[@]}" apt-get update -qq; APT_UPDATED=1; fi
    "${SUDO[@]}" apt-get install -y -qq "$1" >/dev/null
}
command -v wrk >/dev/null || { say "installing wrk…"; apt_install wrk; }
[[ -x /usr/bin/time ]] || { say "installing time…"; apt_install time; }
TIME=/usr/bin/time

if command -v taskset >/dev/null && taskset -c "$GEN_CPU" true 2>/dev/null && taskset -c "$TARGET_CPU" true 2>/dev/null; then
    PIN_GEN=(taskset -c "$GEN_CPU")
    PIN_TARGET=(taskset -c "$TARGET_CPU")
    PINNING="generator on CPU $GEN_CPU, target on CPU $TARGET_CPU (taskset)"
else
    PIN_GEN=()
    PIN_TARGET=()
    PINNING="none (taskset unavailable or CPUs $GEN_CPU/$TARGET_CPU missing)"
fi

say "building release binaries…"
cargo build --release --quiet -p floodgate -p floodgate-target
BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/build}/release"
FLOODGATE="${FLOODGATE_BIN:-$BIN_DIR/floodgate}"
TARGET_BIN="$BIN_DIR/floodgate-target"
[[ -x "$FLOODGATE" && -x "$TARGET_BIN" ]] || die "binaries not found in $BIN_DIR"

# --- target ---------------------------------------------------------------------------------

TMP="$(mktemp -d)"
TARGET_PID=""
cleanup() {
    if [[ -n "$TARGET_PID" ]]; then
        kill "$TARGET_PID" 2>/dev/null || true
        wait "$TARGET_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${PIN_TARGET[@]}" "$TARGET_BIN" --listen 127.0.0.1:0 --threads 1 >"$TMP/target.out" 2>&1 &
TARGET_PID=$!
PORT=""
for _ in $(seq 100); do
    PORT="$(sed -n 's/^floodgate-target listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/target.out")"
    [[ -n "$PORT" ]] && break
    kill -0 "$TARGET_PID" 2>/dev/null || die "floodgate-target exited: $(cat "$TMP/target.out")"
    sleep 0.1
done
[[ -n "$PORT" ]] || die "floodgate-target did not report its port"
URL="http://127.0.0.1:$PORT/ping"

# A one-shot HTTP/1.1 request to the target without curl: prints the response body.
target_http() { # METHOD PATH
    local body
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' "$1" "$2" >&3
    body="$(cat <&3)"
    exec 3<&-
    printf '%s\n' "${body##*$'\r\n\r\n'}"
}
target_received() { target_http GET /metrics | sed -n 's/.*"requests_received":\([0-9]*\).*/\1/p'; }

# --- helpers --------------------------------------------------------------------------------

calc() { awk "BEGIN { printf \"%.9g\", $* }"; }
fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, v }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
json_num() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" <<<"$2" | sed -n 1p; }
json_obj() { sed -n "s/.*\"$1\":{\([^}]*\)}.*/\1/p" <<<"$2" | sed -n 1p; }
verdict() { if [[ "$(awk "BEGIN { print ($1) ? 1 : 0 }")" == 1 ]]; then echo OK; else echo MISSED; fi; }

# Runs a command pinned to the generator CPU under /usr/bin/time; its stdout goes to $TMP/out and
# "user_s sys_s maxrss_kb" to $TMP/time.
timed() {
    "$TIME" -f '%U %S %M' -o "$TMP/time" "${PIN_GEN[@]}" "$@" >"$TMP/out" 2>"$TMP/err" \
        || die "failed: $* ($(tail -n 3 "$TMP/err"))"
}

RUN_RPS=0 RUN_REQS=0 RUN_CPU_US=0 RUN_RSS_MB=0 RUN_JSON=""
COUNT_FAILS=0

run_wrk() {
    timed wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL"
    local out; out="$(cat "$TMP/out")"
    RUN_REQS="$(awk '/requests in/ { print $1 }' <<<"$out")"
    RUN_RPS="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
    [[ -n "$RUN_REQS" && -n "$RUN_RPS" ]] || die "cannot parse wrk output: $out"
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then say "  wrk reported errors: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ')"; fi
    read -r u s m <"$TMP/time"
    RUN_CPU_US="$(calc "($u + $s) * 1e6 / $RUN_REQS")"
    RUN_RSS_MB="$(calc "$m / 1024")"
    # wrk's last in-flight requests may still reach the target after it exits.
    sleep 0.3
}

run_floodgate() { # REQUESTS [EXTRA ARGS…]
    local n=$1; shift
    target_http POST /reset >/dev/null
    timed env TOKIO_WORKER_THREADS=1 "$FLOODGATE" load --url "$URL" -n "$n" -c "$CONNS" --json "$@"
    RUN_JSON="$(tail -n1 "$TMP/out")"
    RUN_REQS="$(json_num responses "$RUN_JSON")"
    RUN_RPS="$(json_num achieved_rps "$RUN_JSON")"
    local sent errors
    sent="$(json_num sent "$RUN_JSON")"
    errors="$(json_obj errors "$RUN_JSON")"
    [[ -n "$RUN_REQS" && -n "$RUN_RPS" ]] || die "cannot parse floodgate output: $RUN_JSON"
    local k
    for k in connect http io timeout; do
        [[ "$(json_num "$k" "$errors")" == 0 ]] || { say "  floodgate reported errors: {$errors}"; break; }
    done
    read -r u s m <"$TMP/time"
    RUN_CPU_US="$(calc "($u + $s) * 1e6 / ($RUN_REQS > 0 ? $RUN_REQS : 1)")"
    RUN_RSS_MB="$(calc "$m / 1024")"
    # Exact counts: the target must have seen exactly the requests floodgate says it sent.
    local seen; seen="$(target_received)"
    if [[ "$seen" != "$sent" ]]; then
        say "  COUNT MISMATCH: floodgate sent $sent, target received $seen"
        COUNT_FAILS=$((COUNT_FAILS + 1))
    fi
}

# --- run ------------------------------------------------------------------------------------

say "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "target:  $URL (floodgate-target, 1 worker thread); pinning: $PINNING"
say "floodgate: $FLOODGATE"

say "warm-up…"
SAVED_DURATION="$DURATION"
DURATION=1
run_wrk
DURATION="$SAVED_DURATION"
# Size floodgate's runs to last about as long as wrk's, from wrk's warm-up rate.
SAT_N="$(awk -v r="$RUN_RPS" -v d="$DURATION" 'BEGIN { n = int(r * d / 1000 + 0.5) * 1000; print (n < 10000 ? 10000 : n) }')"
run_floodgate 20000

say ""
say "saturation: $CONNS connections, wrk -t1 -d${DURATION}s vs floodgate -n $SAT_N, $REPEATS rounds (alternating)"
WRK_RPS=() WRK_CPU=() WRK_RSS=() FG_RPS=() FG_CPU=() FG_RSS=()
for ((i = 1; i <= REPEATS; i++)); do
    order=(wrk floodgate)
    ((i % 2 == 0)) && order=(floodgate wrk)
    for tool in "${order[@]}"; do
        if [[ $tool == wrk ]]; then
            run_wrk
            WRK_RPS+=("$RUN_RPS") WRK_CPU+=("$RUN_CPU_US") WRK_RSS+=("$RUN_RSS_MB")
        else
            run_floodgate "$SAT_N"
            FG_RPS+=("$RUN_RPS") FG_CPU+=("$RUN_CPU_US") FG_RSS+=("$RUN_RSS_MB")
        fi
        printf '  round %d %-9s %9s req/s %7s us CPU/req %6s MB (%s requests)\n' "$i" "$tool" \
            "$(fmt "$RUN_RPS" 0)" "$(fmt "$RUN_CPU_US" 2)" "$(fmt "$RUN_RSS_MB" 1)" "$RUN_REQS"
    done
done
W_RPS="$(median "${WRK_RPS[@]}")" W_CPU="$(median "${WRK_CPU[@]}")" W_RSS="$(median "${WRK_RSS[@]}")"
F_RPS="$(median "${FG_RPS[@]}")" F_CPU="$(median "${FG_CPU[@]}")" F_RSS="$(median "${FG_RSS[@]}")"
RPS_RATIO="$(calc "$F_RPS / $W_RPS")"
CPU_RATIO="$(calc "$F_CPU / $W_CPU")"

say ""
say "fixed rate: floodgate --rate $RATE -n $RATE_N -c $CONNS"
run_floodgate "$RATE_N" --rate "$RATE"
RATE_ACHIEVED="$RUN_RPS"
RATE_ERR="$(calc "($RATE_ACHIEVED - $RATE) / $RATE * 100")"
RATE_ERR_ABS="$(awk -v e="$RATE_ERR" 'BEGIN { print (e < 0 ? -e : e) }')"
LAT="$(json_obj latency "$RUN_JSON")"
RATE_P50="$(json_num median_ms "$LAT")" RATE_P99="$(json_num p99_ms "$LAT")"
SVC="$(json_obj service_time "$RUN_JSON")"
SVC_P50="$(json_num median_ms "$SVC")" SVC_P99="$(json_num p99_ms "$SVC")"
RATE_CPU="$RUN_CPU_US"
say "  achieved $(fmt "$RATE_ACHIEVED" 1) req/s; latency p50 $(fmt "$RATE_P50" 3) ms p99 $(fmt "$RATE_P99" 3) ms;" \
    "service time p50 $(fmt "$SVC_P50" 3) ms p99 $(fmt "$SVC_P99" 3) ms; $(fmt "$RATE_CPU" 2) us CPU/req"

say ""
say "memory: floodgate peak RSS, uncapped, $CONNS connections"
MEM_LINE="" RSS_MIN="" RSS_MAX=0
for n in $MEM_SIZES; do
    run_floodgate "$n"
    say "  $n requests: $(fmt "$RUN_RSS_MB" 1) MB ($(fmt "$RUN_RPS" 0) req/s)"
    MEM_LINE+="$(printf '%s %s MB, ' "$n" "$(fmt "$RUN_RSS_MB" 1)")"
    [[ -z "$RSS_MIN" ]] && RSS_MIN="$RUN_RSS_MB"
    RSS_MAX="$(calc "($RUN_RSS_MB > $RSS_MAX ? $RUN_RSS_MB : $RSS_MAX)")"
done
MEM_LINE="${MEM_LINE%, }"

# --- summary --------------------------------------------------------------------------------

say ""
say "== summary (medians of $REPEATS rounds; load average now $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '%-10s %6s %10s %12s %13s\n' tool conns 'req/s' 'CPU us/req' 'peak RSS MB'
printf '%-10s %6s %10s %12s %13s\n' wrk "$CONNS" "$(fmt "$W_RPS" 0)" "$(fmt "$W_CPU" 2)" "$(fmt "$W_RSS" 1)"
printf '%-10s %6s %10s %12s %13s\n' floodgate "$CONNS" "$(fmt "$F_RPS" 0)" "$(fmt "$F_CPU" 2)" "$(fmt "$F_RSS" 1)"
say ""
printf '%-44s %-24s %s\n' goal measured verdict
printf '%-44s %-24s %s\n' "throughput >= ${GOAL_RPS_RATIO} x wrk" "$(fmt "$RPS_RATIO" 3) x" "$(verdict "$RPS_RATIO >= $GOAL_RPS_RATIO")"
printf '%-44s %-24s %s\n' "CPU/request <= ${GOAL_CPU_RATIO} x wrk" "$(fmt "$CPU_RATIO" 3) x" "$(verdict "$CPU_RATIO <= $GOAL_CPU_RATIO")"
printf '%-44s %-24s %s\n' "rate within ${GOAL_RATE_ERR}% of $RATE/s cap" "$(fmt "$RATE_ACHIEVED" 1)/s ($(fmt "$RATE_ERR" 2)%)" "$(verdict "$RATE_ERR_ABS <= $GOAL_RATE_ERR")"
printf '%-44s %-24s %s\n' "memory flat (<= ${GOAL_RSS_GROWTH} x smallest), < ${GOAL_RSS_MB} MB" "$(fmt "$RSS_MAX" 1) MB max" \
    "$(verdict "$RSS_MAX < $GOAL_RSS_MB && $RSS_MAX <= $RSS_MIN * $GOAL_RSS_GROWTH")"
printf '%-44s %-24s %s\n' "exact counts (target saw every request sent)" "$COUNT_FAILS mismatches" "$(verdict "$COUNT_FAILS == 0")"
say "fixed rate: latency (from each request's due instant) p50 $(fmt "$RATE_P50" 3) ms, p99 $(fmt "$RATE_P99" 3) ms;" \
    "service time p50 $(fmt "$SVC_P50" 3) ms, p99 $(fmt "$SVC_P99" 3) ms"
say "memory: $MEM_LINE"
exit 0
