#!/usr/bin/env bash
# The test command (`make test`, and so CI): lint, install test dependencies, build, start the
# services the tests use (a real Kafka broker unless KAFKA_BOOTSTRAP names one; a real
# kube-apiserver + etcd built from the Go module proxy), check the Helm chart against the API
# server, run every test of the workspace, and stop what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Each step says when it starts (seconds since the start), so the log gives the time split.
step() { printf '\n==> [%4d s] %s\n' "$SECONDS" "$*"; }

KAFKA_DIR="$ROOT/.run/test-kafka"
SASL_KAFKA_DIR="$ROOT/.run/test-kafka-sasl"
K8S_DIR="$ROOT/.run/test-k8s"
CLUSTER_DIR="$ROOT/.run/test-cluster"
STARTED_KAFKA=
STARTED_SASL_KAFKA=
cleanup() {
  [[ -n "$STARTED_KAFKA" ]] && bash "$ROOT/scripts/kafka.sh" stop "$KAFKA_DIR" >/dev/null 2>&1
  [[ -n "$STARTED_SASL_KAFKA" ]] && bash "$ROOT/scripts/kafka.sh" stop "$SASL_KAFKA_DIR" >/dev/null 2>&1
  bash "$ROOT/scripts/k8s/controlplane.sh" stop "$K8S_DIR" >/dev/null 2>&1
  bash "$ROOT/scripts/k8s/cluster.sh" down "$CLUSTER_DIR" >/dev/null 2>&1
  return 0
}
trap cleanup EXIT

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "test dependencies (Chromium, playwright-core, prometheus-client, kafka-python, openapi-spec-validator, schemathesis)"
bash "$ROOT/scripts/deps.sh"

step "build"
cargo build --workspace --all-targets --locked

step "Kubernetes control plane: kube-apiserver, etcd, kubectl, helm (built once, then cached)"
bash "$ROOT/scripts/k8s/controlplane.sh" build
FLOODGATE_TEST_KUBECONFIG="$(bash "$ROOT/scripts/k8s/controlplane.sh" start "$K8S_DIR" | tail -n1)"
export FLOODGATE_TEST_KUBECONFIG
eval "$(bash "$ROOT/scripts/k8s/controlplane.sh" env "$K8S_DIR")"

