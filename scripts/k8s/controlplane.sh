#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver, no kubelet, no
# controller-manager, no scheduler) on loopback, for the operator's
# integration tests. Everything is built from Go sources fetched through the
# Go module proxy; binaries are cached in .cache/k8s/<k8s version>/bin.
# See docs/k8s-testing.md.
#
# Usage: scripts/k8s/controlplane.sh <command> [DIR]
#   build [--node]
#                build kube-apiserver, kubectl, etcd and helm (skips binaries
#                already built for the pinned versions); prints build times.
#                --node also builds what a real node needs (scripts/k8s/cluster.sh):
#                kubelet, kube-controller-manager, kube-scheduler, kube-proxy, coredns,
#                and Prometheus (with Kubernetes service discovery) for its tests
#   start [DIR]  start etcd + kube-apiserver with files in DIR (default
#                .run/k8s), wait for /readyz, print the kubeconfig path (last
#                line of stdout; everything else goes to stderr)
#   stop [DIR]   stop both and delete their data (keeps *.log); no-op if none runs
#   env [DIR]    print `export KUBECONFIG=...` and `export PATH=...` lines
#                (use: eval "$(scripts/k8s/controlplane.sh env)")
#
# Several control planes can run at once, each in its own DIR with its own ports.
# Environment: K8S_START_TIMEOUT (seconds, default 60), K8S_STOP_TIMEOUT
# (default 20), K8S_NO_OPENSSL=1 (test the no-openssl fallback: apiserver
# self-signed serving cert, kubeconfig with insecure-skip-tls-verify).
set -euo pipefail

# ---- pinned versions: the only place to change them ------------------------
K8S_VERSION=v1.36.3    # k8s.io/kubernetes: kube-apiserver + kubectl
ETCD_VERSION=v3.6.16   # go.etcd.io/etcd/server/v3 (its root package is etcd's main)
HELM_VERSION=v3.22.0   # helm.sh/helm/v3/cmd/helm
COREDNS_VERSION=v1.15.0 # github.com/coredns/coredns (cluster.sh only)
# github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16 (cluster.sh's tests only): Debian's
# prometheus 2.42 is built without Kubernetes service discovery.
PROMETHEUS_VERSION=v0.316.0
# -----------------------------------------------------------------------------

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CACHE="$ROOT/.cache/k8s"
BIN="$CACHE/$K8S_VERSION/bin"
SRC="$CACHE/src"
DEFAULT_RUN_DIR="$ROOT/.run/k8s"
START_TIMEOUT="${K8S_START_TIMEOUT:-60}"
STOP_TIMEOUT="${K8S_STOP_TIMEOUT:-20}"
SERVICE_CIDR=10.0.0.0/24

log() { echo "controlplane.sh: $*" >&2; }
die() { log "$*"; exit 1; }

