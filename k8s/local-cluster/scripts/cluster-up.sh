#!/usr/bin/env bash
# Brings up a single-node Kubernetes on this machine without Docker: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd (Debian), kubelet, kube-proxy and kube-network-policies
# (NetworkPolicy enforcement, as kind has it) as host processes, pods on a CNI bridge (Debian's plugins).
# Idempotent: a component already running is left alone. NETPOL=0 leaves the policies unenforced.
# Then the add-ons: CoreDNS, Traefik (ingress), local-path-provisioner (default StorageClass); ADDONS=0 skips
# them, LC_TOOLS="etcd pause" builds only those tools.
source "$(dirname "$0")/lib.sh"
reason="$("$LC_DIR/scripts/preflight.sh")" || die "this machine cannot run the cluster: $reason"
t0=$SECONDS
IP="$(node_ip)"; [ -n "$IP" ] || die "no node IP (set NODE_IP)"
mkdir -p "$LC_RUN" "$LC_LOG" "$LC_CONF"

# --- binaries (cached builds) ---------------------------------------------------------------------------
"$LC_DIR/scripts/build-kube.sh"
"$LC_DIR/scripts/build-tools.sh" ${LC_TOOLS:-}

# --- host settings --------------------------------------------------------------------------------------
# Pod traffic is routed and NATed by the host; Services are iptables rules that must see bridged traffic.
[ -f "$LC_STATE/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward > "$LC_STATE/ip_forward.orig"
sysctl -qw net.ipv4.ip_forward=1
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null || true
sysctl -qw net.bridge.bridge-nf-call-iptables=1 || die "br_netfilter unavailable"
# NodePorts on 127.0.0.1 (the ingress at http://127.0.0.1:30080) need routing of loopback addresses.
sysctl -qw net.ipv4.conf.all.route_localnet=1

# running NAME: the component's pid file names a live process.
running() { [ -f "$LC_RUN/$1.pid" ] && kill -0 "$(cat "$LC_RUN/$1.pid")" 2>/dev/null; }
# start NAME CMD...: run CMD detached (own session), log to $LC_LOG/NAME.log, unless it already runs.
start() {
  local name=$1; shift
  if running "$name"; then log "$name already running (pid $(cat "$LC_RUN/$name.pid"))"; return; fi
  log "starting $name"
  setsid nohup "$@" >>"$LC_LOG/$name.log" 2>&1 < /dev/null &
  echo $! > "$LC_RUN/$name.pid"
}
# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
  local what=$1 limit=$2 s=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - s)) -lt "$limit" ] || die "$what not ready after ${limit}s (logs: $LC_LOG)"
    sleep 1
  done
  log "$what ready ($((SECONDS - s))s)"
}
K() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
# install_if_changed DST: stdin to DST only when it differs (kube-proxy exits when its config file changes).
install_if_changed() { local t; t=$(mktemp); cat > "$t"; if cmp -s "$t" "$1"; then rm -f "$t"; else mv "$t" "$1"; fi; }

"$LC_DIR/scripts/pki.sh"
P="$LC_PKI"

# --- control plane --------------------------------------------------------------------------------------
# etcd on loopback only (plain HTTP: nothing but the local apiserver can reach it).
start etcd etcd --name local --data-dir "$LC_STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
  --quota-backend-bytes 2147483648 --snapshot-count 10000
wait_for etcd 60 curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

start kube-apiserver kube-apiserver \
  --advertise-address "$IP" --secure-port "$API_PORT" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --client-ca-file "$P/ca.crt" --tls-cert-file "$P/apiserver.crt" --tls-private-key-file "$P/apiserver.key" \
  --kubelet-client-certificate "$P/apiserver-kubelet-client.crt" --kubelet-client-key "$P/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$P/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
  --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file "$P/sa.pub" --service-account-signing-key-file "$P/sa.key" \
  --api-audiences "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --profiling=false
wait_for kube-apiserver 180 K get --raw /readyz

start kube-controller-manager kube-controller-manager \
  --kubeconfig "$LC_CONF/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$LC_CONF/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$LC_CONF/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --cluster-signing-cert-file "$P/ca.crt" --cluster-signing-key-file "$P/ca.key" \
  --root-ca-file "$P/ca.crt" --service-account-private-key-file "$P/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
