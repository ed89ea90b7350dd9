#!/usr/bin/env bash
# Floodgate's container images, built offline with podman, for the local Kubernetes node.
#
#   images.sh build        builds floodgate/{node,operator,target}:<appVersion> from docker/*.Dockerfile
#                          (binaries built on the host), the runtime base they stand on and the pod
#                          sandbox (pause) image; smoke-runs each; saves them as docker-archive
#                          tarballs in .cache/images/. Cached: unchanged inputs take seconds.
#   images.sh load SOCK    imports those tarballs into the containerd at SOCK (namespace k8s.io).
#   images.sh list [NAME]  the image references as containerd and kubelet see them
#                          (NAME: node, operator, target or pause).
#   images.sh clean        removes the podman storage (.cache/containers) and .cache/images.
#
# No registry is reachable here: nothing is pulled (--pull=never). The Dockerfiles are the ones
# users build with `docker build -f docker/node.Dockerfile .`; this script replaces their two
# remote inputs only. The `builder` stage is overridden by a named build context holding the
# host-built binaries (--build-context builder=DIR, which BuildKit and buildah both honour, so
# the rust: stage is skipped), and RUNTIME_BASE, distroless/cc-debian12:nonroot by default, is a
# local equivalent (scripts/k8s/runtime-base.Containerfile says how it differs).
#
# podman runs in a private mount namespace of this script: its storage is .cache/containers
# (so `rm -rf .cache/containers` removes it), its run state a tmpfs there, /var/tmp its tmp/;
# /var/lib is read-only (podman would otherwise keep a blob cache in /var/lib/containers), and
# every mount it makes ends with the namespace. Nothing is written outside the project. Containers
# run with runc (crun refuses this host's hybrid cgroups), no network, and explicit ulimits (the
# shell lacks CAP_SYS_RESOURCE); their leftover empty cgroups are removed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$HERE/../.." && pwd)"
STORE="$ROOT/.cache/containers"   # podman: storage/ (graph root); run/ and tmp/ while it runs
OUT="$ROOT/.cache/images"         # the tarballs; work/ holds staging, keys and logs
WORK="$OUT/work"

NAMES=(node operator target pause)
PAUSE_REF="localhost/floodgate/pause:3.10"
CGROUP_PARENT="floodgate-images"  # the containers' cgroups, removed after each build

die() { echo "images: $*" >&2; exit 1; }

# --- versions -------------------------------------------------------------------------------
# The chart's appVersion is the tag its templates default to; it must be the crates' version.
chart_version() { sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$ROOT/charts/floodgate/Chart.yaml"; }
cargo_version() { sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml"; }
TAG="$(chart_version)"
[[ -n $TAG ]] || die "no appVersion in charts/floodgate/Chart.yaml"

ref() { # NAME: its reference; kubelet reads the chart's floodgate/node:TAG as docker.io/floodgate/node:TAG
  case $1 in
    node | operator | target) echo "docker.io/floodgate/$1:$TAG" ;;
    pause) echo "$PAUSE_REF" ;;
    *) die "unknown image '$1' (node, operator, target, pause)" ;;
  esac
}

