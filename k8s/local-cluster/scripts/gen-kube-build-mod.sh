#!/usr/bin/env bash
# Regenerates kube-build/go.mod for another Kubernetes release: require k8s.io/kubernetes vX.Y.Z and replace
# every staging module its go.mod points at ./staging/... with the published v0.Y.Z. Then `go mod tidy`.
# Usage: gen-kube-build-mod.sh v1.34.4   (remember KUBE_VERSION in scripts/lib.sh)
source "$(dirname "$0")/lib.sh"
v=${1:?usage: gen-kube-build-mod.sh v1.X.Y}
mod="$LC_DIR/kube-build/go.mod"
upstream="$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
[ -f "$upstream" ] || die "k8s.io/kubernetes@$v not served by $GOPROXY"
{
  sed -n '1,/^module /p' "$mod"
  echo
  grep -E '^go |^godebug ' "$upstream"
  echo
  echo 'tool ('
  for c in kube-apiserver kube-controller-manager kube-proxy kube-scheduler kubelet; do
    printf '\tk8s.io/kubernetes/cmd/%s\n' "$c"
  done
  echo ')'
  echo
  echo "require k8s.io/kubernetes $v"
  echo
  echo 'replace ('
  sed -n '/^replace (/,/^)/p' "$upstream" | awk -v pub="v0.${v#v1.}" '/=> \.\/staging/ {printf "\t%s => %s %s\n", $1, $1, pub}'
  echo ')'
} > "$mod.new"
mv "$mod.new" "$mod"
(cd "$LC_DIR/kube-build" && nice -n 19 go mod tidy)
log "kube-build/go.mod now builds $v"
