#!/usr/bin/env bash
# The HTTPS and HTTP/2 rows of `make bench` (section "tls"; `BENCH_ONLY=tls make bench`, or this
# script alone): `floodgate load` beside oha and h2load on one floodgate-target serving TLS with
# a CA it generates, same connections, same request count, alternating order, medians. A
# benchmark, not a test: it prints figures and marks the goal OK or MISSED, and exits 0 either
# way (non-zero only when it cannot run at all).
#
# Rows, each with C connections and N requests:
#   https h1    floodgate `load --url https://… --ca-file CA`   oha `--cacert CA`   h2load `--h1`
#   h2 m=1      floodgate `--http2 --streams 1`                 oha `--http2 -p 1`  h2load `-m 1`
#   h2 m=S      floodgate `--http2 --streams S`                 oha `--http2 -p S`  h2load `-m S`
# Figures: req/s, and CPU µs per request of the generator (user+sys from /usr/bin/time over the
# responses). Each run opens its C connections (and TLS handshakes) once; N is large enough that
# they are a small part of it. Goal: HTTPS (h1) CPU per request ≤ the best peer's / 0.9 (the
# issue's "within 0.9 × the best of them").
#
# Fairness on 2 cores: the target gets one (one tokio worker, BENCH_TARGET_CPU), each generator
# the other (BENCH_GEN_CPU) and one event-loop thread: floodgate and oha with
# TOKIO_WORKER_THREADS=1, h2load -t 1. h2load does not verify the certificate (it has no CA
# option); oha and floodgate do.
#
# Environment (all optional): BENCH_CONNECTIONS (50), BENCH_TLS_REQUESTS (200000),
# BENCH_TLS_STREAMS (10), BENCH_TLS_REPEATS (3), BENCH_GEN_CPU (0), BENCH_TARGET_CPU (1),
# FLOODGATE_BIN, FLOODGATE_TARGET_BIN, BENCH_NO_BUILD=1 (as in bench.sh).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
cd "$ROOT"

CONNS="${BENCH_CONNECTIONS:-50}"
N="${BENCH_TLS_REQUESTS:-200000}"
STREAMS="${BENCH_TLS_STREAMS:-10}"
REPEATS="${BENCH_TLS_REPEATS:-3}"
GEN_CPU="${BENCH_GEN_CPU:-0}"
TARGET_CPU="${BENCH_TARGET_CPU:-1}"
GOAL_CPU_VS_BEST=0.9 # floodgate's requests per CPU second ≥ 0.9 × the best peer's

BENCH_NAME=bench-tls
# shellcheck source=scripts/bench-lib.sh
source "$SCRIPT_DIR/bench-lib.sh"

# --- tools ----------------------------------------------------------------------------------

[[ -x /usr/bin/time ]] || apt_install time || die "/usr/bin/time is missing"
command -v curl >/dev/null || apt_install curl || die "curl is missing"
H2LOAD="$(peer_apt h2load nghttp2-client)"
OHA="$(peer_oha)"
pin_cpus "$GEN_CPU" "$TARGET_CPU"
release_binaries "$ROOT"

# --- the TLS target -------------------------------------------------------------------------

TMP="$(mktemp -d)"
TARGET_PID=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    if [[ -n "$TARGET_PID" ]]; then kill "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
CA="$TMP/ca.pem"
"${PIN_TARGET[@]}" "$TARGET_BIN" --listen 127.0.0.1:0 --threads 1 --tls-self-signed "$CA" >"$TMP/target.out" 2>&1 &
TARGET_PID=$!
PORT=""
for _ in $(seq 100); do
    PORT="$(sed -n 's/^floodgate-target listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/target.out")"
    [[ -n "$PORT" ]] && break
    kill -0 "$TARGET_PID" 2>/dev/null || die "floodgate-target exited: $(cat "$TMP/target.out")"
    sleep 0.1
done
[[ -n "$PORT" ]] || die "floodgate-target did not report its port"
# `localhost` is a name the generated certificate holds; the target listens on 127.0.0.1 only.
URL="https://localhost:$PORT/ping"
ADMIN=(curl -sS --cacert "$CA" --resolve "localhost:$PORT:127.0.0.1")
received() { "${ADMIN[@]}" "https://localhost:$PORT/metrics" | sed -n 's/.*"requests_received":\([0-9]*\).*/\1/p'; }
reset() { "${ADMIN[@]}" -X POST "https://localhost:$PORT/reset" >/dev/null; }

