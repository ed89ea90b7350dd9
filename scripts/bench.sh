#!/usr/bin/env bash
# Benchmark of the load engine (`floodgate load`) against wrk, oha and vegeta, on loopback. A
# benchmark, not a test: it prints figures and marks each goal OK or MISSED, and exits 0 either
# way (non-zero only when it cannot run at all).
#
#   scripts/bench.sh        (or: make bench)
#   BENCH_ONLY=rate scripts/bench.sh        (one section alone: saturation, rate, gap, memory, tls or dist)
#
# What it measures, against one floodgate-target on 127.0.0.1:
#   1. Saturation: wrk -t1 -cC -dDs and `floodgate load -cC -nM` (M sized to run about as long),
#      REPEATS times each, alternating; median req/s and CPU µs per request (user+sys of the
#      load generator, from /usr/bin/time) of each, and floodgate/wrk ratios.
#   2. Fixed rate, a comparison table: for each rate R in RATES, N = R × RATE_SECONDS requests
#      over C connections from each of
#        floodgate  `floodgate load -n N -cC --rate R --json`
#        oha        `oha -n N -cC -q R --latency-correction --no-tui --output-format json`
#        vegeta     `vegeta attack -rate R -duration RATE_SECONDSs -max-connections C -workers C`
#      (RATE_REPEATS rounds, order rotated each round; medians shown): achieved req/s and its deviation from R, failed
#      requests, latency p50/p99 (floodgate: from each request's due instant; oha: from when its
#      ticker woke for it, so without its own timer's lateness; vegeta: from its actual send,
#      uncorrected), floodgate's
#      service time and schedule lag p50/p99, and CPU (user+sys over wall, % of one core, and µs
#      per request). Goals per rate: floodgate p50 ≤ 1.2 × oha's, floodgate p99 ≤ the lower of
#      oha's and vegeta's, achieved rate within 0.5% of R. oha (`cargo install oha --locked`)
#      and vegeta (`go install github.com/tsenart/vegeta/v12@v12.13.0`) are installed when
#      missing; a tool that cannot be installed or run shows "-" and its goals are skipped.
#   3. Tsunami gaps: `floodgate load --delay-ms D -n N` from 0.1 ms to 1 s, against a second
#      target that records every arrival: p50/p99/max jitter of the gaps between consecutive
#      arrivals, and the drift of the last arrival from its place on the schedule. Goals: p99
#      jitter < 100 µs, drift < 1 ms (both for an idle machine).
#   4. Memory: peak RSS of `floodgate load` for 10k, 100k and 1M uncapped requests.
#   5. HTTPS and HTTP/2 (section "tls", scripts/bench-tls.sh): floodgate beside oha and h2load on
#      a TLS target, https h1 and h2 with 1 and BENCH_TLS_STREAMS streams per connection.
#   6. Distributed (section "dist", scripts/bench-dist.sh): 8 drivers on a real Kafka broker
#      beside one `floodgate load` with the same total load: start skew, schedule lag p99, and
#      the load span of each.
#
# Fairness on a 2-core machine: the target gets one core (one tokio worker, pinned to
# BENCH_TARGET_CPU) and the load generator the other (pinned to BENCH_GEN_CPU); every generator
# runs one event-loop thread: wrk -t1, floodgate and oha with TOKIO_WORKER_THREADS=1 (their
# tokio runtime then has one worker; floodgate's main thread only waits for the end), vegeta
# with GOMAXPROCS=1. Same URL, same connection count, similar durations, alternating order,
# medians.
#
# Environment (all optional): BENCH_ONLY (run one section: saturation, rate, gap, memory, tls or dist; a list
# such as "rate memory" works too; default all), BENCH_CONNECTIONS (50), BENCH_DURATION seconds
# per saturation run (5), BENCH_REPEATS (5), BENCH_RATES ("1000 5000 20000 50000"),
# BENCH_RATE_SECONDS seconds per fixed-rate run (5), BENCH_RATE_REPEATS rounds per rate (3, the
# figures shown are medians), BENCH_GAP_RUNS (Tsunami runs as DELAY_MS:REQUESTS, default
# "0.1:10000 1:10000 10:3000 100:300 1000:20"), BENCH_MEM_SIZES ("10000 100000 1000000"),
# BENCH_GEN_CPU (0), BENCH_TARGET_CPU (1), FLOODGATE_BIN (measure another floodgate binary,
# e.g. an older build, instead of the one just built), BENCH_NO_BUILD=1 (skip `cargo build
# --release`; the binaries must already be there).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
cd "$ROOT"

