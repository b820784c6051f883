#!/usr/bin/env bash
# Which components run, and the node and pods as the API server sees them. Exit 0 when the node is Ready.
source "$(dirname "$0")/lib.sh"
for c in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy kube-network-policies; do
  f="$LC_RUN/$c.pid"
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then printf '%-24s running (pid %s)\n' "$c" "$(cat "$f")"
  else printf '%-24s stopped\n' "$c"; fi
done
[ -f "$KUBECONFIG_ADMIN" ] || { echo "no cluster (run: make -C k8s/local-cluster cluster-up)"; exit 1; }
echo "KUBECONFIG=$KUBECONFIG_ADMIN"
K() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" --request-timeout=5s "$@"; }
K get nodes -o wide || exit 1
K get pods -A -o wide || true
K wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s >/dev/null
