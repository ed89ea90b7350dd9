#!/usr/bin/env bash
# What scripts/bench.sh and scripts/bench-tls.sh share: messages, finding or installing the peer
# tools (wrk, oha, vegeta, h2load, /usr/bin/time), CPU pinning and the release build. Sourced,
# never run; the sourcing script sets BENCH_NAME (the prefix of its error messages) first.

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO=(sudo); fi
APT_UPDATED=0
apt_install() { # PACKAGE: install from Debian (only called when the tool is missing); 1 when it cannot
    command -v apt-get >/dev/null || return 1
    if [[ $APT_UPDATED -eq 0 ]]; then "${SUDO[@]}" apt-get update -qq || return 1; APT_UPDATED=1; fi
    "${SUDO[@]}" apt-get install -y -qq "$1" >/dev/null
}

find_tool() { # NAME DIR…: prints the path of NAME on PATH or in one of the DIRs
    local name=$1 dir; shift
    if command -v "$name" >/dev/null; then command -v "$name"; return 0; fi
    for dir in "$@"; do
        if [[ -x "$dir/$name" ]]; then printf '%s\n' "$dir/$name"; return 0; fi
    done
    return 1
}

CARGO_BIN="${CARGO_HOME:-${HOME:-}/.cargo}/bin"
go_bin() { # prints Go's bin directory (GOPATH's first entry, or ~/go)
    local p
    p="$(go env GOPATH 2>/dev/null || true)"
    p="${p%%:*}"
    printf '%s\n' "${p:-${HOME:-}/go}/bin"
}

# Each peer_* prints the tool's path, installing it when missing, or prints nothing (after saying
# why on stderr) when it cannot: its columns then show "-", and its goals are skipped.
install_note() { printf '  %s could not be installed (%s); its columns show "-"\n' "$1" "$2" >&2; }
peer_apt() { # TOOL PACKAGE
    local path
    if path="$(find_tool "$1")"; then printf '%s\n' "$path"; return 0; fi
    printf 'installing %s (Debian %s)…\n' "$1" "$2" >&2
    if apt_install "$2" && path="$(find_tool "$1")"; then printf '%s\n' "$path"; else install_note "$1" "apt-get install $2 failed"; fi
}
peer_oha() {
    local path log
    if path="$(find_tool oha "$CARGO_BIN")"; then printf '%s\n' "$path"; return 0; fi
    printf 'installing oha (cargo install oha --locked)…\n' >&2
    log="$(mktemp -t bench-oha-install.XXXXXX)"
    if cargo install oha --locked --quiet >"$log" 2>&1 && path="$(find_tool oha "$CARGO_BIN")"; then
        rm -f "$log"
        printf '%s\n' "$path"
    else
        install_note oha "log: $log"
    fi
}
VEGETA_MODULE=github.com/tsenart/vegeta/v12@v12.13.0
peer_vegeta() {
    local path log
    if ! command -v go >/dev/null; then
        find_tool vegeta || install_note vegeta "go is not installed"
        return 0
    fi
    if path="$(find_tool vegeta "$(go_bin)")"; then printf '%s\n' "$path"; return 0; fi
    printf 'installing vegeta (go install %s)…\n' "$VEGETA_MODULE" >&2
    log="$(mktemp -t bench-vegeta-install.XXXXXX)"
    if go install "$VEGETA_MODULE" >"$log" 2>&1 && path="$(find_tool vegeta "$(go_bin)")"; then
        rm -f "$log"
        printf '%s\n' "$path"
    else
        install_note vegeta "log: $log"
    fi
}

# Pinning: the generator on GEN_CPU, the target on TARGET_CPU, when taskset can.
pin_cpus() { # GEN_CPU TARGET_CPU: sets PIN_GEN, PIN_TARGET and PINNING
    PIN_GEN=() PIN_TARGET=()
    if command -v taskset >/dev/null && taskset -c "$1" true 2>/dev/null && taskset -c "$2" true 2>/dev/null; then
        PIN_GEN=(taskset -c "$1") PIN_TARGET=(taskset -c "$2")
        PINNING="generator on CPU $1, target on CPU $2 (taskset)"
    else
        PINNING="none (taskset unavailable or CPUs $1/$2 missing)"
    fi
}

# The release binaries (unless BENCH_NO_BUILD=1): sets FLOODGATE and TARGET_BIN.
release_binaries() { # ROOT
    if [[ "${BENCH_NO_BUILD:-0}" == 1 ]]; then
        say "not building (BENCH_NO_BUILD=1)"
    else
        say "building release binaries…"
        cargo build --release --quiet -p floodgate -p floodgate-target
    fi
    local bin_dir="${CARGO_TARGET_DIR:-$1/build}/release"
    FLOODGATE="${FLOODGATE_BIN:-$bin_dir/floodgate}"
    TARGET_BIN="${FLOODGATE_TARGET_BIN:-$bin_dir/floodgate-target}"
    [[ -x "$FLOODGATE" && -x "$TARGET_BIN" ]] || die "binaries not found in $bin_dir"
}