# --- timing -----------------------------------------------------------------------------------
STEP_NOTE=""
step() { # LABEL COMMAND...: runs it and prints how long it took
  local label=$1 t0=$EPOCHREALTIME
  shift
  STEP_NOTE=""
  "$@"
  awk -v l="$label" -v a="$t0" -v b="$EPOCHREALTIME" -v n="$STEP_NOTE" \
    'BEGIN { printf "images: %-44s %6.1f s%s\n", l, b - a, (n == "" ? "" : "  (" n ")") }'
}
elapsed_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# --- packages -----------------------------------------------------------------------------------
apt_install() { # PACKAGE...: installs the missing ones (as scripts/deps.sh does)
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  echo "images: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
deps() {
  # podman (with conmon), runc, containerd for ctr, gcc + libc6-dev for the static pause binary,
  # binutils for strip, util-linux for unshare and nsenter. The base packages are the host's.
  apt_install podman runc containerd gcc libc6-dev binutils util-linux
}

# --- podman -----------------------------------------------------------------------------------
# The containers' limits must not exceed conmon's: this shell's hard limits, and for nproc at most
# 32768, which podman gives conmon here (96363 was refused: "error setting rlimit type 6").
hard_limit() { # FLAG CAP
  local v
  v=$(ulimit -H "$1")
  if [[ $v == unlimited ]] || ((v > $2)); then echo "$2"; else echo "$v"; fi
}
NOFILE=$(hard_limit -n 1048576) NPROC=$(hard_limit -u 32768)
ULIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")
BUILD_FLAGS=(--pull=never --network=none --isolation=oci --layers --timestamp=0 --quiet
  --cgroup-parent="/$CGROUP_PARENT" "${ULIMITS[@]}")
RUN_FLAGS=(--pull=never --network=none --cgroup-parent="/$CGROUP_PARENT" "${ULIMITS[@]}"
  --read-only --read-only-tmpfs=false)

PODMAN=(podman --root "$STORE/storage" --runroot "$STORE/run/storage" --tmpdir "$STORE/run/libpod"
  --storage-driver overlay --storage-opt overlay.skip_mount_home=true
  --runtime runc --runtime-flag "root=$STORE/run/runc" --cgroup-manager cgroupfs
  --events-backend none)
pm() { "${PODMAN[@]}" "$@"; }

namespace_setup() {
  mkdir -p "$STORE/storage" "$STORE/run" "$WORK"/{keys,logs,empty}
  mount --bind /var/lib /var/lib
  mount -o remount,bind,ro /var/lib
  mount -t tmpfs -o mode=0700,size=64m floodgate-podman-run "$STORE/run"
  rm -rf "$STORE/tmp" && mkdir -p "$STORE/tmp"
  # podman's big temporary files: TMPDIR for most, but buildah's layer-cache lookup writes to
  # /var/tmp whatever TMPDIR says, so /var/tmp is this directory too, in this namespace.
  export TMPDIR="$STORE/tmp"
  mount --bind "$STORE/tmp" /var/tmp
  cat >"$WORK/registries.conf" <<'EOF'
# images.sh: no registry; short names never resolve to one.
unqualified-search-registries = []
EOF
  export CONTAINERS_REGISTRIES_CONF="$WORK/registries.conf"
}

namespace_cleanup() {
  local ids d
  # unshare --fork ignores SIGTERM; SIGKILL ends it, and --kill-child then ends pause.
  if [[ -n $PAUSE_TEST_PID ]]; then kill -KILL "$PAUSE_TEST_PID" 2>/dev/null || true; fi
  ids=$(pm ps -aq 2>/dev/null || true)
  if [[ -n $ids ]]; then
    # shellcheck disable=SC2086 # one id a word
    timeout 60 "${PODMAN[@]}" rm --force --time 5 $ids >/dev/null ||
      echo "images: warning: could not remove containers $ids" >&2
  fi
  # runc leaves the containers' (empty) cgroups behind on this host: remove ours, deepest first.
  for d in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
    if [[ -d $d ]]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
  rm -rf "$STORE/tmp"
  # The tmpfs, the read-only /var/lib and podman's overlay mounts end with this namespace.
}

# --- host binaries ----------------------------------------------------------------------------
cargo_build() {
  (cd "$ROOT" && cargo build --release --locked --quiet \
    -p floodgate --bin floodgate -p floodgate-operator --bin floodgate-operator \
    -p floodgate-target --bin floodgate-target)
}

# stage NAME BINARY LIBZ: lays out what the Dockerfile's builder stage leaves in /out, from the
# host build: bin/BINARY stripped of debug info as the builder does, and for LIBZ=1 lib/libz.so.1
# and an empty data/. Skipped when the sources are unchanged.
stage() {
  local name=$1 bin=$2 libz=$3 dir="$WORK/stage/$1" src="$ROOT/build/release/$2" zsrc stamp
  zsrc="/lib/$(gcc -print-multiarch)/libz.so.1"
  [[ -x $src ]] || die "$src is missing (cargo build failed?)"
  stamp=$(stat -L -c '%n %s %Y' "$src" && if ((libz)); then stat -L -c '%n %s %Y' "$zsrc"; fi)
  if [[ -f $dir.stamp && $(<"$dir.stamp") == "$stamp" && -f $dir/out/bin/$bin ]] &&
    { ((libz == 0)) || [[ -f $dir/out/lib/libz.so.1 && -d $dir/out/data ]]; }; then
    STEP_NOTE=cached
    return
  fi
  rm -rf "$dir" "$dir.stamp"
  mkdir -p "$dir/out/bin"
  cp "$src" "$dir/out/bin/$bin"
  strip --strip-debug "$dir/out/bin/$bin"
  if ((libz)); then
    mkdir -p "$dir/out/lib" "$dir/out/data"
    cp -L "$zsrc" "$dir/out/lib/libz.so.1"
  fi
  echo "$stamp" >"$dir.stamp"
}

# --- the pause binary -------------------------------------------------------------------------
PAUSE_CFLAGS=(-static -Os -Wall -Wextra -Werror)
pause_binary() {
  local dir="$WORK/pause" key
  key=$({ sha256sum "$HERE/pause.c"; gcc --version | sed -n 1p; echo "${PAUSE_CFLAGS[*]}"; } | sha256sum | cut -d' ' -f1)
  if [[ -x $dir/pause && -f $dir/pause.key && $(<"$dir/pause.key") == "$key" ]]; then
    STEP_NOTE=cached
    return
  fi
  mkdir -p "$dir"
  gcc "${PAUSE_CFLAGS[@]}" -o "$dir/pause.new" "$HERE/pause.c"
  strip "$dir/pause.new"
  pause_selftest "$dir/pause.new"
  mv -f "$dir/pause.new" "$dir/pause"
  echo "$key" >"$dir/pause.key"
}

wait_for() { # SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds, or fails at the deadline
  local limit=$1 deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || die "timed out after ${limit} s waiting for $what"
    sleep 0.05
  done
}
children_of() { ps -o pid=,stat=,comm= --ppid "$1" 2>/dev/null || true; }
has_child() { [[ $(children_of "$1") == *"$2"* ]]; }
no_children() { [[ -z $(children_of "$1") ]]; }

exited() { [[ $(ps -o stat= -p "$1" 2>/dev/null) == "" || $(ps -o stat= -p "$1") == Z* ]]; }

# pause_selftest BIN: as PID 1 of a new PID namespace it reaps an orphan and stops on SIGTERM.
PAUSE_TEST_PID="" PAUSE_PID=""
find_pause() { PAUSE_PID=$(ps -o pid= --ppid "$PAUSE_TEST_PID" | tr -d ' '); [[ -n $PAUSE_PID ]]; }
pause_selftest() {
  local bin=$1 pid rc=0
  [[ $("$bin" -v) == "pause 3.10 (floodgate)" ]] || die "pause -v: unexpected output"
  unshare --pid --fork --kill-child -- "$bin" 2>/dev/null &
  PAUSE_TEST_PID=$!
  wait_for 5 "the pause process" find_pause
  pid=$PAUSE_PID
  # An orphan: sh exits at once, so its sleep is reparented to PID 1 of the namespace, pause.
  nsenter --target "$pid" --pid -- sh -c 'sleep 0.5 & exit 0'
  wait_for 5 "the orphan to be reparented to pause" has_child "$pid" sleep
  wait_for 5 "pause to reap the orphan (a zombie stays otherwise)" no_children "$pid"
  kill -TERM "$pid"
  wait_for 5 "pause to stop on SIGTERM" exited "$PAUSE_TEST_PID"
  wait "$PAUSE_TEST_PID" || rc=$?
  PAUSE_TEST_PID=""
  ((rc == 0)) || die "pause exited with $rc on SIGTERM, not 0"
}

# --- the runtime base -------------------------------------------------------------------------
BASE_PKGS=(libc6 libgcc-s1 libgomp1 libstdc++6 libssl3 netbase tzdata)

# base_rootfs DIR: distroless/cc-debian12's contents, from this bookworm host's packages.
base_rootfs() {
  local dir=$1 p f
  [[ -L /lib && $(readlink /lib) == usr/lib ]] || die "the host is not merged-/usr (bookworm is); base_rootfs relies on it"
  umask 022
  rm -rf "$dir"
  mkdir -p "$dir"/{etc/ssl/certs,usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,var,home}
  ln -s usr/bin "$dir/bin"
  ln -s usr/lib "$dir/lib"
  ln -s usr/lib64 "$dir/lib64"
  ln -s usr/sbin "$dir/sbin"
  # The packages' files (not their directories: tar makes those), at their merged-/usr paths,
  # which on this merged host are the same files; one tar copies them, links as links.
  for p in "${BASE_PKGS[@]}"; do
    while IFS= read -r f; do
      case $f in
        /usr/share/doc/*/copyright) ;;
        /usr/share/doc/* | /usr/share/man/* | /usr/share/info/* | /usr/share/lintian/* | /usr/share/bug/*) continue ;;
      esac
      [[ -d $f ]] && continue          # directories, and links to them such as /lib64
      [[ -e $f || -L $f ]] || continue # listed but absent (a removed conffile; dpkg's notes)
      case $f in /lib/* | /lib64/* | /bin/* | /sbin/*) f="/usr$f" ;; esac
      echo "${f#/}"
    done < <(dpkg-query -L "$p")
  done | sort -u | tar -C / --no-recursion -cf - -T - | tar -C "$dir" -xf -
  cp -L /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  cp -L /usr/lib/os-release "$dir/usr/lib/os-release"
  ln -s ../usr/lib/os-release "$dir/etc/os-release"
  cp -L /etc/debian_version "$dir/etc/debian_version"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$dir/etc/group"
  printf '%s\n' 'passwd:         files' 'group:          files' 'shadow:         files' \
    'hosts:          files dns' 'networks:       files' 'protocols:      files' \
    'services:       files' 'ethers:         files' 'rpc:            files' >"$dir/etc/nsswitch.conf"
  install -d -m 1777 "$dir/tmp"
  install -d -m 0700 "$dir/root"
  install -d -m 0700 -o 65532 -g 65532 "$dir/home/nonroot"
}

base_key() { # the hash of everything the base is made of
  {
    dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' "${BASE_PKGS[@]}"
    sha256sum /etc/ssl/certs/ca-certificates.crt /usr/lib/os-release /etc/debian_version \
      "$HERE/runtime-base.Containerfile"
    declare -f base_rootfs
  } | sha256sum | cut -d' ' -f1
}

BASE_REF=""
runtime_base() {
  local key dir="$WORK/base" old
  key=$(base_key)
  BASE_REF="localhost/floodgate/runtime-base:${key:0:16}"
  if is_built base "$BASE_REF" "$BASE_REF"; then
    STEP_NOTE=cached
    return
  fi
  rm -f "$WORK/keys/base"
  rm -rf "$dir" && mkdir -p "$dir/context"
  base_rootfs "$dir/rootfs"
  # A reproducible tarball: sorted, numeric owners, every mtime 0.
  tar --sort=name --mtime=@0 --numeric-owner --format=gnu -C "$dir/rootfs" -cf "$dir/context/rootfs.tar" .
  cp "$HERE/runtime-base.Containerfile" "$dir/context/Containerfile"
  pm build "${BUILD_FLAGS[@]}" -f "$dir/context/Containerfile" -t "$BASE_REF" "$dir/context" >/dev/null
  base_check
  echo "$BASE_REF" >"$WORK/keys/base"
  # Older bases (other keys) are no longer used by anything built here.
  for old in $(pm images --format '{{.Repository}}:{{.Tag}}' localhost/floodgate/runtime-base); do
    [[ $old == "$BASE_REF" ]] || pm rmi "$old" >/dev/null || true
  done
  rm -rf "$dir"
}

# base_check: the loader in the base (listing, as ldd does) resolves every library of the node binary but zlib, as on
# distroless/cc-debian12 (the Dockerfiles add zlib); run as nonroot, read-only.
base_check() {
  local out
  out=$(pm run --rm "${RUN_FLAGS[@]}" --user 65532:65532 \
    -v "$WORK/stage/node/out/bin/floodgate:/probe:ro" --env LD_TRACE_LOADED_OBJECTS=1 \
    --entrypoint /probe "$BASE_REF" 2>&1) || true
  [[ $out == *"libz.so.1 => not found"* ]] || die "the base should lack zlib as distroless does; ld.so says: $out"
  [[ $(grep -c 'not found' <<<"$out") == 1 ]] || die "the base lacks more than zlib: $out"
  [[ $out == *"libssl.so.3 => /"* && $out == *"libcrypto.so.3 => /"* && $out == *"libgcc_s.so.1 => /"* ]] ||
    die "the base lacks libssl, libcrypto or libgcc_s: $out"
}

# --- the images -------------------------------------------------------------------------------
save() { # NAME REF: the docker-archive tarball, replaced atomically
  local part="$OUT/$1.tar.part"
  rm -f "$part"
  pm save --quiet --format docker-archive -o "$part" "$2"
  mv -f "$part" "$OUT/$1.tar"
}

is_built() { # NAME KEY REF: built from the same inputs, checked, and still there
  [[ -f $WORK/keys/$1 && $(<"$WORK/keys/$1") == "$2" ]] && { [[ $1 == base ]] || [[ -f $OUT/$1.tar ]]; } &&
    pm image exists "$3"
}

run_image() { local image=$1; shift; timeout 120 "${PODMAN[@]}" run --rm "${RUN_FLAGS[@]}" --user 65532:65532 "$image" "$@"; }

# has_usage IMAGE PROG: `PROG --help` in the image prints its usage line. The output is captured whole before it is
# matched: `| grep -q` would close the pipe at the first match, and podman, still writing, fails with EPIPE (which
# pipefail turns into a failed check one run in a few).
has_usage() {
  local out
  out=$(run_image "$1" --help) || die "$1: $2 --help exited non-zero: $out"
  [[ $'\n'$out == *$'\n'"Usage: $2"[[:space:]]* ]] || die "$1: $2 --help printed no usage line: $out"
}
check_node() {
  local v
  v=$(run_image "$1" --version)
  [[ $v == "floodgate $(cargo_version)" ]] || die "$1: floodgate --version said '$v'"
  has_usage "$1" floodgate
}
check_operator() { has_usage "$1" floodgate-operator; }
check_target() { has_usage "$1" floodgate-target; }

image() { # NAME: docker/NAME.Dockerfile's runtime stage on the host-built binaries
  local name=$1 ref key df="$ROOT/docker/$1.Dockerfile" ctx="$WORK/stage/$1"
  ref=$(ref "$name")
  key=$({
    echo "$ref $BASE_REF ${BUILD_FLAGS[*]}"
    sha256sum "$df"
    (cd "$ctx" && find . | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -d' ' -f1)
  if is_built "$name" "$key" "$ref"; then
    STEP_NOTE=cached
    return
  fi
  rm -f "$WORK/keys/$name"
  pm build "${BUILD_FLAGS[@]}" --build-arg "RUNTIME_BASE=$BASE_REF" --build-context "builder=$ctx" \
    -f "$df" -t "$ref" "$WORK/empty" >"$WORK/logs/$name.log" 2>&1 ||
    { tail -n 30 "$WORK/logs/$name.log" >&2; die "podman build of $ref failed (log: $WORK/logs/$name.log)"; }
  "check_$name" "$ref"
  save "$name" "$ref"
  echo "$key" >"$WORK/keys/$name"
  STEP_NOTE="$(pm image inspect --format '{{.Size}}' "$ref" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

pause_image() {
  local dir="$WORK/pause" key
  cat >"$dir/Containerfile" <<'EOF'
# The pod sandbox image (scripts/k8s/pause.c), as registry.k8s.io/pause: the binary alone.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
EOF
  key=$(cat "$dir/Containerfile" "$dir/pause" | sha256sum | cut -d' ' -f1)
  if is_built pause "$key" "$PAUSE_REF"; then
    STEP_NOTE=cached
    return
  fi
  rm -f "$WORK/keys/pause"
  pm build "${BUILD_FLAGS[@]}" -f "$dir/Containerfile" -t "$PAUSE_REF" "$dir" >/dev/null
  check_pause
  save pause "$PAUSE_REF"
  echo "$key" >"$WORK/keys/pause"
}

is_running() { [[ $(pm container inspect --format '{{.State.Status}}' "$1") == running ]]; }

# check_pause: the sandbox keeps running, and stops on SIGTERM (podman stop) with status 0, well
# before podman's 10 s would turn to SIGKILL.
check_pause() {
  local name="floodgate-images-pause" t0 code
  pm rm --force "$name" >/dev/null 2>&1 || true
  pm run -d --name "$name" "${RUN_FLAGS[@]}" "$PAUSE_REF" >/dev/null
  wait_for 30 "the pause container to run" is_running "$name"
  t0=$EPOCHREALTIME
  timeout 30 "${PODMAN[@]}" stop --time 10 "$name" >/dev/null
  code=$(pm container inspect --format '{{.State.ExitCode}}' "$name")
  pm rm "$name" >/dev/null
  [[ $code == 0 ]] || die "pause ended with status $code on SIGTERM"
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 5) }' || die "pause took $(elapsed_since "$t0") s to stop"
}

# --- commands ---------------------------------------------------------------------------------
build_in_namespace() {
  mkdir -p "$OUT"
  exec 9>"$OUT/.lock"
  flock -w 900 9 || die "another images.sh build holds $OUT/.lock"
  namespace_setup
  trap namespace_cleanup EXIT
  [[ $(cargo_version) == "$TAG" ]] || die "Cargo version $(cargo_version) is not the chart's appVersion $TAG"
  step "cargo build (host)" cargo_build
  step "stage node" stage node floodgate 1
  step "stage operator" stage operator floodgate-operator 1
  step "stage target" stage target floodgate-target 0
  step "pause binary" pause_binary
  step "runtime base" runtime_base
  step "image $(ref node)" image node
  step "image $(ref operator)" image operator
  step "image $(ref target)" image target
  step "image $PAUSE_REF" pause_image
  # Untagged leftovers of earlier builds; the keys above, not podman's layer cache, skip work.
  pm image prune --force >/dev/null
  echo "images: built in $(elapsed_since "$T_START") s; tarballs in ${OUT#"$ROOT"/}/: ${NAMES[*]/%/.tar}"
}

build() {
  ((EUID == 0)) || die "build needs root (a mount namespace of its own, podman as root)"
  T_START=$EPOCHREALTIME
  export T_START
  step "packages" deps
  # A private mount namespace for podman (see the top); the build continues inside it.
  # podman creates /run/containers/networks on the host's /run even with --network=none:
  # removed afterwards when it was not there before, so the host's /run is left as it was.
  local had_run_containers=0 rc=0
  [[ -e /run/containers ]] && had_run_containers=1
  unshare --mount --propagation private -- bash "$SELF" __build-in-namespace || rc=$?
  if ((had_run_containers == 0)) && [[ -d /run/containers ]]; then
    rmdir /run/containers/networks /run/containers 2>/dev/null || true
  fi
  return "$rc"
}

load() { # SOCK
  local sock=$1 n t0 refs
  [[ -S $sock ]] || die "no containerd socket at $sock"
  command -v ctr >/dev/null || apt_install containerd
  for n in "${NAMES[@]}"; do
    [[ -f $OUT/$n.tar ]] || die "$OUT/$n.tar is missing: run 'images.sh build' first"
  done
  for n in "${NAMES[@]}"; do
    t0=$EPOCHREALTIME
    timeout 300 ctr -a "$sock" -n k8s.io images import "$OUT/$n.tar"
    echo "images: imported ${OUT#"$ROOT"/}/$n.tar in $(elapsed_since "$t0") s"
  done
  refs=$(timeout 60 ctr -a "$sock" -n k8s.io images ls -q)
  for n in "${NAMES[@]}"; do
    grep -qxF "$(ref "$n")" <<<"$refs" || die "$(ref "$n") is not in containerd at $sock after the import"
  done
}

list() { # [NAME]
  local n
  if [[ -n ${1:-} ]]; then ref "$1"; else for n in "${NAMES[@]}"; do ref "$n"; done; fi
}

clean() {
  mkdir -p "$OUT"
  exec 9>"$OUT/.lock"
  flock -n 9 || die "an images.sh build is running (it holds $OUT/.lock)"
  if [[ $(findmnt -rn -o TARGET) == *"$STORE"* ]]; then
    die "mounts remain under $STORE; not removing it: $(findmnt -rn -o TARGET | grep -F "$STORE" | head -3)"
  fi
  rm -rf "$STORE" "$OUT"
  echo "images: removed ${STORE#"$ROOT"/} and ${OUT#"$ROOT"/}"
}

usage() { sed -n '2,12p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2; }

case ${1:-} in
  build) (($# == 1)) || usage; build ;;
  __build-in-namespace) build_in_namespace ;;
  load) (($# == 2)) || usage; load "$2" ;;
  list) (($# <= 2)) || usage; list "${2:-}" ;;
  clean) (($# == 1)) || usage; clean ;;
  *) usage ;;
esac
