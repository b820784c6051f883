#!/bin/sh
# patch.sh DIR: the two changes the local cluster needs in a copy of sigs.k8s.io/kube-network-policies v0.8.0
# (from the Go module proxy), so it runs as a host process of the local cluster on this machine's kernel:
#  1. cmd/main.go reads $KUBECONFIG (client-go's clientcmd) instead of the in-cluster service account, like
#     kube-proxy here; the DaemonSet form needs a privileged container, which these machines refuse.
#  2. the nftables `queue` expression (nft_queue, absent from kernels without CONFIG_NFT_QUEUE) becomes the
#     xtables NFQUEUE target through nft_compat (xt_nfqueue.go): the same queue number and bypass flag.
# Each substitution must match exactly once, or the build stops (a new version needs a new look).
set -eu
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
subst() {  # FILE OLD NEW: replace the one line OLD by NEW
  n=$(grep -cxF -- "$2" "$1" || true)
  [ "$n" -ge 1 ] || { echo "patch.sh: '$2' not found in $1" >&2; exit 1; }
  awk -v old="$2" -v new="$3" '$0 == old {print new; next} {print}' "$1" > "$1.new" && mv "$1.new" "$1"
}
subst "$dir/cmd/main.go" '	"k8s.io/client-go/rest"' '	rest "k8s.io/client-go/tools/clientcmd"'
subst "$dir/cmd/main.go" '	config, err := rest.InClusterConfig()' '	config, err := rest.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))'
ctl="$dir/pkg/networkpolicy/controller.go"
subst "$ctl" '	queue := &expr.Queue{Num: uint16(c.config.QueueID)}' '	queue := xtNFQueue(uint16(c.config.QueueID), c.config.FailOpen)'
# The bypass flag now comes with the target; the two lines that set it on the old expression go.
awk '/^\tif c.config.FailOpen \{$/ {getline l2; getline l3; if (l2 ~ /queue.Flag = expr.QueueFlagBypass/) next; print; print l2; print l3; next} {print}' \
  "$ctl" > "$ctl.new" && mv "$ctl.new" "$ctl"
if grep -q 'expr.Queue\|QueueFlagBypass' "$ctl"; then echo "patch.sh: expr.Queue still used in $ctl" >&2; exit 1; fi
cp "$here/xt_nfqueue.go" "$dir/pkg/networkpolicy/xt_nfqueue.go"