CONNS="${BENCH_CONNECTIONS:-50}"
DURATION="${BENCH_DURATION:-5}"
REPEATS="${BENCH_REPEATS:-5}"
RATES="${BENCH_RATES:-1000 5000 20000 50000}"
RATE_SECONDS="${BENCH_RATE_SECONDS:-5}"
RATE_REPEATS="${BENCH_RATE_REPEATS:-3}"
# Tsunami gap runs, DELAY_MS:REQUESTS (1 s x 20 and 100 ms x 300 keep the run short).
GAP_RUNS="${BENCH_GAP_RUNS:-0.1:10000 1:10000 10:3000 100:300 1000:20}"
GOAL_JITTER_US=100   # Tsunami: p99 gap jitter under 100 µs...
GOAL_DRIFT_US=1000   # ...and the last request within 1 ms of its place on the schedule
MEM_SIZES="${BENCH_MEM_SIZES:-10000 100000 1000000}"
GEN_CPU="${BENCH_GEN_CPU:-0}"
TARGET_CPU="${BENCH_TARGET_CPU:-1}"

# Goals.
GOAL_RPS_RATIO=0.9   # floodgate req/s ≥ 0.9 × wrk
GOAL_CPU_RATIO=1.2   # floodgate CPU/request ≤ 1.2 × wrk
GOAL_RATE_ERR=0.5    # fixed rate: floodgate's achieved rate within 0.5% of the cap...
GOAL_P50_VS_OHA=1.2  # ...its p50 (from the due instant) at most 1.2 × oha's...
                     # ...and its p99 at most the lower of oha's and vegeta's
GOAL_RSS_MB=50       # peak RSS below 50 MB at every size...
GOAL_RSS_GROWTH=1.25 # ...and flat: the largest run at most 1.25 × the smallest

BENCH_NAME=bench
# shellcheck source=scripts/bench-lib.sh
source "$SCRIPT_DIR/bench-lib.sh"

ONLY="${BENCH_ONLY:-all}"
ONLY="${ONLY//,/ }"
for section in $ONLY; do
    case "$section" in all | saturation | rate | gap | memory | tls | dist) ;; *) die "BENCH_ONLY: unknown section '$section' (saturation, rate, gap, memory, tls, dist or all)" ;; esac
done
want() { [[ " $ONLY " == *" all "* || " $ONLY " == *" $1 "* ]]; } # SECTION: is it to be run?
# HTTPS and HTTP/2 beside oha and h2load: a script of its own (scripts/bench-tls.sh).
if [[ "$(tr -d ' ' <<<"$ONLY")" == tls ]]; then exec bash "$SCRIPT_DIR/bench-tls.sh"; fi
# Eight drivers on Kafka beside one process (issue 13): scripts/bench-dist.sh.
if [[ "$(tr -d ' ' <<<"$ONLY")" == dist ]]; then exec bash "$SCRIPT_DIR/bench-dist.sh"; fi

# --- tools ----------------------------------------------------------------------------------

command -v wrk >/dev/null || { apt_install wrk || die "wrk is missing and could not be installed"; }
[[ -x /usr/bin/time ]] || apt_install time || die "/usr/bin/time is missing and could not be installed"
TIME=/usr/bin/time

# oha and vegeta, for the fixed-rate table: found on PATH, in cargo's and Go's bin directories,
# or installed there; OHA/VEGETA stay empty when that fails (their columns then show "-").
OHA="" VEGETA="" PYTHON=""
if want rate || want gap; then
    command -v python3 >/dev/null && PYTHON=python3
    [[ -n "$PYTHON" ]] || say "python3 is missing: the fixed-rate and gap sections are skipped (they parse JSON with it)"
fi
if want rate && [[ -n "$PYTHON" ]]; then
    OHA="$(peer_oha)"
    VEGETA="$(peer_vegeta)"
fi

pin_cpus "$GEN_CPU" "$TARGET_CPU"
release_binaries "$ROOT"

# --- target ---------------------------------------------------------------------------------