step "Helm chart: lint, render, install the rendered manifests on the API server"
for values in charts/floodgate/ci/*.yaml; do
  helm lint --strict charts/floodgate -f "$values"
done
rendered="$K8S_DIR/rendered.yaml"
helm template floodgate charts/floodgate --namespace floodgate-system -f charts/floodgate/ci/kind-values.yaml \
  --set serviceMonitor.enabled=false --set podMonitor.enabled=false > "$rendered"
kubectl create namespace floodgate-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply --server-side -f crds/loadtests.floodgate.dev.yaml >/dev/null
kubectl apply --server-side --namespace floodgate-system -f "$rendered" >/dev/null
kubectl --namespace floodgate-system get deployment,service,serviceaccount,networkpolicy
# The NetworkPolicies are on by default: API, drivers, in-cluster Kafka, target.
[[ "$(kubectl --namespace floodgate-system get networkpolicy -o name | wc -l)" -eq 4 ]] \
  || { echo "the chart did not install its four NetworkPolicies" >&2; exit 1; }
# The external-Kafka values (SASL_SSL, a Secret, allowed namespaces, target egress) are accepted
# by the API server too (server-side dry run: validated against the real schemas).
kubectl create namespace loadtests --dry-run=client -o yaml | kubectl apply -f - >/dev/null
helm template floodgate charts/floodgate --namespace floodgate-system -f charts/floodgate/ci/external-kafka-values.yaml \
  --set serviceMonitor.enabled=false --set podMonitor.enabled=false \
  | kubectl apply --server-side --dry-run=server -f - >/dev/null
kubectl auth can-i --as=system:serviceaccount:floodgate-system:floodgate patch loadtests.floodgate.dev/status --all-namespaces \
  | grep -qx yes || { echo "the chart's RBAC does not let the operator write LoadTest status" >&2; exit 1; }
kubectl auth can-i --as=system:serviceaccount:floodgate-system:floodgate get secrets --namespace default \
  | grep -qx yes || { echo "the chart's RBAC does not let the operator read secretHeaders' Secrets" >&2; exit 1; }
kubectl auth can-i --as=system:serviceaccount:floodgate-system:floodgate get configmaps --namespace default \
  | grep -qx yes || { echo "the chart's RBAC does not let the operator read tls.caFrom's ConfigMaps" >&2; exit 1; }
# `can-i` exits 1 when the answer is no, hence the `|| true`.
[[ "$(kubectl auth can-i --as=system:serviceaccount:floodgate-system:floodgate list configmaps --namespace default || true)" == no ]] \
  || { echo "the chart's RBAC lets the operator list ConfigMaps (get is all it needs)" >&2; exit 1; }
# The API token: the chart generates a Secret the operator reads, and an upgrade keeps its value
# (helm `lookup`), which only a real install shows.
token_of() { kubectl --namespace "$1" get secret "$2" -o jsonpath='{.data.tokens}' | base64 -d; }
[[ "$(token_of floodgate-system floodgate-api-token | wc -c)" -eq 40 ]] || { echo "the chart's API token Secret is missing or not 40 characters" >&2; exit 1; }
kubectl create namespace floodgate-helm --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# Another release name: its cluster-wide RBAC must not clash with the manifests applied above.
helm install floodgate-lookup charts/floodgate --namespace floodgate-helm --skip-crds -f charts/floodgate/ci/kind-values.yaml >/dev/null
first_token="$(token_of floodgate-helm floodgate-lookup-api-token)"
helm upgrade floodgate-lookup charts/floodgate --namespace floodgate-helm --skip-crds -f charts/floodgate/ci/kind-values.yaml >/dev/null
[[ -n "$first_token" && "$(token_of floodgate-helm floodgate-lookup-api-token)" == "$first_token" ]] \
  || { echo "helm upgrade changed the generated API token" >&2; exit 1; }
helm uninstall floodgate-lookup --namespace floodgate-helm >/dev/null
echo "API token Secret: generated, kept across helm upgrade"

if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
  step "start Kafka (KRaft, loopback; a second listener with SASL_SSL for the security tests)"
  STARTED_KAFKA=1
  KAFKA_BOOTSTRAP="$(KAFKA_SASL_SSL=1 bash "$ROOT/scripts/kafka.sh" start "$KAFKA_DIR" | tail -n1)"
  eval "$(bash "$ROOT/scripts/kafka.sh" sasl-env "$KAFKA_DIR")"
else
  # An external broker for the other tests; the SASL_SSL tests get their own local one.
  step "start a local Kafka with a SASL_SSL listener (the security tests)"
  STARTED_SASL_KAFKA=1
  (unset KAFKA_BOOTSTRAP; KAFKA_SASL_SSL=1 bash "$ROOT/scripts/kafka.sh" start "$SASL_KAFKA_DIR" >/dev/null)
  eval "$(KAFKA_BOOTSTRAP= bash "$ROOT/scripts/kafka.sh" sasl-env "$SASL_KAFKA_DIR")"
fi
export KAFKA_BOOTSTRAP
echo "Kafka at $KAFKA_BOOTSTRAP (SASL_SSL at $KAFKA_SASL_SSL_BOOTSTRAP)"

step "tests"
# Two test threads: the end-to-end tests start several processes each on a 2-core machine.
# --no-fail-fast: every test binary runs even when one fails, so one failure hides nothing.
cargo test --workspace --locked --no-fail-fast -- --test-threads=2

step "a real Kubernetes node: images, cluster, helm install, LoadTests in pods"
# After the other tests, so that the cluster's own CPU use does not disturb their timing.
bash "$ROOT/scripts/k8s/cluster.sh" build
bash "$ROOT/scripts/k8s/images.sh" build
# What the cluster must leave as it found it: the host's iptables, routes, addresses, the
# sysctls kubelet changes, and the mounts (compared after `down`).
host_state() {
  { for t in filter nat mangle raw; do iptables -w -t "$t" -S 2>/dev/null || true; done
    ip -4 route; ip -br addr
    sysctl vm.overcommit_memory kernel.panic kernel.panic_on_oops
    findmnt -rn -o TARGET | sort; } 2>&1
}
host_state >"$CLUSTER_DIR.host-before"
FLOODGATE_CLUSTER_KUBECONFIG="$(bash "$ROOT/scripts/k8s/cluster.sh" up "$CLUSTER_DIR" | tail -n1)"
export FLOODGATE_CLUSTER_KUBECONFIG
eval "$(bash "$ROOT/scripts/k8s/cluster.sh" env "$CLUSTER_DIR")"
cargo test -p floodgate-operator --locked --test cluster -- --ignored --test-threads=1
bash "$ROOT/scripts/k8s/cluster.sh" down "$CLUSTER_DIR"
host_state >"$CLUSTER_DIR.host-after"
diff -u "$CLUSTER_DIR.host-before" "$CLUSTER_DIR.host-after" \
  || { echo "the cluster did not leave the host as it found it (diff above)" >&2; exit 1; }
echo "host iptables, routes, addresses, sysctls and mounts: as before the cluster"
step "done"
