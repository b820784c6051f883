#!/usr/bin/env bash
# The e2e tier (tests/e2e) against the local cluster: the platform already deployed by deploy.sh
# (E2E_DEPLOY=none), the ingress at Traefik's NodePort on loopback. Extra arguments go to pytest.
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="$KUBECONFIG_ADMIN" E2E_DEPLOY=none E2E_KAFKA="${KAFKA:-standalone}" E2E_INGRESS_URL="${E2E_INGRESS_URL:-http://127.0.0.1:30080}"
cd "$REPO"
s=$SECONDS
rc=0
uv run pytest tests/e2e -m e2e -v -s -p no:cacheprovider "$@" || rc=$?
log "e2e finished in $((SECONDS - s))s"
kubectl -n "${NAMESPACE:-ingestion}" get jobs -l app.kubernetes.io/component=dagster-run -L dagster/job || true
exit $rc