TMP="$(mktemp -d)"
TARGET_PID=""
GAP_TARGET_PID=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    if [[ -n "$GAP_TARGET_PID" ]]; then
        kill "$GAP_TARGET_PID" 2>/dev/null || true
        wait "$GAP_TARGET_PID" 2>/dev/null || true
    fi
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
dash_or() { if [[ -z "$1" || "$1" == - ]]; then printf -- -; else fmt "$@"; fi; } # VALUE [DECIMALS]: fmt, or "-"

# One row of the goal table: prints it and counts its verdict. A goal whose measurement is
# missing (a comparison tool that did not run) is SKIPPED instead.
GOALS_OK=0 GOALS_MISSED=0 GOALS_SKIPPED=0
goal() { # DESCRIPTION MEASURED CONDITION (awk; empty = skipped)
    local v=SKIPPED
    if [[ -n "$3" ]]; then v="$(verdict "$3")"; fi
    case "$v" in OK) GOALS_OK=$((GOALS_OK + 1)) ;; MISSED) GOALS_MISSED=$((GOALS_MISSED + 1)) ;; *) GOALS_SKIPPED=$((GOALS_SKIPPED + 1)) ;; esac
    printf '%-44s %-24s %s\n' "$1" "$2" "$v"
}

# Evaluates Python expressions over a JSON document (a file holding one JSON value, or JSON
# lines of which the last counts), bound to `d`; prints their values on one line, "-" for each
# one that is missing, null or fails.
json_eval() { # FILE EXPR…
    "$PYTHON" - "$@" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
try:
    d = json.loads(text)
except ValueError:
    lines = text.strip().splitlines()
    try:
        d = json.loads(lines[-1]) if lines else None
    except ValueError:
        d = None
out = []
for expr in sys.argv[2:]:
    try:
        v = eval(expr, {"d": d})
    except Exception:
        v = None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        out.append("-")
    else:
        out.append("%.9g" % v)
print(" ".join(out))
PY
}

