#!/usr/bin/env bash
# The distributed rows of `make bench` (section "dist"; `BENCH_ONLY=dist make bench`, or this
# script alone), issue 13: one orchestrator and DRIVERS drivers on a real Kafka broker, against
# the same load from one `floodgate load` process, on one floodgate-target. A benchmark, not a
# test: it prints figures and marks each goal OK or MISSED, and exits 0 either way (non-zero
# only when it cannot run at all).
#
# The load: N = RATE × SECONDS requests at RATE req/s in total, paced (the distributed run is a
# Tsunami given in totals, shared equally since the drivers declare the same capacity; the
# single one `floodgate load --rate RATE`), REPEATS rounds alternating the two. Figures (medians):
#   - start skew: latest first send minus earliest over the drivers, on the orchestrator's clock,
#     with the bound of its clock corrections (docs/decisions.md, "measured start skew");
#   - schedule lag p99: merged over the drivers, and the worst driver's;
#   - load span: from the scheduled start to the last response (the view's elapsed, the
#     longest driver's) beside the single process's, and their ratio;
#   - wall time: the distributed test's from its agreed start to the orchestrator's verdict
#     (the view's started_at_ms to finished_at_ms: every final report in), beside the single
#     process's from its exec to its exit, and their ratio;
#   - end to end: from the REST create to the settled result as a client polling the API sees
#     it, beside the single process's wall time: the same plus the fixed cost of coordination
#     before the start (the config's gap and the start delay, 2 s together) and after the end
#     (the last report, the client's poll), which does not grow with the test.
# Goals: start skew < 10 ms; load span and wall time within 5 % of the single process's; the end
# to end is judged against the same 5 %, which only a test long enough to amortise the fixed
# cost meets (BENCH_DIST_SECONDS=60 does; docs/benchmarks.md).
#
# Environment (all optional): BENCH_DIST_DRIVERS (8), BENCH_DIST_RATE (8000), BENCH_DIST_SECONDS
# (5), BENCH_DIST_REPEATS (3), KAFKA_BOOTSTRAP (a running broker; else one is started in a
# temporary directory and stopped after), FLOODGATE_BIN, FLOODGATE_TARGET_BIN, BENCH_NO_BUILD=1
# (as in bench.sh).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
cd "$ROOT"

DRIVERS="${BENCH_DIST_DRIVERS:-8}"
RATE="${BENCH_DIST_RATE:-8000}"
SECS="${BENCH_DIST_SECONDS:-5}"
REPEATS="${BENCH_DIST_REPEATS:-3}"
GOAL_SKEW_MS=10
GOAL_SPAN_RATIO=1.05 # also the wall time's and the end to end's

BENCH_NAME=bench-dist
# shellcheck source=scripts/bench-lib.sh
source "$SCRIPT_DIR/bench-lib.sh"
command -v python3 >/dev/null || die "python3 is needed (it reads the results' JSON)"
[[ $DRIVERS =~ ^[0-9]+$ ]] && ((DRIVERS >= 2 && DRIVERS <= 8)) || die "BENCH_DIST_DRIVERS: 2 to 8"
N=$(awk -v r="$RATE" -v s="$SECS" 'BEGIN { printf "%d", r * s }')
release_binaries "$ROOT"

TMP="$(mktemp -d)"
PIDS=()
STARTED_KAFKA=0
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if ((STARTED_KAFKA)); then bash "$SCRIPT_DIR/kafka.sh" stop "$TMP/kafka" >/dev/null 2>&1 || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
    say "starting Kafka…"
    STARTED_KAFKA=1
    KAFKA_BOOTSTRAP="$(bash "$SCRIPT_DIR/kafka.sh" start "$TMP/kafka" | tail -n1)"
fi

wait_line() { # FILE PATTERN PID: prints the first line of FILE matching PATTERN
    local line
    for _ in $(seq 300); do
        line="$(grep -m1 -- "$2" "$1" 2>/dev/null || true)"
        if [[ -n "$line" ]]; then printf '%s\n' "$line"; return 0; fi
        kill -0 "$3" 2>/dev/null || die "$(basename "$1" .out) exited: $(tail -5 "$1")"
        sleep 0.1
    done
    die "no '$2' in $1 after 30 s"
}

