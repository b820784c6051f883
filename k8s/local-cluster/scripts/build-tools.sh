#!/usr/bin/env bash
# Builds the cluster's other parts from the Go module proxy into $TOOLS_BIN (each cached by a stamp):
#   etcd (wrapper module tools-build/etcd), CoreDNS (tools-build/coredns: only the plugins the cluster uses),
#   local-path-provisioner (plain `go install`), Traefik (wrapper module tools-build/traefik), and the pause
#   binary (C, from the k8s.io/kubernetes module).
# Usage: build-tools.sh [etcd|coredns|local-path-provisioner|traefik|pause ...]   (default: all)
source "$(dirname "$0")/lib.sh"

LOCAL_PATH_VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
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

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(etcd pause coredns local-path-provisioner traefik)
for t in "${targets[@]}"; do
  case $t in
    etcd) wrapper etcd go.etcd.io/etcd/server/v3 ;;
    traefik) wrapper traefik github.com/traefik/traefik/v3/cmd/traefik \
      "-X github.com/traefik/traefik/v3/pkg/version.Version=v3.6.12" ;;
    coredns) wrapper coredns . ;;
    local-path-provisioner) install local-path-provisioner "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" \
      github.com/rancher/local-path-provisioner ;;
    pause) pause ;;
    *) die "unknown tool $t" ;;
  esac
done