# Runs a command pinned to the generator CPU under /usr/bin/time; its stdout goes to $TMP/out and
# "user_s sys_s maxrss_kb" to the first line of $TMP/time, the wall-clock seconds to the second.
# timed_try returns the command's failure; timed dies of it.
timed_try() {
    "$TIME" -f '%U %S %M\n%e' -o "$TMP/time" "${PIN_GEN[@]}" "$@" >"$TMP/out" 2>"$TMP/err"
}
timed() {
    timed_try "$@" || die "failed: $* ($(tail -n 3 "$TMP/err"))"
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

if want saturation; then
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
fi

# Fixed rate: BENCH_RATE_REPEATS runs of each tool per rate. Each run's figures go to
# FR[rate:tool:field], and at the end of a rate the medians of its rounds do. Fields: rps, err
# (deviation of req/s from the rate, %), fail (% of requests that failed), p50, p99 (latency,
# ms), svc50, svc99, lag50, lag99 (floodgate's service time and schedule lag, ms), cpu (% of one
# core), cpu_us (µs per request); "-" where a tool does not measure it or did not run.
declare -A FR=()
RATE_TOOLS=(floodgate oha vegeta)
RATE_FIELDS=(rps err fail p50 p99 svc50 svc99 lag50 lag99 cpu cpu_us)
fr_dashes() { local f; for f in "${RATE_FIELDS[@]}"; do FR["$1:$2:$f"]=-; done; } # RATE TOOL
# Stores the CPU figures of the last timed run: REQUESTS.
fr_cpu() { # RATE TOOL REQUESTS
    local u s wall
    read -r u s _ <"$TMP/time"
    wall="$(sed -n 2p "$TMP/time")"
    FR["$1:$2:cpu"]="$(calc "($u + $s) / ($wall > 0 ? $wall : 0.01) * 100")"
    FR["$1:$2:cpu_us"]="$(calc "($u + $s) * 1e6 / ($3 > 0 ? $3 : 1)")"
}
fr_store() { # RATE TOOL VALUES… (rps fail p50 p99 svc50 svc99 lag50 lag99, as json_eval prints them)
    local r=$1 t=$2; shift 2
    FR["$r:$t:rps"]=${1:--} FR["$r:$t:fail"]=${2:--} FR["$r:$t:p50"]=${3:--} FR["$r:$t:p99"]=${4:--}
    FR["$r:$t:svc50"]=${5:--} FR["$r:$t:svc99"]=${6:--} FR["$r:$t:lag50"]=${7:--} FR["$r:$t:lag99"]=${8:--}
    if [[ ${1:--} == - ]]; then FR["$r:$t:err"]=-; else FR["$r:$t:err"]="$(calc "($1 - $r) / $r * 100")"; fi
}
# The target's count for a comparison tool's run, which has no exact-count goal: a note only.
fr_count_note() { # TOOL EXPECTED
    local seen; seen="$(target_received)"
    [[ "$seen" == "$2" ]] || say "  note: $1 was to send $2 requests, the target received $seen"
}
run_rate() { # RATE TOOL
    local r=$1 t=$2 n=$(($1 * RATE_SECONDS)) vals
    fr_dashes "$r" "$t"
    case "$t" in
        floodgate)
            run_floodgate "$n" --rate "$r"
            printf '%s\n' "$RUN_JSON" >"$TMP/rate.json"
            # shellcheck disable=SC2046 # word splitting of json_eval's line is intended
            fr_store "$r" "$t" $(json_eval "$TMP/rate.json" 'd["achieved_rps"]' \
                '100 * (d["requests"] - d["ok"]) / d["requests"]' \
                'd["latency"]["median_ms"]' 'd["latency"]["p99_ms"]' \
                'd["service_time"]["median_ms"]' 'd["service_time"]["p99_ms"]' \
                'd["schedule_lag"]["median_ms"]' 'd["schedule_lag"]["p99_ms"]')
            fr_cpu "$r" "$t" "$RUN_REQS"
            ;;
        oha)
            [[ -n "$OHA" ]] || return 0
            target_http POST /reset >/dev/null
            if ! timed_try env TOKIO_WORKER_THREADS=1 "$OHA" -n "$n" -c "$CONNS" -q "$r" --latency-correction \
                --no-tui --output-format json "$URL"; then
                say "  oha failed: $(tail -n 3 "$TMP/err")"
                return 0
            fi
            # shellcheck disable=SC2046
            fr_store "$r" "$t" $(json_eval "$TMP/out" 'd["summary"]["requestsPerSec"]' \
                '100 * (1 - sum(v for k, v in d["statusCodeDistribution"].items() if k.startswith("2")) / (sum(d["statusCodeDistribution"].values()) + sum(d["errorDistribution"].values())))' \
                'd["latencyPercentiles"]["p50"] * 1e3' 'd["latencyPercentiles"]["p99"] * 1e3' \
                None None None None)
            fr_cpu "$r" "$t" "$n"
            fr_count_note oha "$n"
            ;;
        vegeta)
            [[ -n "$VEGETA" ]] || return 0
            target_http POST /reset >/dev/null
            printf 'GET %s\n' "$URL" >"$TMP/vegeta.targets"
            if ! timed_try env GOMAXPROCS=1 "$VEGETA" attack -targets "$TMP/vegeta.targets" -rate "$r" \
                -duration "${RATE_SECONDS}s" -max-connections "$CONNS" -workers "$CONNS"; then
                say "  vegeta failed: $(tail -n 3 "$TMP/err")"
                return 0
            fi
            mv "$TMP/out" "$TMP/vegeta.bin"
            if ! "$VEGETA" report -type json "$TMP/vegeta.bin" >"$TMP/vegeta.json" 2>"$TMP/err"; then
                say "  vegeta report failed: $(tail -n 3 "$TMP/err")"
                return 0
            fi
            # shellcheck disable=SC2046
            fr_store "$r" "$t" $(json_eval "$TMP/vegeta.json" 'd["rate"]' '100 * (1 - d["success"])' \
                'd["latencies"]["50th"] / 1e6' 'd["latencies"]["99th"] / 1e6' None None None None)
            vals="$(json_eval "$TMP/vegeta.json" 'd["requests"]')"
            [[ $vals != - ]] || vals=$n
            fr_cpu "$r" "$t" "$vals"
            fr_count_note vegeta "$vals"
            ;;
    esac
    # Like wrk, the comparison tools' last requests may still be in flight at the target.
    sleep 0.3
    printf '  %7s/s %-9s %10s req/s  latency p50 %7s ms p99 %7s ms  CPU %5s%%\n' "$r" "$t" \
        "$(dash_or "${FR[$r:$t:rps]}" 1)" "$(dash_or "${FR[$r:$t:p50]}" 3)" "$(dash_or "${FR[$r:$t:p99]}" 3)" \
        "$(dash_or "${FR[$r:$t:cpu]}" 1)"
}