"$TARGET_BIN" --listen 127.0.0.1:0 --threads 2 >"$TMP/target.out" 2>&1 &
PIDS+=($!)
URL="http://$(wait_line "$TMP/target.out" "listening on" "$!" | awk '{ print $NF }')/ping"

PREFIX="bench$(date +%s)$$."
FLOODGATE_LOG=warn "$FLOODGATE" orchestrator --kafka "$KAFKA_BOOTSTRAP" --listen 127.0.0.1:0 \
    --topic-prefix "$PREFIX" --store "$TMP/orchestrator.sqlite" --id bench-orchestrator \
    >"$TMP/orchestrator.out" 2>&1 &
PIDS+=($!)
API="http://$(wait_line "$TMP/orchestrator.out" "orchestrator listening on" "$!" | awk '{ print $NF }')"
for i in $(seq 0 $((DRIVERS - 1))); do
    FLOODGATE_LOG=info "$FLOODGATE" driver --kafka "$KAFKA_BOOTSTRAP" --orchestrator 127.0.0.1:1 \
        --id "bench-driver-$i" --topic-prefix "$PREFIX" --store "$TMP/driver-$i.sqlite" \
        --listen 127.0.0.1:0 --capacity 1 >"$TMP/driver-$i.out" 2>&1 &
    PIDS+=($!)
done

# The orchestrator's API, from Python (no curl needed): GET PATH, or POST PATH JSON.
api() { python3 - "$API" "$@" <<'PY'
import json, sys, urllib.request
base, method, path = sys.argv[1], sys.argv[2], sys.argv[3]
data = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())
PY
}
py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; } # EXPR over stdin's JSON

say "waiting for $DRIVERS drivers and their clock estimates…"
ready=0
for _ in $(seq 600); do
    ready="$(api GET /api/v1/drivers | py "sum(1 for x in d['drivers'] if x['alive'] and 'clock_bound_ms' in x)")"
    ((ready >= DRIVERS)) && break
    sleep 0.1
done
((ready >= DRIVERS)) || die "only $ready of $DRIVERS drivers alive with a clock estimate after 60 s"

run_single() { # prints: span_ms lag_p99_ms wall_ms
    local out="$TMP/single.json" t0 t1
    t0="$(date +%s%N)"
    TOKIO_WORKER_THREADS=2 "$FLOODGATE" load --url "$URL" -n "$N" --rate "$RATE" -c 32 --json >"$out"
    t1="$(date +%s%N)"
    python3 - "$out" "$(((t1 - t0) / 1000))" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["elapsed_s"] * 1000, d["schedule_lag"]["p99_ms"], int(sys.argv[2]) / 1000)
PY
}

# prints: span_ms skew_ms bound_ms lag_p99_ms worst_driver_lag_p99_ms end_to_end_ms wall_ms
# before_start_ms after_verdict_ms
run_dist() {
    local spec id t0 t1 v
    spec="{\"test_type\":\"tsunami\",\"total_requests\":$N,\"total_rate\":$RATE,\"target_url\":\"$URL\",\"concurrency\":4,\"drivers\":$DRIVERS,\"trigger\":true}"
    t0="$(date +%s%N)"
    id="$(api POST /api/v1/tests "$spec" | py "d.get('id') or sys.exit('create failed: ' + json.dumps(d))")"
    for _ in $(seq 1200); do
        v="$(api GET "/api/v1/tests/$id")"
        [[ "$(py "d['settled'] and d['status'] != 'running'" <<<"$v")" == True ]] && break
        sleep 0.05
    done
    t1="$(date +%s%N)"
    [[ "$(py "d['status']" <<<"$v")" == completed ]] || die "the distributed test ended $(py "d['status'], d.get('reason')" <<<"$v")"
    py "' '.join(str(x) for x in (d['aggregate']['elapsed_ms'], d['start_skew']['skew_ms'], d['start_skew'].get('bound_ms', '-'), d['aggregate']['schedule_lag']['p99_ms'], max(p['schedule_lag']['p99_ms'] for p in d['per_driver']), ($t1 - $t0) / 1e6, d['finished_at_ms'] - d['started_at_ms'], d['started_at_ms'] - d['created_at_ms'], $t1 / 1e6 - d['finished_at_ms']))" <<<"$v"
}

