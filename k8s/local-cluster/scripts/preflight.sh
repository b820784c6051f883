#!/usr/bin/env bash
# Can this machine run the local cluster? Exit 0 when it can; else print the first reason it cannot and
# exit 1. Quick (no builds, no network): .ci/test asks before it spends minutes building, cluster-up before
# it starts anything.
source "$(dirname "$0")/lib.sh"
no() { echo "$*"; exit 1; }

[ "$(uname -s)" = Linux ] || no "not Linux"
[ "$(id -u)" = 0 ] || no "not root (containerd, the kubelet and kube-proxy need root)"
[ -d /sys/fs/cgroup ] && [ -n "$(ls /sys/fs/cgroup)" ] || no "no cgroup file system at /sys/fs/cgroup"
command -v go >/dev/null || no "no Go toolchain (the cluster's binaries are built from the Go module proxy)"
gov="$(go env GOVERSION)"; gov="${gov#go}"
[ "$(printf '%s\n' 1.25 "$gov" | sort -V | head -1)" = 1.25 ] || no "Go $gov is older than 1.25 (Kubernetes 1.34 needs it)"
for c in containerd runc conntrack buildah debootstrap iptables openssl gcc; do
  command -v $c >/dev/null || no "$c is missing (apt-get install: see docs/local-cluster.md)"
done
[ -x /usr/lib/cni/bridge ] || no "the CNI plugins are missing (apt-get install containernetworking-plugins)"
[ -x /bin/busybox ] || no "busybox is missing (apt-get install busybox-static)"
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null \
  || no "no br_netfilter in this kernel (Services need bridged traffic to pass iptables)"
mkdir -p "$LC_CACHE"
free_gb=$(( $(df -Pk "$LC_CACHE" | awk 'NR == 2 {print $4}') / 1048576 ))
[ "$free_gb" -ge "${LC_MIN_FREE_GB:-20}" ] || no "only ${free_gb} GB free under $LC_CACHE (the builds need ${LC_MIN_FREE_GB:-20} GB)"
exit 0
