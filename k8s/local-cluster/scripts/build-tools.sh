#!/usr/bin/env bash
# Builds the cluster's other parts from the Go module proxy into $TOOLS_BIN (each cached by a stamp):
#   etcd (wrapper module tools-build/etcd), CoreDNS (tools-build/coredns: only the plugins the cluster uses),
#   local-path-provisioner (plain `go install`), Traefik (wrapper module tools-build/traefik), the pause
#   binary (C, from the k8s.io/kubernetes module), kube-network-policies (the NetworkPolicy enforcer kind uses,
#   patched by tools-build/kube-network-policies/patch.sh for a host process on this kernel) and kubectl
#   (from kube-build/, for the image of charts/kafka's certificates Job).
# Usage: build-tools.sh [etcd|coredns|local-path-provisioner|traefik|pause|kube-network-policies|kubectl ...]
#   (default: all)
source "$(dirname "$0")/lib.sh"

LOCAL_PATH_VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
KNP_VERSION="${KNP_VERSION:-v0.8.0}"
mkdir -p "$TOOLS_BIN"

# cached NAME KEY: true when $TOOLS_BIN/NAME was built from KEY.
cached() { [ -x "$TOOLS_BIN/$1" ] && [ "$(cat "$TOOLS_BIN/.$1.stamp" 2>/dev/null)" = "$2" ]; }
done_() { echo "$2" > "$TOOLS_BIN/.$1.stamp"; log "$1 built ($3s)"; }

# wrapper NAME PKG: build PKG through the wrapper module tools-build/NAME.
wrapper() {
  local name=$1 pkg=$2 dir="$LC_DIR/tools-build/$1" key start=$SECONDS
  key="$(cat "$dir/go.mod" "$dir/go.sum" $(ls "$dir"/*.go 2>/dev/null) | sha256sum | cut -c1-16)"
  cached "$name" "$key" && { log "$name cached"; return; }
  log "building $name"
  (cd "$dir" && CGO_ENABLED=0 go_build -ldflags "-s -w ${3:-}" -o "$TOOLS_BIN/$name" "$pkg")
  done_ "$name" "$key" $((SECONDS - start))
}

# install NAME MODULE@VERSION PKG: plain `go install` (the module has no replace directives).
install() {
  local name=$1 ver=${2#*@} pkg=$3 start=$SECONDS
  cached "$name" "$ver" && { log "$name cached"; return; }
  log "building $name $ver"
  CGO_ENABLED=0 GOBIN="$TOOLS_BIN" nice -n 19 go install -trimpath -ldflags "-s -w ${4:-}" "$pkg@$ver"
  [ "$(basename "$pkg")" = "$name" ] || mv "$TOOLS_BIN/$(basename "$pkg")" "$TOOLS_BIN/$name"
  done_ "$name" "$ver" $((SECONDS - start))
}

pause() {
  local src key start=$SECONDS
  src="$(cd "$LC_DIR/kube-build" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  [ -f "$src" ] || (cd "$LC_DIR/kube-build" && go mod download k8s.io/kubernetes)
  key="$KUBE_VERSION"
  cached pause "$key" && { log "pause cached"; return; }
  # The same flags as kubernetes' build/pause/Makefile: a static binary, the only file of the pause image.
  gcc -Os -Wall -Werror -static -DVERSION="local-$KUBE_VERSION" -o "$TOOLS_BIN/pause" "$src"
  strip "$TOOLS_BIN/pause"
  done_ pause "$key" $((SECONDS - start))
}

# kube-network-policies: the module from the proxy, copied, patched (patch.sh), built; keyed by version + patch.
knp() {
  local dir="$LC_DIR/tools-build/kube-network-policies" key src work start=$SECONDS
  key="$KNP_VERSION-$(cat "$dir/patch.sh" "$dir/xt_nfqueue.go" | sha256sum | cut -c1-16)"
  cached kube-network-policies "$key" && { log "kube-network-policies cached"; return; }
  log "building kube-network-policies $KNP_VERSION"
  src="$(cd / && GOFLAGS= go mod download -json "sigs.k8s.io/kube-network-policies@$KNP_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$src" ] || die "go mod download sigs.k8s.io/kube-network-policies@$KNP_VERSION gave no directory"
  work="$(mktemp -d)"
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  "$dir/patch.sh" "$work"
  (cd "$work" && CGO_ENABLED=0 go_build -ldflags "-s -w" -o "$TOOLS_BIN/kube-network-policies" ./cmd)
  rm -rf "$work"
  done_ kube-network-policies "$key" $((SECONDS - start))
}

# kubectl from the kube-build module (the Kubernetes version of the cluster), for a FROM-scratch image.
kubectl_bin() {
  local mod="$LC_DIR/kube-build" key start=$SECONDS
  key="$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)"
  cached kubectl "$key" && { log "kubectl cached"; return; }
  log "building kubectl $KUBE_VERSION"
  # In a copy of the module: kubectl needs go.sum lines the five components do not, and kube-build/go.sum is
  # the key of their cache (build-kube.sh), so it stays as committed.
  local work; work="$(mktemp -d)"
  cp "$mod/go.mod" "$mod/go.sum" "$work/"
  (cd "$work" && CGO_ENABLED=0 go_build -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION \
    -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION" -o "$TOOLS_BIN/kubectl" k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$work"
  done_ kubectl "$key" $((SECONDS - start))
}

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(etcd pause coredns local-path-provisioner traefik kube-network-policies kubectl)
for t in "${targets[@]}"; do
  case $t in
    etcd) wrapper etcd go.etcd.io/etcd/server/v3 ;;
    traefik) wrapper traefik github.com/traefik/traefik/v3/cmd/traefik \
      "-X github.com/traefik/traefik/v3/pkg/version.Version=v3.6.12" ;;
    coredns) wrapper coredns . ;;
    local-path-provisioner) install local-path-provisioner "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" \
      github.com/rancher/local-path-provisioner ;;
    pause) pause ;;
    kube-network-policies) knp ;;
    kubectl) kubectl_bin ;;
    *) die "unknown tool $t" ;;
  esac
done