say "load: $N requests at $RATE req/s in total ($SECS s), $DRIVERS drivers × $((RATE / DRIVERS)) req/s, $REPEATS rounds"
S_SPAN=() S_LAG=() S_WALL=() D_WALL=() D_BEFORE=() D_AFTER=() D_SPAN=() D_SKEW=() D_BOUND=() D_LAG=() D_WORST=() D_E2E=()
for r in $(seq "$REPEATS"); do
    order=(single dist)
    ((r % 2 == 0)) && order=(dist single)
    for who in "${order[@]}"; do
        if [[ $who == single ]]; then
            read -r span lag wall < <(run_single)
            S_SPAN+=("$span") S_LAG+=("$lag") S_WALL+=("$wall")
            say "  round $r single: span $span ms, lag p99 $lag ms, wall $wall ms"
        else
            read -r span skew bound lag worst e2e wall before after < <(run_dist)
            D_SPAN+=("$span") D_SKEW+=("$skew") D_BOUND+=("$bound") D_LAG+=("$lag") D_WORST+=("$worst") D_E2E+=("$e2e") D_WALL+=("$wall") D_BEFORE+=("$before") D_AFTER+=("$after")
            say "  round $r distributed: span $span ms, start skew $skew ms (±$bound), lag p99 $lag ms (worst driver $worst), wall $wall ms, end to end $e2e ms (before the start $before ms, after the verdict $after ms)"
        fi
    done
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt() { awk -v v="$1" -v d="${2:-3}" 'BEGIN { printf "%.*f", d, v }'; }
ok() { if [[ "$(awk "BEGIN { print ($1) ? 1 : 0 }")" == 1 ]]; then echo OK; else echo MISSED; fi; }
s_span="$(median "${S_SPAN[@]}")" d_span="$(median "${D_SPAN[@]}")" skew="$(median "${D_SKEW[@]}")"
s_wall="$(median "${S_WALL[@]}")" d_wall="$(median "${D_WALL[@]}")" d_e2e="$(median "${D_E2E[@]}")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / b }'; }
span_ratio="$(ratio "$d_span" "$s_span")" wall_ratio="$(ratio "$d_wall" "$s_wall")" e2e_ratio="$(ratio "$d_e2e" "$s_wall")"
say ""
say "distributed ($DRIVERS drivers, medians of $REPEATS)"
printf '%-44s %s\n' "start skew" "$(fmt "$skew") ms (clock bound ±$(fmt "$(median "${D_BOUND[@]}")") ms)"
printf '%-44s %s\n' "schedule lag p99, merged / worst driver" "$(fmt "$(median "${D_LAG[@]}")") / $(fmt "$(median "${D_WORST[@]}")") ms (one process: $(fmt "$(median "${S_LAG[@]}")") ms)"
printf '%-44s %s\n' "load span, distributed / one process" "$(fmt "$d_span" 0) / $(fmt "$s_span" 0) ms = ${span_ratio}x"
printf '%-44s %s\n' "wall time, start to verdict / exec to exit" "$(fmt "$d_wall" 0) / $(fmt "$s_wall" 0) ms = ${wall_ratio}x"
printf '%-44s %s\n' "end to end, REST create to settled" "$(fmt "$d_e2e" 0) ms = ${e2e_ratio}x one process's wall (before the start $(fmt "$(median "${D_BEFORE[@]}")" 0) ms, after the verdict $(fmt "$(median "${D_AFTER[@]}")" 0) ms)"
printf '%-44s %-24s %s\n' "start skew < ${GOAL_SKEW_MS} ms" "$(fmt "$skew") ms" "$(ok "$skew < $GOAL_SKEW_MS")"
printf '%-44s %-24s %s\n' "load span <= ${GOAL_SPAN_RATIO} x one process" "${span_ratio}x" "$(ok "$span_ratio <= $GOAL_SPAN_RATIO")"
printf '%-44s %-24s %s\n' "wall time <= ${GOAL_SPAN_RATIO} x one process" "${wall_ratio}x" "$(ok "$wall_ratio <= $GOAL_SPAN_RATIO")"
printf '%-44s %-24s %s\n' "end to end <= ${GOAL_SPAN_RATIO} x one process's wall" "${e2e_ratio}x" "$(ok "$e2e_ratio <= $GOAL_SPAN_RATIO") (${SECS} s of load)"
exit 0
