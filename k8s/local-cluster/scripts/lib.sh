# Shared settings of the local-cluster scripts (sourced, not run).
# Every path the cluster uses lives under $LC_STATE (runtime state, wiped by cluster-down) or $LC_CACHE
# (build outputs reused by the next run on this machine).
set -euo pipefail

LC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$LC_DIR/../.." && pwd)"

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"     # must match kube-build/go.mod (cgroup v1 still allowed by default)
LC_CACHE="${LC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ingestion-patterns/local-cluster}"
LC_STATE="${LC_STATE:-/var/lib/ingestion-patterns-cluster}"
LC_RUN="$LC_STATE/run"         # pid files
LC_LOG="$LC_STATE/log"         # one log per component
LC_PKI="$LC_STATE/pki"
LC_CONF="$LC_STATE/conf"
KUBE_BIN="$LC_CACHE/kubernetes/$KUBE_VERSION/bin"
TOOLS_BIN="$LC_CACHE/tools/bin"
IMAGES_DIR="$LC_CACHE/images"
KUBECONFIG_ADMIN="$LC_STATE/admin.kubeconfig"

NODE_NAME="${NODE_NAME:-$(hostname | tr 'A-Z_' 'a-z-')}"
NODE_IP="${NODE_IP:-}"
SERVICE_CIDR="${SERVICE_CIDR:-10.96.0.0/16}"
API_SERVICE_IP="10.96.0.1"
DNS_SERVICE_IP="10.96.0.10"
POD_CIDR="${POD_CIDR:-10.244.0.0/24}"
CLUSTER_DOMAIN="cluster.local"
API_PORT="${API_PORT:-6443}"
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-2379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-2380}"
# Containers may not raise rlimits above the machine's hard limit (here nofile 20000).
NOFILE_HARD="$(ulimit -Hn)"
[ "$NOFILE_HARD" = unlimited ] && NOFILE_HARD=1048576
NOFILE_LIMIT="${NOFILE_LIMIT:-$NOFILE_HARD}"

# The platform's images as images.sh builds them and deploy.sh installs them (never pulled).
SUITE=bookworm
IMAGE_TAG="${IMAGE_TAG:-local}"
POSTGRES_IMAGE="localhost/ingestion-patterns/postgres:15-$SUITE"
KAFKA_IMAGE="localhost/ingestion-patterns/kafka:${INGEST_KAFKA_VERSION:-4.4.0}-$SUITE"
KUBECTL_IMAGE="localhost/local-cluster/kubectl:$KUBE_VERSION"
# 3.0.x: the 3.1+ releases need Java 21 (see devtools/ingestion_devtools/schema_registry.py).
APICURIO_VERSION="${INGEST_APICURIO_VERSION:-3.0.9}"
APICURIO_IMAGE="localhost/ingestion-patterns/apicurio-registry:$APICURIO_VERSION-$SUITE"

CONTAINERD_ROOT="$LC_STATE/containerd"
CONTAINERD_SOCK="$LC_STATE/containerd/containerd.sock"

export GOPROXY="${GOPROXY:-https://proxy.golang.org}" GOFLAGS="${GOFLAGS:--mod=mod}"
export GOMAXPROCS="${GOMAXPROCS:-2}"
export PATH="$KUBE_BIN:$TOOLS_BIN:$PATH"

log() { printf '[local-cluster %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# First non-loopback IPv4 address of the default route's interface.
node_ip() {
  if [ -n "$NODE_IP" ]; then echo "$NODE_IP"; return; fi
  ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="src") {print $(i+1); exit}}'
}

# A nice'd `go build`: the machine is shared.
go_build() { nice -n 19 go build -trimpath "$@"; }