calc() { awk "BEGIN { printf \"%.9g\", $* }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Runs one generator pinned under /usr/bin/time; sets RPS and CPU_US (µs per response), or
# leaves them "-" when it fails or its output cannot be read.
RPS=- CPU_US=- COUNT_FAILS=0
run() { # TOOL MODE (h1 | h2:M)
    local tool=$1 mode=$2 m=1 done_n="" rps=""
    [[ $mode == h2:* ]] && m="${mode#h2:}"
    RPS=- CPU_US=-
    local cmd=()
    case "$tool" in
    floodgate)
        cmd=(env TOKIO_WORKER_THREADS=1 "$FLOODGATE" load --url "$URL" -n "$N" -c "$CONNS" --ca-file "$CA" --json)
        [[ $mode == h2:* ]] && cmd+=(--http2 --streams "$m")
        reset
        ;;
    oha)
        [[ -n "$OHA" ]] || return 0
        cmd=(env TOKIO_WORKER_THREADS=1 "$OHA" -n "$N" -c "$CONNS" --no-tui --output-format json --cacert "$CA")
        [[ $mode == h2:* ]] && cmd+=(--http2 -p "$m")
        cmd+=("$URL")
        ;;
    h2load)
        [[ -n "$H2LOAD" ]] || return 0
        cmd=("$H2LOAD" -n "$N" -c "$CONNS" -t 1)
        if [[ $mode == h1 ]]; then cmd+=(--h1); else cmd+=(-m "$m"); fi
        cmd+=("$URL")
        ;;
    esac
    if ! "$TIME" -f '%U %S' -o "$TMP/time" "${PIN_GEN[@]}" "${cmd[@]}" >"$TMP/out" 2>"$TMP/err"; then
        say "  $tool $mode failed: $(tail -n 2 "$TMP/err" | tr '\n' ' ')"
        return 0
    fi
    case "$tool" in
    floodgate)
        local j; j="$(tail -n1 "$TMP/out")"
        done_n="$(sed -n 's/.*"ok":\([0-9]*\).*/\1/p' <<<"$j")"
        rps="$(sed -n 's/.*"achieved_rps":\([0-9.eE+-]*\).*/\1/p' <<<"$j")"
        local sent seen; sent="$(sed -n 's/.*"sent":\([0-9]*\).*/\1/p' <<<"$j")"; seen="$(received)"
        if [[ "$seen" != "$sent" || "$done_n" != "$N" ]]; then
            say "  COUNT MISMATCH ($mode): floodgate sent $sent, ok $done_n, target received $seen"
            COUNT_FAILS=$((COUNT_FAILS + 1))
        fi
        ;;
    oha)
        read -r done_n rps < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d["summary"]; n=int(sys.argv[2]); print(round(n*s["successRate"]), s["requestsPerSec"])' "$TMP/out" "$N" 2>/dev/null || echo "- -")
        ;;
    h2load)
        done_n="$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$TMP/out")"
        rps="$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$TMP/out")"
        ;;
    esac
    [[ -n "$done_n" && -n "$rps" && "$done_n" != - && "$done_n" -gt 0 ]] || { say "  $tool $mode: cannot read its output"; return 0; }
    [[ "$done_n" == "$N" ]] || say "  $tool $mode: $done_n of $N succeeded"
    read -r u s <"$TMP/time"
    RPS="$rps"
    CPU_US="$(calc "($u + $s) * 1e6 / $done_n")"
}
TIME=/usr/bin/time

say "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "target:  $URL (floodgate-target, TLS with a generated CA, ALPN h2 + http/1.1, 1 worker thread)"
say "generators: floodgate $FLOODGATE; oha ${OHA:--}; h2load ${H2LOAD:--}"
say "runs: $CONNS connections, $N requests, $REPEATS rounds (order rotated), medians"

MODES=(h1 h2:1 "h2:$STREAMS")
TOOLS=(floodgate oha h2load)
declare -A R=()
for round in $(seq "$REPEATS"); do
    for mode in "${MODES[@]}"; do
        for i in 0 1 2; do
            t="${TOOLS[$(((i + round) % 3))]}"
            run "$t" "$mode"
            R[$mode:$t:rps]+="$RPS " R[$mode:$t:cpu]+="$CPU_US "
        done
    done
done

med() { # LIST: the median of its numbers, "-" if none
    local xs=() x
    for x in $1; do [[ $x != - ]] && xs+=("$x"); done
    if ((${#xs[@]} == 0)); then printf -- -; else median "${xs[@]}"; fi
}
say ""
row='%-10s %-10s %12s %12s %16s\n'
# shellcheck disable=SC2059
printf "$row" mode tool 'req/s' 'CPU us/req' 'floodgate CPU x'
declare -A BEST=()
for mode in "${MODES[@]}"; do
    fc="$(med "${R[$mode:floodgate:cpu]}")"
    best=-
    for t in "${TOOLS[@]}"; do
        c="$(med "${R[$mode:$t:cpu]}")" r="$(med "${R[$mode:$t:rps]}")"
        ratio=-
        [[ $c != - && $fc != - ]] && ratio="$(calc "$fc / $c")"
        if [[ $t != floodgate && $c != - ]] && { [[ $best == - ]] || [[ "$(awk "BEGIN { print ($c < $best) }")" == 1 ]]; }; then best=$c; fi
        label="${mode/h2:/h2 m=}"
        label="${label/h1/https h1}"
        # shellcheck disable=SC2059
        printf "$row" "$label" "$t" "$([[ $r == - ]] && echo - || printf '%.0f' "$r")" \
            "$([[ $c == - ]] && echo - || printf '%.2f' "$c")" "$([[ $ratio == - ]] && echo - || printf '%.3f' "$ratio")"
    done
    BEST[$mode]="$best:$fc"
done
say "  CPU us/req: user+sys of the generator over its successful responses; 'floodgate CPU x' is"
say "  floodgate's CPU per request over that tool's (below 1: floodgate uses less)."
say ""
IFS=: read -r best fc <<<"${BEST[h1]}"
if [[ $best == - || $fc == - ]]; then
    printf '%-52s %-24s %s\n' "https h1: requests per CPU s >= ${GOAL_CPU_VS_BEST} x best peer" "-" SKIPPED
else
    eff="$(calc "$best / $fc")"
    v=MISSED
    [[ "$(awk "BEGIN { print ($eff >= $GOAL_CPU_VS_BEST) }")" == 1 ]] && v=OK
    printf '%-52s %-24s %s\n' "https h1: requests per CPU s >= ${GOAL_CPU_VS_BEST} x best peer" "$(printf '%.3f' "$eff") x" "$v"
fi
v=OK
((COUNT_FAILS == 0)) || v=MISSED
printf '%-52s %-24s %s\n' "exact counts (target saw every request sent)" "$COUNT_FAILS mismatches" "$v"
exit 0