RATE_RAN=0
if want rate && [[ -n "$PYTHON" ]]; then
    RATE_RAN=1
    say ""
    say "fixed rate: rates $RATES req/s, $RATE_SECONDS s each, $CONNS connections; floodgate, oha ${OHA:-(missing)}, vegeta ${VEGETA:-(missing)}"
    # RATE_REPEATS rounds per rate, the tools' order rotated each round; every figure shown is
    # the median of its rounds (p99 on a shared machine moves by 2x from one run to the next).
    declare -A FRS=()
    i=0
    for r in $RATES; do
        for ((round = 1; round <= RATE_REPEATS; round++)); do
            order=("${RATE_TOOLS[@]:i%3}" "${RATE_TOOLS[@]:0:i%3}")
            for tool in "${order[@]}"; do
                run_rate "$r" "$tool"
                for f in "${RATE_FIELDS[@]}"; do FRS["$r:$tool:$f"]+="${FR[$r:$tool:$f]} "; done
            done
            i=$((i + 1))
        done
        for tool in "${RATE_TOOLS[@]}"; do
            for f in "${RATE_FIELDS[@]}"; do
                # shellcheck disable=SC2086 # the list is split on purpose
                vals="$(printf '%s\n' ${FRS[$r:$tool:$f]:--} | grep -v '^-$' || true)"
                # shellcheck disable=SC2086
                if [[ -n "$vals" ]]; then FR["$r:$tool:$f"]="$(median $vals)"; else FR["$r:$tool:$f"]=-; fi
            done
        done
    done
fi

# Tsunami gap precision: `floodgate load --delay-ms D -n N`, whose JSON has its own record of
# its send instants (`send_gaps`: the jitter of each gap between consecutive requests,
# |gap - D|, and how late the last one left); the goals are on those. Beside them, looser, the
# same from a second target that records every arrival (its figures also carry its own
# wake-ups). One core each, as above.
GAP_ROWS=()
if want gap && [[ -n "$PYTHON" ]]; then
    say ""
    say "tsunami gaps: floodgate load --delay-ms D -n N -c $CONNS, arrivals recorded at the target"
    "${PIN_TARGET[@]}" "$TARGET_BIN" --listen 127.0.0.1:0 --threads 1 --record-arrivals 20000 >"$TMP/gap-target.out" 2>&1 &
    GAP_TARGET_PID=$!
    GAP_PORT=""
    for _ in $(seq 100); do
        GAP_PORT="$(sed -n 's/^floodgate-target listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/gap-target.out")"
        [[ -n "$GAP_PORT" ]] && break
        sleep 0.1
    done
    [[ -n "$GAP_PORT" ]] || die "the arrivals target did not report its port"
    gap_http() { # METHOD PATH: like target_http, on the arrivals target
        local body
        exec 4<>"/dev/tcp/127.0.0.1/$GAP_PORT"
        printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' "$1" "$2" >&4
        body="$(cat <&4)"
        exec 4<&-
        printf '%s\n' "${body##*$'\r\n\r\n'}"
    }
    for pair in $GAP_RUNS; do
        d="${pair%%:*}" n="${pair##*:}"
        gap_http POST /reset >/dev/null
        timed env TOKIO_WORKER_THREADS=1 "$FLOODGATE" load --url "http://127.0.0.1:$GAP_PORT/ping" -n "$n" -c "$CONNS" \
            --delay-ms "$d" --json
        tail -n1 "$TMP/out" >"$TMP/gap.json"
        gap_http GET /arrivals >"$TMP/arrivals.json"
        row="$("$PYTHON" - "$TMP/arrivals.json" "$TMP/gap.json" "$d" "$n" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["arrivals_us"]
f = json.loads(open(sys.argv[2]).read())
gap_us, n = float(sys.argv[3]) * 1000, int(sys.argv[4])
g = f.get("send_gaps") or {}
lag = f.get("schedule_lag") or {}
fig = lambda v: "-" if v is None else "%.1f" % v
out = [fig(g.get("jitter_p50_us")), fig(g.get("jitter_p99_us")), fig(g.get("jitter_max_us")),
       fig(g.get("last_drift_us")), str(lag.get("median_ms", "-")), str(lag.get("p99_ms", "-"))]
