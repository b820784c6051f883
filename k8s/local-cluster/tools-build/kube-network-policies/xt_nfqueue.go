// Added to sigs.k8s.io/kube-network-policies' pkg/networkpolicy at build time by patch.sh (k8s/local-cluster).
//
// The controller sends the first packet of each connection of a policed pod to user space with nftables'
// `queue` expression (nft_queue, CONFIG_NFT_QUEUE). Kernels built without it (such as this machine's) still
// have the xtables NFQUEUE target (CONFIG_NETFILTER_XT_TARGET_NFQUEUE) and nftables' xtables compatibility
// (CONFIG_NFT_COMPAT), which is what iptables-nft's `-j NFQUEUE` uses: the same queue, the same verdicts.

package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// xtNFQueue is `-j NFQUEUE --queue-num num [--queue-bypass]` as an nftables expression: the xt_NFQUEUE
// target, revision 3, whose info is struct xt_NFQ_info_v3 {__u16 queuenum; __u16 queues_total; __u16 flags;}.
func xtNFQueue(num uint16, bypass bool) *expr.Target {
	const nfqFlagBypass = 0x01
	info := make([]byte, 6)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	if bypass {
		binary.NativeEndian.PutUint16(info[4:], nfqFlagBypass)
	}
	unknown := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &unknown}
}