start kube-scheduler kube-scheduler \
  --kubeconfig "$LC_CONF/scheduler.kubeconfig" \
  --authentication-kubeconfig "$LC_CONF/scheduler.kubeconfig" \
  --authorization-kubeconfig "$LC_CONF/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false

# --- container runtime ----------------------------------------------------------------------------------
mkdir -p "$LC_STATE/cni/net.d" "$CONTAINERD_ROOT"
sed -e "s|@STATE@|$LC_STATE|g" -e "s|@SOCK@|$CONTAINERD_SOCK|g" -e "s|@ROOT@|$CONTAINERD_ROOT|g" \
  "$LC_DIR/config/containerd.toml" | install_if_changed "$LC_CONF/containerd.toml"
sed -e "s|@STATE@|$LC_STATE|g" -e "s|@POD_CIDR@|$POD_CIDR|g" \
  "$LC_DIR/config/cni.conflist" | install_if_changed "$LC_STATE/cni/net.d/10-local-cluster.conflist"
start containerd containerd --config "$LC_CONF/containerd.toml"
wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version

# The images the node needs (pause, CoreDNS, Traefik, local-path-provisioner), built without Docker.
"$LC_DIR/scripts/images.sh" system

# --- node -----------------------------------------------------------------------------------------------
sed -e "s|@STATE@|$LC_STATE|g" -e "s|@PKI@|$P|g" -e "s|@SOCK@|$CONTAINERD_SOCK|g" \
  -e "s|@DNS@|$DNS_SERVICE_IP|g" -e "s|@DOMAIN@|$CLUSTER_DOMAIN|g" -e "s|@NOFILE@|$NOFILE_LIMIT|g" \
  "$LC_DIR/config/kubelet.yaml" | install_if_changed "$LC_CONF/kubelet.yaml"
start kubelet kubelet --config "$LC_CONF/kubelet.yaml" --kubeconfig "$LC_CONF/kubelet.kubeconfig" \
  --root-dir "$LC_STATE/kubelet" --hostname-override "$NODE_NAME" --node-ip "$IP" \
  --node-labels "ingress-ready=true,node.kubernetes.io/local-cluster=true"
sed -e "s|@CONF@|$LC_CONF|g" -e "s|@NODE@|$NODE_NAME|g" -e "s|@POD_CIDR@|$POD_CIDR|g" \
  "$LC_DIR/config/kube-proxy.yaml" | install_if_changed "$LC_CONF/kube-proxy.yaml"
start kube-proxy kube-proxy --config "$LC_CONF/kube-proxy.yaml"
# NetworkPolicies: kube-network-policies (kind's enforcer) sends the first packet of each connection of a
# policed pod to user space (NFQUEUE 98) and drops what the policies do not allow. A host process with its
# own client certificate (the DaemonSet form needs a privileged container, refused here); nft_compat's
# xtables NFQUEUE instead of nft_queue, which this kernel lacks (tools-build/kube-network-policies/patch.sh).
# Its kernel is 6.12+, so the DNS race workaround (netfilter bug 1766) stays off; no NRI in containerd 1.6.
if [ "${NETPOL:-1}" != 0 ]; then
  K apply --server-side --force-conflicts -f "$LC_DIR/addons/kube-network-policies-rbac.yaml" >/dev/null
  KUBECONFIG="$LC_CONF/kube-network-policies.kubeconfig" start kube-network-policies kube-network-policies \
    --hostname-override "$NODE_NAME" --nfqueue-id 98 --netfilter-bug-1766-fix=false --disable-nri \
    --metrics-bind-address 127.0.0.1:9080 --v=2
  wait_for kube-network-policies 60 curl -fsS http://127.0.0.1:9080/metrics
fi
wait_for "node $NODE_NAME" 180 K wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s

# --- add-ons --------------------------------------------------------------------------------------------
[ "${ADDONS:-1}" = 0 ] || "$LC_DIR/scripts/addons.sh"
log "cluster up in $((SECONDS - t0))s; export KUBECONFIG=$KUBECONFIG_ADMIN"