# At the target: the same figures from its arrivals, which also carry its own wake-ups.
if len(a) == n and n > 1:
    jit = sorted(abs((b - x) - gap_us) for x, b in zip(a, a[1:]))
    q = lambda v, p: v[min(len(v) - 1, int(len(v) * p))]
    # The last arrival's lateness against the median lateness (the constant part cancels).
    late = sorted(x - i * gap_us for i, x in enumerate(a))
    drift = (a[-1] - (n - 1) * gap_us) - late[len(late) // 2]
    out += ["%.1f" % q(jit, .99), "%.1f" % drift]
else:
    out += ["-", "-"]
print(" ".join(out + [str(len(a))]))
PY
)"
        GAP_ROWS+=("$d $n $row")
        read -r j50 j99 jmax drift l50 l99 tj99 tdrift seen <<<"$row"
        say "  delay $d ms x $n: floodgate's sends: gap jitter p50 $j50 us p99 $j99 us max $jmax us, the last $drift us after its due instant, lag p50 $l50 ms p99 $l99 ms; at the target: gap jitter p99 $tj99 us, the last $tdrift us off (target saw $seen)"
    done
fi

if want memory; then
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
fi

# --- summary --------------------------------------------------------------------------------

say ""
if want saturation; then
say "== summary (medians of $REPEATS rounds; load average now $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '%-10s %6s %10s %12s %13s\n' tool conns 'req/s' 'CPU us/req' 'peak RSS MB'
printf '%-10s %6s %10s %12s %13s\n' wrk "$CONNS" "$(fmt "$W_RPS" 0)" "$(fmt "$W_CPU" 2)" "$(fmt "$W_RSS" 1)"
printf '%-10s %6s %10s %12s %13s\n' floodgate "$CONNS" "$(fmt "$F_RPS" 0)" "$(fmt "$F_CPU" 2)" "$(fmt "$F_RSS" 1)"
else
say "== summary (sections: $ONLY; load average now $(cut -d' ' -f1-3 /proc/loadavg)) =="
fi
if [[ $RATE_RAN == 1 ]]; then
    say ""
    say "fixed rate, $CONNS connections, $RATE_SECONDS s per run, medians of $RATE_REPEATS rounds (latency, service, lag in ms; CPU % of one core)"
    row='%-8s %-9s %10s %7s %6s %8s %8s %8s %8s %8s %8s %6s %7s\n'
    # shellcheck disable=SC2059 # the format is $row
    printf "$row" rate tool 'req/s' 'vs rate' 'fail%' 'lat p50' 'lat p99' 'svc p50' 'svc p99' 'lag p50' 'lag p99' 'CPU%' 'us/req'
    for r in $RATES; do
        for t in "${RATE_TOOLS[@]}"; do
            err="${FR[$r:$t:err]}"
            [[ $err != - ]] && err="$(awk -v e="$err" 'BEGIN { printf "%+.2f%%", e }')"
            # shellcheck disable=SC2059
            printf "$row" "$r/s" "$t" "$(dash_or "${FR[$r:$t:rps]}" 1)" "$err" "$(dash_or "${FR[$r:$t:fail]}" 2)" \
                "$(dash_or "${FR[$r:$t:p50]}" 3)" "$(dash_or "${FR[$r:$t:p99]}" 3)" \
                "$(dash_or "${FR[$r:$t:svc50]}" 3)" "$(dash_or "${FR[$r:$t:svc99]}" 3)" \
                "$(dash_or "${FR[$r:$t:lag50]}" 3)" "$(dash_or "${FR[$r:$t:lag99]}" 3)" \
                "$(dash_or "${FR[$r:$t:cpu]}" 1)" "$(dash_or "${FR[$r:$t:cpu_us]}" 2)"
        done
    done
    say "  latency: floodgate measures it from each request's due instant (its place in the schedule),"
    say "  so its own lateness is in it, and shown apart as the lag. oha (--latency-correction) measures"
    say "  it from when its ticker woke for the request (oha's source, 1.15: sleep until the due instant on"
    say "  tokio's millisecond timer, then Instant::now()): its own timer's lateness is left out, and only"
    say "  the wait for a free connection is corrected for; compare it with floodgate's service time. vegeta"
    say "  measures from its actual send and has no coordinated-omission correction: its figures leave"
    say "  out any time a request waited to be sent, and its req/s is its send rate (vegeta's .rate)."
    say "  service time (send to response) and schedule lag (due instant to send) are floodgate's only."
    say "  CPU: user+sys of the generator process over its wall time (/usr/bin/time), and per request."
