#!/usr/bin/env bash
# Stops the local cluster and removes its runtime state (pods, volumes, etcd data, certificates).
# Build outputs in $LC_CACHE are kept. Idempotent. KEEP_STATE=1 stops the processes but keeps the state,
# so the next cluster-up restarts the same cluster (with its data).
source "$(dirname "$0")/lib.sh"

# stop NAME: SIGTERM the component's process (by its pid file, never by name), SIGKILL after 20 s.
stop() {
  local f="$LC_RUN/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 (pid $pid)"
    kill -"${STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

if [ -S "$CONTAINERD_SOCK" ] && [ -z "${KEEP_STATE:-}" ]; then
  # Pods first, while the kubelet no longer restarts them: stop and remove every sandbox (and its network).
  stop kubelet
  if command -v crictl >/dev/null; then
    crictl -r "unix://$CONTAINERD_SOCK" rmp -fa >/dev/null 2>&1 || true
  else
    for t in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s KILL "$t" >/dev/null 2>&1 || true
    done
  fi
fi
# kube-network-policies removes its nftables table when interrupted (SIGINT; SIGTERM would leave it behind).
STOP_SIGNAL=INT stop kube-network-policies
for c in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver containerd etcd; do stop $c; done
# containerd-shim processes of this containerd (they outlive it): found by its state directory in their args.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do
  kill -9 "$pid" 2>/dev/null || true
done

if [ -n "${KEEP_STATE:-}" ]; then log "stopped; state kept in $LC_STATE"; exit 0; fi

# Mounts under the state directory (pod volumes, container root filesystems, netns), deepest first.
if [ -d "$LC_STATE" ]; then
  findmnt -rn -o TARGET | grep "^$LC_STATE/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
fi
# Network: the pod bridge, and the NAT / Service rules kube-proxy and the CNI plugins added.
ip link del lcbr0 2>/dev/null || true
# kube-network-policies' table, if it was killed before it removed it (needs Debian's nftables for `nft`).
if command -v nft >/dev/null; then nft delete table inet kube-network-policies 2>/dev/null || true; fi
if [ -x "$KUBE_BIN/kube-proxy" ]; then "$KUBE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
iptables-save 2>/dev/null | grep -q 'CNI-' && {
  for chain in $(iptables -t nat -S 2>/dev/null | awk '/^-N CNI-/ {print $2}'); do
    iptables -t nat -S POSTROUTING | grep -- "-j $chain" | sed 's/^-A/-D/' | while read -r rule; do
      eval iptables -t nat $rule 2>/dev/null || true; done
    iptables -t nat -F "$chain" 2>/dev/null || true; iptables -t nat -X "$chain" 2>/dev/null || true
  done
}
[ -f "$LC_STATE/ip_forward.orig" ] && sysctl -qw "net.ipv4.ip_forward=$(cat "$LC_STATE/ip_forward.orig")"
rm -rf "$LC_STATE"
log "cluster down; state removed, build cache kept in $LC_CACHE"