run_dir() {
  local d="${1:-$DEFAULT_RUN_DIR}"
  [[ "$d" = /* ]] || d="$PWD/$d"
  realpath -m -- "$d" 2>/dev/null || echo "$d"
}

# ============================== build =======================================

# Deterministic Go settings, independent of the caller's environment.
go_env() {
  export GOFLAGS="-mod=mod -buildvcs=false"  # .cache/k8s/src sits inside our git tree
  export GOWORK=off
  export CGO_ENABLED=0                       # static binaries, like upstream releases
  unset GOOS GOARCH
}

# Path of the go.mod of MODULE@VERSION in the module cache (downloads it).
gomod_path() {
  local json p
  json="$(go mod download -json "$1@$2")" || { echo "$json" >&2; die "cannot download $1@$2"; }
  p="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  [[ -f "$p" ]] || die "no go.mod for $1@$2"
  echo "$p"
}

stamp_of() { echo "$1 ${*:2}"; }
# Is bin/NAME present and built from exactly STAMP?
have() { [[ -x "$BIN/$1" && -f "$BIN/.$1.stamp" && "$(cat "$BIN/.$1.stamp")" == "$2" ]]; }
# Move a freshly built binary into place and record what it was built from.
install_bin() { mv -f "$2" "$BIN/$1"; echo "$3" >"$BIN/.$1.stamp"; }

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

K8S_LDFLAGS() {
  local major minor pkg flags="-s -w"
  major="${K8S_VERSION#v}"; major="${major%%.*}"
  minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
  # Same -X set as kubernetes' hack/lib/version.sh; otherwise the binaries
  # report "v0.0.0-master+$Format:%H$" and clients/helm see a bogus version.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE"
  done
  echo "$flags"
}

# kube-apiserver and kubectl from one wrapper module requiring k8s.io/kubernetes.
# k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at v0.0.0
# and replaces them with ./staging/...; replaces do not apply to dependencies,
# so we replace each v0.0.0 one with its published tag v0.<minor>.<patch>.
# The wrapper imports every command either build needs, so both share one go.mod.
KUBE_CMDS=(kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy)
build_kube() {
  local names=() n
  for n in "$@"; do have "$n" "$(stamp_of "$n" "$K8S_VERSION")" || names+=("$n"); done
  (( ${#names[@]} )) || { log "$* $K8S_VERSION: cached"; return 0; }
  local t0=$SECONDS dir="$SRC/kubernetes-$K8S_VERSION" kmod staging
  staging="v0.${K8S_VERSION#v1.}"
  mkdir -p "$dir"
  kmod="$(gomod_path k8s.io/kubernetes "$K8S_VERSION")"
  {
    printf 'module floodgate.dev/k8sbins\n\ngo 1.25\n\nrequire k8s.io/kubernetes %s\n\n' "$K8S_VERSION"
    grep -E '^[[:space:]]+k8s\.io/[A-Za-z0-9._-]+ v0\.0\.0$' "$kmod" | awk '{print $1}' | sort -u |
      while read -r m; do echo "replace $m => $m $staging"; done
  } >"$dir/go.mod"
  grep -q '^replace k8s.io/api ' "$dir/go.mod" || die "no staging modules found in $kmod"
  cat >"$dir/tools.go" <<EOF
//go:build tools

package tools

import (
$(printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "${KUBE_CMDS[@]}"))
EOF
  rm -f "$dir/go.sum"
  (cd "$dir" && go mod tidy) || die "go mod tidy failed in $dir"
  local ldflags; ldflags="$(K8S_LDFLAGS)"
  for n in "${names[@]}"; do
    local t1=$SECONDS
    log "building $n $K8S_VERSION"
    (cd "$dir" && go build -ldflags "$ldflags" -o "$BIN/$n.tmp" "k8s.io/kubernetes/cmd/$n") || die "building $n failed"
    install_bin "$n" "$BIN/$n.tmp" "$(stamp_of "$n" "$K8S_VERSION")"
    log "$n $K8S_VERSION built in $(fmt_secs $((SECONDS - t1)))"
  done
  log "kubernetes binaries done in $(fmt_secs $((SECONDS - t0))) (incl. go mod tidy)"
}

# etcd: go.etcd.io/etcd/server/v3's root package is `package main` calling
# etcdmain.Main (the go.etcd.io/etcd/v3 root module is not published for every
# 3.6.x tag). Its go.mod replaces (../api, ...) are ignored in a dependency.
build_etcd() {
  local stamp; stamp="$(stamp_of etcd "$ETCD_VERSION")"
  have etcd "$stamp" && { log "etcd $ETCD_VERSION: cached"; return 0; }
  local t0=$SECONDS dir="$SRC/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  printf 'module floodgate.dev/etcdbin\n\ngo 1.25\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  cat >"$dir/tools.go" <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
  rm -f "$dir/go.sum"
  log "building etcd $ETCD_VERSION"
  (cd "$dir" && go mod tidy && go build -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
    -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3) || die "building etcd failed"
  install_bin etcd "$BIN/etcd.tmp" "$stamp"
  log "etcd $ETCD_VERSION built in $(fmt_secs $((SECONDS - t0)))"
}

# helm: plain `go install module/cmd@version` (its go.mod has no replaces).
# Like helm's Makefile, stamp the version and the default Kubernetes version
# (client-go minor + 1.x); without it `helm template` assumes Kubernetes v1.20.
build_helm() {
  local stamp; stamp="$(stamp_of helm "$HELM_VERSION")"
  have helm "$stamp" && { log "helm $HELM_VERSION: cached"; return 0; }
  local t0=$SECONDS major="${HELM_VERSION%%.*}" hmod cgo kmaj kmin
  local mod="helm.sh/helm/$major"
  hmod="$(gomod_path "$mod" "$HELM_VERSION")"
  cgo="$(awk '$1 == "k8s.io/client-go" {print $2}' "$hmod" | sed -n 1p)"   # e.g. v0.37.0
  [[ "$cgo" =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "no k8s.io/client-go version in $hmod"
  kmaj=$((BASH_REMATCH[1] + 1)); kmin="${BASH_REMATCH[2]}"
  local ldflags="-s -w -X $mod/internal/version.version=$HELM_VERSION -X $mod/internal/version.gitTreeState=clean"
  local p
  for p in pkg/lint/rules pkg/chartutil pkg/chart/common/util; do
    ldflags+=" -X $mod/$p.k8sVersionMajor=$kmaj -X $mod/$p.k8sVersionMinor=$kmin"
  done
  local gobin="$BIN/.helm.tmp"
  rm -rf "$gobin"; mkdir -p "$gobin"
  log "building helm $HELM_VERSION"
  # `go install pkg@version` uses helm's own go.mod/go.sum, whatever the cwd.
  (cd "$gobin" && GOBIN="$gobin" go install -ldflags "$ldflags" "$mod/cmd/helm@$HELM_VERSION") ||
    die "building helm failed"
  install_bin helm "$gobin/helm" "$stamp"
  rm -rf "$gobin"
  log "helm $HELM_VERSION built in $(fmt_secs $((SECONDS - t0)))"
}

# `go install PKG@VERSION` into bin/NAME, unless built already from exactly that: a module's
# own go.mod and go.sum are used, whatever the cwd.
go_install_bin() { # NAME VERSION PKG LDFLAGS
  local name=$1 version=$2 pkg=$3 ldflags=$4 stamp t0=$SECONDS gobin="$BIN/.$1.tmp"
  stamp="$(stamp_of "$name" "$version")"
  have "$name" "$stamp" && { log "$name $version: cached"; return 0; }
  rm -rf "$gobin"; mkdir -p "$gobin"
  log "building $name $version"
  (cd "$gobin" && GOBIN="$gobin" go install -ldflags "$ldflags" "$pkg@$version") || die "building $name failed"
  install_bin "$name" "$gobin/$(basename "$pkg")" "$stamp"
  rm -rf "$gobin"
  log "$name $version built in $(fmt_secs $((SECONDS - t0)))"
}

# CoreDNS, so Service names resolve in pods as on any cluster. Its main package is the
# module root (coredns.go); the plugin set is the one compiled into that release.
build_coredns() {
  go_install_bin coredns "$COREDNS_VERSION" github.com/coredns/coredns "-s -w"
}

# Prometheus with every service discovery of its release (Kubernetes' among them). Without the
# `builtinassets` tag the web UI is not embedded: the HTTP API, which the tests use, is whole.
build_prometheus() {
  go_install_bin prometheus "$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/prometheus \
    "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
}

cmd_build() {
  command -v go >/dev/null || die "go not found (Go >= 1.26 is needed; the modules are fetched via GOPROXY)"
  go_env
  BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  mkdir -p "$BIN" "$SRC"
  exec 8>"$CACHE/.build.lock"
  flock 8
  local t0=$SECONDS
  log "$(go version); GOPROXY=$(go env GOPROXY)"
  build_kube kube-apiserver kubectl
  build_etcd
  build_helm
  if [[ "${1:-}" == --node ]]; then
    build_kube kube-controller-manager kube-scheduler kube-proxy kubelet
    build_coredns
    build_prometheus
  fi
  exec 8>&-
  log "total build time $(fmt_secs $((SECONDS - t0))); binaries in $BIN:"
  {
    "$BIN/kube-apiserver" --version
    "$BIN/kubectl" version --client 2>/dev/null | sed -n 1p
    "$BIN/etcd" --version | sed -n 1p
    "$BIN/helm" version --short
  } >&2
}

# ============================== run =========================================

need_bins() {
  local n
  for n in etcd kube-apiserver kubectl; do
    [[ -x "$BIN/$n" ]] || die "$BIN/$n missing: run '$0 build' first"
  done
}

# Three distinct free TCP ports on 127.0.0.1.
free_ports() {
  if command -v python3 >/dev/null; then
    python3 -c '
import socket
ss = []
for _ in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))
'
  else
    local ports=() p
    while (( ${#ports[@]} < 3 )); do
      p=$((20000 + RANDOM % 30000))
      [[ " ${ports[*]} " == *" $p "* ]] && continue
      port_open "$p" || ports+=("$p")
    done
    echo "${ports[*]}"
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Plain-HTTP GET via bash's /dev/tcp (no curl needed); prints the body.
http_get() {
  local port="$1" path="$2"
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
    timeout 2 cat <&3
  ) 2>/dev/null
}

# Alive and not a zombie. (Once start's shell has exited, our daemons are
# re-parented to PID 1; in containers/sandboxes PID 1 may reap late or never,
# and `kill -0` succeeds on a zombie.)
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st; st="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)"
  [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# pid recorded in DIR/NAME.pid if it is alive and really ours (its command
# line mentions DIR; guards against a recycled pid).
proc_pid() {
  local dir="$1" name="$2" pid
  [[ -f "$dir/$name.pid" ]] || return 1
  pid="$(cat "$dir/$name.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"$dir/"* ]] || return 1
  echo "$pid"
}

stop_proc() {
  local dir="$1" name="$2" pid
  if pid="$(proc_pid "$dir" "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while alive "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
    if alive "$pid"; then
      log "$name ($pid) did not stop within ${STOP_TIMEOUT}s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.1; done
    fi
  fi
  rm -f "$dir/$name.pid"
}

# Everything start creates except the logs.
clean_dir() {
  local dir="$1"
  rm -rf "$dir/etcd-data" "$dir/pki"
  rm -f "$dir/kubeconfig" "$dir/tokens.csv" "$dir/endpoints.env" "$dir/etcd.pid" "$dir/kube-apiserver.pid"
}

stop_all() {
  stop_proc "$1" kube-apiserver
  stop_proc "$1" etcd
  clean_dir "$1"
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# Keys and certificates in DIR/pki. Sets TLS_ARGS, SA_ARGS and CA_FILE ("" if none).
gen_pki() {
  local dir="$1" pki="$1/pki"
  mkdir -p "$pki"; chmod 700 "$pki"
  if command -v openssl >/dev/null && [[ "${K8S_NO_OPENSSL:-}" != 1 ]]; then
    (
      cd "$pki"
      umask 077
      cat >ca.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = floodgate-test-ca
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
EOF
      cat >apiserver.ext <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:${SERVICE_CIDR%.*}.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
      openssl req -x509 -new -key ca.key -config ca.cnf -extensions v3_ca -days 3650 -sha256 -out ca.crt
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out apiserver.key 2>/dev/null
      openssl req -new -key apiserver.key -subj /CN=kube-apiserver -out apiserver.csr
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(random_hex 8)" \
        -days 3650 -sha256 -extfile apiserver.ext -out apiserver.crt 2>/dev/null
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
      openssl pkey -in sa.key -pubout -out sa.pub
    ) || die "openssl failed to generate the test PKI"
    TLS_ARGS=(--tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key")
    SA_ARGS=(--service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key")
    CA_FILE="$pki/ca.crt"
  else
    # No openssl: the apiserver writes a self-signed serving cert into
    # --cert-dir; the service-account key comes from ssh-keygen (PEM RSA; the
    # apiserver derives the public key from the private key file).
    command -v ssh-keygen >/dev/null || die "neither openssl nor ssh-keygen found (needed for the service-account key)"
    ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f "$pki/sa.key" >/dev/null || die "ssh-keygen failed"
    TLS_ARGS=(--cert-dir="$pki")
    SA_ARGS=(--service-account-key-file="$pki/sa.key" --service-account-signing-key-file="$pki/sa.key")
    CA_FILE=""
  fi
}

write_kubeconfig() {
  local dir="$1" port="$2" token="$3" tls
  if [[ -n "$CA_FILE" ]]; then
    tls="certificate-authority-data: $(base64 <"$CA_FILE" | tr -d '\n')"
  else
    tls="insecure-skip-tls-verify: true"
  fi
  (umask 077; cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: floodgate-test
  cluster:
    server: https://127.0.0.1:$port
    $tls
users:
- name: floodgate-admin
  user:
    token: $token
contexts:
- name: floodgate-test
  context:
    cluster: floodgate-test
    user: floodgate-admin
    namespace: default
current-context: floodgate-test
EOF
  )
}

# One attempt; 0 = ready, 2 = a chosen port was taken meanwhile (retry), 1 = failure.
launch() {
  local dir="$1" deadline="$2" ec ep ap token pid
  read -r ec ep ap < <(free_ports) && [[ -n "${ap:-}" ]] || { log "could not pick free ports"; return 1; }
  clean_dir "$dir"
  : >"$dir/etcd.log"; : >"$dir/kube-apiserver.log"

  # --- etcd -----------------------------------------------------------------
  # --unsafe-no-fsync: throwaway data; fsync latency on a shared disk would
  # otherwise dominate apiserver write latency (envtest does the same).
  setsid "$BIN/etcd" \
    --name=floodgate \
    --data-dir="$dir/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$ec" \
    --advertise-client-urls="http://127.0.0.1:$ec" \
    --listen-peer-urls="http://127.0.0.1:$ep" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ep" \
    --initial-cluster="floodgate=http://127.0.0.1:$ep" \
    --initial-cluster-state=new \
    --unsafe-no-fsync=true \
    </dev/null >>"$dir/etcd.log" 2>&1 9>&- &
  echo $! >"$dir/etcd.pid"
  pid=$!
  while [[ $(http_get "$ec" /health) != *'"health":"true"'* ]]; do
    alive "$pid" || {
      grep -q 'address already in use' "$dir/etcd.log" && return 2
      log "etcd exited during start-up"; tail -n 30 "$dir/etcd.log" >&2; return 1; }
    (( SECONDS < deadline )) || { log "timed out waiting for etcd"; tail -n 30 "$dir/etcd.log" >&2; return 1; }
    sleep 0.1
  done

  # --- kube-apiserver -------------------------------------------------------
  gen_pki "$dir"
  token="$(random_hex 24)"
  (umask 077; echo "$token,floodgate-admin,floodgate-admin,system:masters" >"$dir/tokens.csv")
  write_kubeconfig "$dir" "$ap" "$token"
  setsid "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ec" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$ap" \
    "${TLS_ARGS[@]}" \
    --token-auth-file="$dir/tokens.csv" \
    --authorization-mode=RBAC \
    "${SA_ARGS[@]}" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    </dev/null >>"$dir/kube-apiserver.log" 2>&1 9>&- &
  echo $! >"$dir/kube-apiserver.pid"
  pid=$!
  cat >"$dir/endpoints.env" <<EOF
K8S_API_URL=https://127.0.0.1:$ap
ETCD_URL=http://127.0.0.1:$ec
KUBECONFIG=$dir/kubeconfig
EOF
  # Poll /readyz through the kubeconfig (checks TLS + token end to end).
  local out
  while :; do
    out="$("$BIN/kubectl" --kubeconfig="$dir/kubeconfig" --request-timeout=2s get --raw /readyz 2>&1)" && [[ "$out" == ok ]] && return 0
    alive "$pid" || {
      grep -q 'address already in use' "$dir/kube-apiserver.log" && return 2
      log "kube-apiserver exited during start-up"; tail -n 30 "$dir/kube-apiserver.log" >&2; return 1; }
    (( SECONDS < deadline )) || {
      log "timed out after ${START_TIMEOUT}s waiting for /readyz (last answer: ${out:0:300})"
      tail -n 30 "$dir/kube-apiserver.log" >&2; return 1; }
    sleep 0.2
  done
}

cmd_start() {
  local dir; dir="$(run_dir "${1:-}")"
  need_bins
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if proc_pid "$dir" kube-apiserver >/dev/null && proc_pid "$dir" etcd >/dev/null; then
    log "control plane already running in $dir"
    echo "$dir/kubeconfig"
    return 0
  fi
  stop_all "$dir"   # leftovers of a crashed run
  local t0 deadline attempt rc
  t0="$(date +%s.%N)"
  deadline=$((SECONDS + START_TIMEOUT))
  for attempt in 1 2 3; do
    rc=0; launch "$dir" "$deadline" || rc=$?
    if (( rc == 0 )); then
      log "kube-apiserver $K8S_VERSION + etcd $ETCD_VERSION ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s" \
        "($(sed -n 's/^K8S_API_URL=//p' "$dir/endpoints.env"); logs in $dir)"
      echo "$dir/kubeconfig"
      return 0
    fi
    stop_all "$dir"
    (( rc == 2 )) && { log "a port was taken, retrying ($attempt)"; continue; }
    break
  done
  die "failed to start the control plane (logs: $dir/etcd.log, $dir/kube-apiserver.log)"
}

cmd_stop() {
  local dir; dir="$(run_dir "${1:-}")"
  [[ -d "$dir" ]] || return 0
  exec 9>"$dir/.lock"
  flock 9
  stop_all "$dir"
}

cmd_env() {
  local dir; dir="$(run_dir "${1:-}")"
  [[ -f "$dir/kubeconfig" ]] || log "note: no kubeconfig in $dir yet (run '$0 start')"
  printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
  printf 'export PATH=%q:"$PATH"\n' "$BIN"
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  build) cmd_build "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  env) cmd_env "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
