#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, contained in a network namespace:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
# containerd (runc), CoreDNS and a Kafka broker, all from binaries built by
# scripts/k8s/controlplane.sh (Go module proxy) and Debian packages. See docs/k8s-testing.md.
#
# Usage: scripts/k8s/cluster.sh <command> [DIR]
#   build       build (cached) the Kubernetes binaries and install the Debian packages
#   up [DIR]    start the cluster with its files in DIR (default .run/cluster); import the
#               images of `make images` if they were built; print the kubeconfig (last line)
#   down [DIR]  stop everything, delete pods, mounts, cgroups, the namespace; restore sysctls
#   env [DIR]   print exports: KUBECONFIG, PATH (kubectl, helm), FLOODGATE_CLUSTER_* (node IP,
#               Kafka bootstrap, containerd socket, namespace), for `eval "$(cluster.sh env)"`
#   status [DIR] what runs
#
# Containment: every process of the node runs in the network namespace $NETNS, reached from the
# host over one veth pair (host 198.51.100.1, node .2: TEST-NET-2, never routed; `up` refuses to
# start if the host already uses any of the cluster's ranges). Pods live
# on a bridge inside that namespace; kube-proxy's and the bridge plugin's iptables rules are in
# that namespace only. The host's iptables, routes and forwarding are not touched. kubelet sets
# three host-wide sysctls (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops): `up`
# records them and `down` restores them. Nothing resolves or routes outside: CoreDNS answers
# cluster.local only, and the namespace has no default route.
# One cluster at a time on a machine (the namespace name is fixed).
# Environment: CLUSTER_START_TIMEOUT (seconds, default 120).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CP="$SCRIPT_DIR/controlplane.sh"
K8S_VERSION="$(sed -n 's/^K8S_VERSION=\([^ ]*\).*/\1/p' "$CP")"
BIN="$ROOT/.cache/k8s/$K8S_VERSION/bin"
DEFAULT_RUN_DIR="$ROOT/.run/cluster"
START_TIMEOUT="${CLUSTER_START_TIMEOUT:-120}"

NETNS=floodgate-node
HOST_IF=fgnode0
NODE_NET=198.51.100.0/30
HOST_IP=198.51.100.1
NODE_IP=198.51.100.2
NODE_NAME=floodgate-node
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
SERVICE_API_IP=10.96.0.1
CLUSTER_DOMAIN=cluster.local
API_PORT=6443
KAFKA_PORT=9092
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
PACKAGES=(containerd runc containernetworking-plugins iptables iproute2 openssl)

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

