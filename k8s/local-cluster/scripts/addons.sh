#!/usr/bin/env bash
# The cluster add-ons, applied idempotently (server-side apply): CoreDNS, Traefik (with its CRDs, read from
# the Traefik module in the Go module cache) and the local-path default StorageClass. Waits until each runs.
source "$(dirname "$0")/lib.sh"
K() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
render() {
  sed -e "s|@STATE@|$LC_STATE|g" -e "s|@DNS@|$DNS_SERVICE_IP|g" -e "s|@DOMAIN@|$CLUSTER_DOMAIN|g" "$LC_DIR/addons/$1"
}
mkdir -p "$LC_STATE/local-path"

traefik_dir="$(cd "$LC_DIR/tools-build/traefik" && go list -m -f '{{.Dir}}' github.com/traefik/traefik/v3)"
K apply --server-side --force-conflicts \
  -f "$traefik_dir/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" >/dev/null
K wait --for=condition=Established crd/middlewares.traefik.io --timeout=60s >/dev/null

for f in coredns.yaml local-path.yaml traefik.yaml; do
  render "$f" | K apply --server-side --force-conflicts -f - >/dev/null
done
s=$SECONDS
K -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null
K -n local-path-storage rollout status deployment/local-path-provisioner --timeout=180s >/dev/null
K -n traefik rollout status deployment/traefik --timeout=180s >/dev/null
log "add-ons ready ($((SECONDS - s))s): CoreDNS, local-path (default StorageClass), Traefik (NodePort 30080)"