fi
say ""
printf '%-44s %-24s %s\n' goal measured verdict
if want saturation; then
goal "throughput >= ${GOAL_RPS_RATIO} x wrk" "$(fmt "$RPS_RATIO" 3) x" "$RPS_RATIO >= $GOAL_RPS_RATIO"
goal "CPU/request <= ${GOAL_CPU_RATIO} x wrk" "$(fmt "$CPU_RATIO" 3) x" "$CPU_RATIO <= $GOAL_CPU_RATIO"
fi
if [[ $RATE_RAN == 1 ]]; then
    for r in $RATES; do
        f50="${FR[$r:floodgate:p50]}" f99="${FR[$r:floodgate:p99]}" frps="${FR[$r:floodgate:rps]}"
        o50="${FR[$r:oha:p50]}" o99="${FR[$r:oha:p99]}" v99="${FR[$r:vegeta:p99]}"
        cond=""
        [[ $f50 != - && $o50 != - ]] && cond="$f50 <= $GOAL_P50_VS_OHA * $o50"
        goal "$r/s: p50 <= ${GOAL_P50_VS_OHA} x oha p50" "$(dash_or "$f50" 3) vs $(dash_or "$o50" 3) ms" "$cond"
        best99=-
        for x in "$o99" "$v99"; do
            [[ $x == - ]] && continue
            if [[ $best99 == - ]] || [[ "$(awk "BEGIN { print ($x < $best99) }")" == 1 ]]; then best99=$x; fi
        done
        cond=""
        [[ $f99 != - && $best99 != - ]] && cond="$f99 <= $best99"
        goal "$r/s: p99 <= min(oha p99, vegeta p99)" "$(dash_or "$f99" 3) vs $(dash_or "$best99" 3) ms" "$cond"
        cond="" err="${FR[$r:floodgate:err]}" shown=-
        if [[ $err != - ]]; then
            cond="($err < 0 ? -($err) : $err) <= $GOAL_RATE_ERR"
            shown="$(awk -v e="$err" 'BEGIN { printf "%+.2f", e }')"
        fi
        goal "$r/s: achieved within ${GOAL_RATE_ERR}% of the rate" "$(dash_or "$frps" 1)/s (${shown}%)" "$cond"
    done
fi
if [[ ${#GAP_ROWS[@]} -gt 0 ]]; then
    for g in "${GAP_ROWS[@]}"; do
        read -r d n j50 j99 jmax drift _ <<<"$g"
        cond="" cond2=""
        if [[ $j99 != - ]]; then
            cond="$j99 < $GOAL_JITTER_US"
            cond2="($drift < 0 ? -($drift) : $drift) < $GOAL_DRIFT_US"
        fi
        goal "tsunami $d ms x $n: p99 send-gap jitter < ${GOAL_JITTER_US} us" "$j99 us" "$cond"
        goal "tsunami $d ms x $n: last send < ${GOAL_DRIFT_US} us late" "$drift us" "$cond2"
    done
fi
if want memory; then
goal "memory flat (<= ${GOAL_RSS_GROWTH} x smallest), < ${GOAL_RSS_MB} MB" "$(fmt "$RSS_MAX" 1) MB max" \
    "$RSS_MAX < $GOAL_RSS_MB && $RSS_MAX <= $RSS_MIN * $GOAL_RSS_GROWTH"
fi
goal "exact counts (target saw every request sent)" "$COUNT_FAILS mismatches" "$COUNT_FAILS == 0"
if want memory; then say "memory: $MEM_LINE"; fi
say "goals: $GOALS_OK OK, $GOALS_MISSED MISSED$( ((GOALS_SKIPPED == 0)) || printf ', %d skipped (a comparison tool did not run)' "$GOALS_SKIPPED")"
if want tls; then
    say ""
    say "HTTPS and HTTP/2 (scripts/bench-tls.sh)"
    BENCH_NO_BUILD=1 bash "$SCRIPT_DIR/bench-tls.sh" || say "bench-tls.sh could not run"
fi
if want dist; then
    say ""
    say "Distributed: 8 drivers on Kafka beside one process (scripts/bench-dist.sh)"
    BENCH_NO_BUILD=1 bash "$SCRIPT_DIR/bench-dist.sh" || say "bench-dist.sh could not run"
fi
exit 0