run_dir() {
  local d="${1:-$DEFAULT_RUN_DIR}"
  [[ "$d" = /* ]] || d="$PWD/$d"
  realpath -m -- "$d"
}

# Seconds since T0 (a `date +%s.%N`), one decimal.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

in_ns() { nsenter --net="/run/netns/$NETNS" -- "$@"; }

# ============================== build =======================================

apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

cmd_build() {
  local t0=$SECONDS
  apt_install "${PACKAGES[@]}"
  bash "$CP" build --node
  bash "$ROOT/scripts/kafka.sh" fetch
  log "build done in $((SECONDS - t0)) s"
}

# ============================== processes ===================================

alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st; st="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)"
  [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# The pid in DIR/pids/NAME if it is alive and its command line names DIR (not a recycled pid).
pid_of() {
  local dir="$1" name="$2" pid
  [[ -f "$dir/pids/$name" ]] || return 1
  pid="$(cat "$dir/pids/$name")"
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"$dir/"* ]] || return 1
  echo "$pid"
}

# Starts NAME (its command after it) in the node's namespace, detached, logging to DIR/logs.
spawn() {
  local dir="$1" name="$2"; shift 2
  nsenter --net="/run/netns/$NETNS" -- setsid "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 9>&- &
  echo $! >"$dir/pids/$name"
}

stop_proc() {
  local dir="$1" name="$2" pid deadline
  pid="$(pid_of "$dir" "$name")" || { rm -f "$dir/pids/$name"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 15))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if alive "$pid"; then
    log "$name ($pid) did not stop in 15 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  fi
  rm -f "$dir/pids/$name"
}

# Polls CMD... until it succeeds; fails with WHAT after the deadline (or when NAME exited).
wait_for() {
  local dir="$1" name="$2" what="$3" deadline="$4"; shift 4
  until "$@" >/dev/null 2>&1; do
    # Plain liveness, not pid_of: the pid was spawned a moment ago (it cannot be a recycled
    # one), and until the forked shell has exec'd nsenter its command line does not name DIR
    # yet, so pid_of would call a process that is still starting "exited" (seen on a busy box).
    if [[ -n "$name" ]] && ! alive "$(cat "$dir/pids/$name" 2>/dev/null)"; then
      log "$name exited while waiting for $what; its log:"; tail -n 40 "$dir/logs/$name.log" >&2; return 1
    fi
    ((SECONDS < deadline)) || {
      log "timed out waiting for $what"; [[ -n "$name" ]] && tail -n 40 "$dir/logs/$name.log" >&2; return 1; }
    sleep 0.2
  done
}

# ============================== network =====================================

# The cluster's ranges must be unknown to the host: an address or route of the host inside one
# of them would be shadowed (the host's gateway, say) while the cluster runs.
check_ranges() {
  python3 - "$NODE_NET" "$POD_CIDR" "$SERVICE_CIDR" <<'PY' || die "the host already uses one of the cluster's address ranges (above); nothing was changed"
import ipaddress, json, subprocess, sys
nets = [ipaddress.ip_network(n) for n in sys.argv[1:]]
addrs = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True).stdout)
routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=True).stdout)
used = [ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False) for i in addrs for a in i.get("addr_info", [])]
used += [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r.get("dst") not in (None, "default")]
bad = [(n, u) for n in nets for u in used if n.overlaps(u) and not u.is_loopback]
for n, u in bad:
    print(f"cluster.sh: {n} overlaps the host's {u}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

net_up() {
  check_ranges
  ip netns add "$NETNS"
  ip link add "$HOST_IF" type veth peer name eth0 netns "$NETNS"
  ip addr add "$HOST_IP/${NODE_NET#*/}" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  in_ns ip link set lo up
  in_ns ip addr add "$NODE_IP/${NODE_NET#*/}" dev eth0
  in_ns ip link set eth0 up
  # Service IPs must route for local processes (the apiserver, kubelet's probes) before
  # kube-proxy's DNAT turns them into pod IPs. An on-link route, not a default route: what no
  # rule matches goes nowhere (the host answers no ARP for it and does not forward).
  in_ns ip route add "$SERVICE_CIDR" dev eth0
  # Per-namespace sysctls (the host's own are left alone): forwarding between the pod bridge
  # and the node, and bridged pod traffic through kube-proxy's rules (hairpin via a Service).
  in_ns sysctl -q -w net.ipv4.ip_forward=1
  in_ns sysctl -q -w net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "note: no per-namespace bridge-nf-call-iptables"
  in_ns sysctl -q -w net.ipv4.conf.all.route_localnet=1
  # Pods reach each other and the node, never the host side of the veth (nor beyond it).
  in_ns iptables -w -I FORWARD -o eth0 -j DROP
}

net_down() {
  ip netns pids "$NETNS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  ip netns delete "$NETNS" 2>/dev/null || true
  ip link delete "$HOST_IF" 2>/dev/null || true
}

# ============================== PKI =========================================

gen_pki() {
  local pki="$1/pki"
  mkdir -p "$pki"; chmod 700 "$pki"
  (
    cd "$pki"
    umask 077
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
    # sign NAME SUBJECT EXTENSIONS
    sign() {
      key "$1"
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" \
        -days 30 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    key ca
    openssl req -x509 -new -key ca.key -subj /CN=floodgate-cluster-ca -days 30 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out ca.crt
    local server="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
    sign apiserver /CN=kube-apiserver "$server
subjectAltName=IP:$NODE_IP,IP:$SERVICE_API_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
    sign kubelet "/CN=system:node:$NODE_NAME/O=system:nodes" "$server
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
    # The apiserver's client certificate towards the kubelet (logs, exec, port-forward).
    sign apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client/O=system:masters" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub
    rm -f ./*.csr ./*.ext
  ) || die "openssl failed to generate the cluster PKI"
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# A kubeconfig for USER with TOKEN at SERVER.
kubeconfig() {
  local file="$1" user="$2" token="$3" server="$4"
  (umask 077; cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: floodgate
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$DIR/pki/ca.crt")
users:
- name: $user
  user:
    token: $token
contexts:
- name: floodgate
  context: {cluster: floodgate, user: $user, namespace: default}
current-context: floodgate
EOF
  )
}

# Static tokens, one identity per component, each with the permissions Kubernetes' own
# bootstrap RBAC (or the Node authorizer) gives it: no component is cluster-admin.
gen_tokens() {
  local dir="$1" line user groups token
  : >"$dir/pki/tokens.csv"
  for line in "admin system:masters" \
      "system:node:$NODE_NAME system:nodes" \
      "system:kube-controller-manager -" \
      "system:kube-scheduler -" \
      "system:kube-proxy -" \
      "floodgate:coredns -"; do
    read -r user groups <<<"$line"
    token="$(random_hex 24)"
    if [[ "$groups" == - ]]; then
      echo "$token,$user,$user" >>"$dir/pki/tokens.csv"
    else
      echo "$token,$user,$user,\"$groups\"" >>"$dir/pki/tokens.csv"
    fi
    local short="${user##*:}"; [[ "$user" == system:node:* ]] && short=kubelet
    kubeconfig "$dir/kubeconfig.$short" "$user" "$token" "https://$NODE_IP:$API_PORT"
  done
  cp "$dir/kubeconfig.admin" "$dir/kubeconfig"
}

# ============================== configuration ===============================

write_configs() {
  local dir="$1"
  mkdir -p "$dir/cni/net.d" "$dir/containerd" "$dir/kubelet" "$dir/manifests"
  # containerd 1.6 (config version 2) with runc and the bridge CNI, under DIR only.
  cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$SOCK_DIR/state"
[grpc]
  address = "$SOCK_DIR/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The shell lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below the parent's.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
  cat >"$dir/cni/net.d/10-floodgate.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "floodgate",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
               "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$dir/cni/ipam"}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
  # Pods resolve through CoreDNS on the node's IP; nothing upstream.
  printf 'nameserver %s\n' "$NODE_IP" >"$dir/kubelet/resolv.conf"
  cat >"$dir/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://$SOCK_DIR/containerd.sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
tlsCertFile: $dir/pki/kubelet.crt
tlsPrivateKeyFile: $dir/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$NODE_IP]
resolvConf: $dir/kubelet/resolv.conf
staticPodPath: $dir/manifests
podCIDR: $POD_CIDR
maxPods: 60
serializeImagePulls: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
nodeStatusReportFrequency: 10s
syncFrequency: 10s
fileCheckFrequency: 5s
EOF
  cat >"$dir/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:8181
    ready 127.0.0.1:8182
    kubernetes $CLUSTER_DOMAIN in-addr.arpa {
        kubeconfig $dir/kubeconfig.coredns floodgate
        pods insecure
    }
    cache 5
}
EOF
}

# RBAC for CoreDNS's identity (what the coredns ClusterRole of kubeadm grants).
apply_rbac() {
  "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "floodgate:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "floodgate:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "floodgate:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "floodgate:coredns"}
EOF
}

# ============================== up ==========================================

need_bins() {
  local n
  for n in etcd kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy coredns; do
    [[ -x "$BIN/$n" ]] || die "$BIN/$n missing: run '$0 build' first"
  done
  for n in containerd runc nsenter ip openssl; do command -v "$n" >/dev/null || die "$n missing: run '$0 build' first"; done
  [[ -x /usr/lib/cni/bridge ]] || die "CNI plugins missing: run '$0 build' first"
}

record_sysctls() {
  local dir="$1" s
  [[ -f "$dir/sysctls.saved" ]] && return 0   # keep the first record (a crashed run's is the original)
  for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$dir/sysctls.saved"
}

restore_sysctls() {
  local dir="$1" line
  [[ -f "$dir/sysctls.saved" ]] || return 0
  while IFS= read -r line; do sysctl -q -w "$line" || log "could not restore $line"; done <"$dir/sysctls.saved"
  rm -f "$dir/sysctls.saved"
}

cmd_up() {
  DIR="$(run_dir "${1:-}")"
  need_bins
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"; flock 9
  if pid_of "$DIR" kubelet >/dev/null && pid_of "$DIR" kube-apiserver >/dev/null; then
    log "the cluster already runs in $DIR"; echo "$DIR/kubeconfig"; return 0
  fi
  down_all "$DIR"   # what a crashed run left
  # A start that fails half-way leaves nothing running.
  trap 'log "start-up failed: tearing down"; down_all "$DIR"' EXIT
  ip netns list 2>/dev/null | awk '{print $1}' >"$DIR/netns.before"
  local t0 deadline; t0="$(date +%s.%N)"; deadline=$((SECONDS + START_TIMEOUT))
  mkdir -p "$DIR/logs" "$DIR/pids"
  # Unix socket paths are limited to 108 bytes: the sockets go under /run when DIR is deep.
  SOCK_DIR="$DIR/sock"
  ((${#SOCK_DIR} < 80)) || SOCK_DIR="/run/floodgate-cluster-$(echo "$DIR" | md5sum | cut -c1-8)"
  mkdir -p "$SOCK_DIR"; echo "$SOCK_DIR" >"$DIR/sock_dir"
  PAUSE_IMAGE="$(bash "$SCRIPT_DIR/images.sh" list pause)"
  record_sysctls "$DIR"
  # `ip netns add` makes /run/netns a mount point the first time; `down` undoes that if so.
  [[ -f "$DIR/run-netns.before" ]] || { findmnt -n /run/netns >/dev/null && echo mounted || echo absent; } >"$DIR/run-netns.before"
  net_up
  gen_pki "$DIR"
  gen_tokens "$DIR"
  write_configs "$DIR"

  spawn "$DIR" containerd containerd --config "$DIR/containerd/config.toml"
  spawn "$DIR" etcd "$BIN/etcd" --name=floodgate --data-dir="$DIR/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=floodgate=http://127.0.0.1:2380 --initial-cluster-state=new \
    --listen-metrics-urls=http://127.0.0.1:2381 --unsafe-no-fsync=true
  wait_for "$DIR" etcd "etcd" "$deadline" in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/2379'
  spawn "$DIR" kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
    --client-ca-file="$DIR/pki/ca.crt" \
    --token-auth-file="$DIR/pki/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --service-account-key-file="$DIR/pki/sa.pub" --service-account-signing-key-file="$DIR/pki/sa.key" \
    --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --kubelet-client-certificate="$DIR/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$DIR/pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$DIR/pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --allow-privileged=true
  wait_for "$DIR" kube-apiserver "the API server's /readyz" "$deadline" \
    "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" --request-timeout=2s get --raw /readyz
  log "API server ready at $(since "$t0") s"
  wait_for "$DIR" containerd "containerd" "$deadline" ctr -a "$SOCK_DIR/containerd.sock" version
  import_images "$DIR" "$SOCK_DIR/containerd.sock"

  spawn "$DIR" kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$DIR/kubeconfig.kube-controller-manager" \
    --authentication-kubeconfig="$DIR/kubeconfig.kube-controller-manager" \
    --authorization-kubeconfig="$DIR/kubeconfig.kube-controller-manager" \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$DIR/pki/sa.key" --root-ca-file="$DIR/pki/ca.crt" \
    --cluster-signing-cert-file="$DIR/pki/ca.crt" --cluster-signing-key-file="$DIR/pki/ca.key" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257
  spawn "$DIR" kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$DIR/kubeconfig.kube-scheduler" \
    --authentication-kubeconfig="$DIR/kubeconfig.kube-scheduler" \
    --authorization-kubeconfig="$DIR/kubeconfig.kube-scheduler" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259
  spawn "$DIR" kubelet "$BIN/kubelet" \
    --config="$DIR/kubelet/config.yaml" --kubeconfig="$DIR/kubeconfig.kubelet" \
    --root-dir="$DIR/kubelet/root" --node-ip="$NODE_IP" --hostname-override="$NODE_NAME"
  spawn "$DIR" kube-proxy "$BIN/kube-proxy" \
    --kubeconfig="$DIR/kubeconfig.kube-proxy" --hostname-override="$NODE_NAME" \
    --proxy-mode=iptables --cluster-cidr="$POD_CIDR" --conntrack-max-per-core=0 \
    --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256
  apply_rbac
  spawn "$DIR" coredns "$BIN/coredns" -conf "$DIR/Corefile"
  spawn_kafka "$DIR"

  wait_for "$DIR" kubelet "the node to be Ready" "$deadline" \
    "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
  log "node Ready at $(since "$t0") s"
  wait_for "$DIR" coredns "CoreDNS" "$deadline" in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/8182 && printf "GET /ready HTTP/1.0\r\n\r\n" >&3 && grep -q "200 OK" <&3'
  # The default ServiceAccount exists once the controller-manager's token controller ran;
  # pods of a new namespace cannot be created before.
  wait_for "$DIR" kube-controller-manager "the default ServiceAccount" "$deadline" \
    "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" get serviceaccount default
  wait_kafka "$DIR" "$deadline"
  trap - EXIT
  log "cluster up in $(since "$t0") s (node $NODE_NAME at $NODE_IP in netns $NETNS; Kafka $(cat "$DIR/kafka/bootstrap"); logs in $DIR/logs)"
  echo "$DIR/kubeconfig"
}

# The images of `make images` (scripts/k8s/images.sh) into the node's containerd; pods use
# them with imagePullPolicy Never (or IfNotPresent): nothing is ever pulled.
import_images() {
  local dir="$1" sock="$2"
  if ls "$ROOT"/.cache/images/*.tar >/dev/null 2>&1; then
    bash "$SCRIPT_DIR/images.sh" load "$sock" >&2 || die "importing the images failed"
  else
    log "no images built yet (make images): none imported; load them later with: scripts/k8s/images.sh load $sock"
  fi
}

spawn_kafka() {
  local dir="$1"
  mkdir -p "$dir/kafka"
  # The jars come from Maven Central, fetched from the host (a no-op once cached): the
  # namespace has no way out.
  bash "$ROOT/scripts/kafka.sh" fetch >&2
  # kafka.sh detaches the broker itself; run in the namespace, it binds the node's IP.
  # A caller's KAFKA_BOOTSTRAP (make test exports its own broker's) would make kafka.sh start
  # nothing and print that address instead.
  KAFKA_HOST="$NODE_IP" KAFKA_PORT="$KAFKA_PORT" KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}" \
    in_ns env -u KAFKA_BOOTSTRAP -u KAFKA_SASL_SSL bash "$ROOT/scripts/kafka.sh" start "$dir/kafka" >"$dir/logs/kafka-start.log" 2>&1 &
  echo $! >"$dir/kafka-start.pid"
}

wait_kafka() {
  local dir="$1" deadline="$2" pid; pid="$(cat "$dir/kafka-start.pid")"
  while alive "$pid"; do
    ((SECONDS < deadline)) || { log "timed out waiting for Kafka"; tail -n 30 "$dir/logs/kafka-start.log" >&2; return 1; }
    sleep 0.2
  done
  wait "$pid" || { log "Kafka did not start:"; tail -n 30 "$dir/logs/kafka-start.log" >&2; return 1; }
  [[ -s "$dir/kafka/bootstrap" ]] || { log "Kafka wrote no bootstrap address:"; tail -n 30 "$dir/logs/kafka-start.log" >&2; return 1; }
  rm -f "$dir/kafka-start.pid"
}

# ============================== down ========================================

# Everything `up` made, in an order that leaves nothing behind: containers outlive the kubelet,
# so they are removed through containerd; then mounts, cgroups, the namespace, sysctls.
down_all() {
  local dir="$1" sock_dir="" sock
  [[ -f "$dir/sock_dir" ]] && sock_dir="$(cat "$dir/sock_dir")"
  sock="$sock_dir/containerd.sock"
  stop_proc "$dir" kubelet
  if [[ -n "$sock_dir" && -S "$sock" ]] && pid_of "$dir" containerd >/dev/null; then
    local id
    for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    local deadline=$((SECONDS + 10))
    while [[ -n "$(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null | head -1)" ]] && ((SECONDS < deadline)); do
      for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
        ctr -a "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
      done
      sleep 0.2
    done
    for id in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      ctr -a "$sock" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  local n
  for n in coredns kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do
    stop_proc "$dir" "$n"
  done
  [[ -d "$dir/kafka" ]] && in_ns_or_host bash "$ROOT/scripts/kafka.sh" stop "$dir/kafka" >/dev/null 2>&1 || true
  # containerd-shim processes of killed pods (their command line names our socket dir).
  if [[ -n "$sock_dir" ]]; then
    pgrep -f -- "-address $sock_dir/containerd.sock" | xargs -r kill -KILL 2>/dev/null || true
  fi
  # Mounts under DIR (pod volumes, overlay snapshots, sandbox shm) and the socket dir: deepest first.
  local m
  for m in $(findmnt -rn -o TARGET | grep -E "^($dir|${sock_dir:-$dir})/" | sort -r); do
    umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
  # The pods' network namespaces that containerd made (named cni-…, bind-mounted in /run/netns).
  if [[ -f "$dir/netns.before" ]]; then
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true); do
      grep -qx "$ns" "$dir/netns.before" || ip netns delete "$ns" 2>/dev/null || true
    done
  fi
  remove_cgroups
  net_down
  if [[ -f "$dir/run-netns.before" ]]; then
    if [[ "$(cat "$dir/run-netns.before")" == absent && -z "$(ls -A /run/netns 2>/dev/null)" ]]; then
      # mounted once by `ip netns add` (a bind mount, shared): umount until it is gone
      while findmnt -n /run/netns >/dev/null; do umount /run/netns || break; done
      rmdir /run/netns 2>/dev/null || true
    fi
    rm -f "$dir/run-netns.before"
  fi
  restore_sysctls "$dir"
  [[ -n "$sock_dir" && "$sock_dir" == /run/floodgate-cluster-* ]] && rm -rf "$sock_dir"
  rm -rf "$dir/containerd/root" "$dir/containerd/state" "$dir/kubelet/root" "$dir/etcd" "$dir/cni/ipam" "$dir/sock" "$dir/kafka/data" 2>/dev/null || true
  return 0
}

in_ns_or_host() { if [[ -e "/run/netns/$NETNS" ]]; then in_ns "$@"; else "$@"; fi; }

# kubelet's cgroupfs hierarchy (kubepods, and its QoS levels) in every v1 controller.
remove_cgroups() {
  local c d
  for c in /sys/fs/cgroup/*/; do
    [[ -d "$c/kubepods" || -d "$c/kubepods.slice" ]] || continue
    for d in $(find "$c/kubepods" -depth -type d 2>/dev/null); do
      # A cgroup with processes cannot go: move them to the root first.
      if [[ -f "$d/cgroup.procs" ]]; then
        while read -r p; do echo "$p" >"$c/cgroup.procs" 2>/dev/null || true; done <"$d/cgroup.procs"
      fi
      rmdir "$d" 2>/dev/null || true
    done
  done
}

cmd_down() {
  DIR="$(run_dir "${1:-}")"
  [[ -d "$DIR" ]] || { net_down; return 0; }
  exec 9>"$DIR/.lock"; flock 9
  local t0; t0="$(date +%s.%N)"
  down_all "$DIR"
  log "cluster down in $(since "$t0") s"
}

cmd_env() {
  DIR="$(run_dir "${1:-}")"
  printf 'export KUBECONFIG=%q\n' "$DIR/kubeconfig"
  printf 'export PATH=%q:"$PATH"\n' "$BIN"
  printf 'export FLOODGATE_CLUSTER_NODE_IP=%q\n' "$NODE_IP"
  printf 'export FLOODGATE_CLUSTER_NETNS=%q\n' "$NETNS"
  printf 'export FLOODGATE_CLUSTER_PROMETHEUS=%q\n' "$BIN/prometheus"
  [[ -f "$DIR/kafka/bootstrap" ]] && printf 'export FLOODGATE_CLUSTER_KAFKA=%q\n' "$(cat "$DIR/kafka/bootstrap")"
  [[ -f "$DIR/sock_dir" ]] && printf 'export FLOODGATE_CLUSTER_CONTAINERD=%q\n' "$(cat "$DIR/sock_dir")/containerd.sock"
  return 0
}

cmd_status() {
  DIR="$(run_dir "${1:-}")"
  local n
  for n in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do
    if pid_of "$DIR" "$n" >/dev/null; then echo "$n: running"; else echo "$n: stopped"; fi
  done
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, containerd, kubelet)"
cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  build) cmd_build ;;
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  env) cmd_env "$@" ;;
  status) cmd_status "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
