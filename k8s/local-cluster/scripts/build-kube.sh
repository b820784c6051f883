#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy from the Go module
# proxy through the wrapper module kube-build/, into $KUBE_BIN (cached: skipped when the stamp matches).
# kubectl too, from the same module, when the machine has none.
source "$(dirname "$0")/lib.sh"
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

mod="$LC_DIR/kube-build"
want="$(grep -E '^\s+k8s.io/kubernetes v' "$mod/go.mod" | awk '{print $2}')"
[ "$want" = "$KUBE_VERSION" ] || die "kube-build/go.mod pins $want but KUBE_VERSION=$KUBE_VERSION"
stamp="$KUBE_BIN/.stamp"
# The build's inputs: the module graph and the list of binaries (ldflags only carry the version).
key="$({ cat "$mod/go.mod" "$mod/go.sum"; echo "${COMPONENTS[*]}"; } | sha256sum | cut -c1-16)"
if [ -x "$KUBE_BIN/kubectl" ] || ! command -v kubectl >/dev/null; then COMPONENTS+=(kubectl); key+="+kubectl"; fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  log "kubernetes $KUBE_VERSION binaries cached in $KUBE_BIN"; exit 0
fi

minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
# The same variables hack/lib/version.sh sets: components compare their binary version (compatibility
# versions, `kubectl version`), so it must be the real one, not the default v0.0.0-master.
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done

mkdir -p "$KUBE_BIN"
log "building kubernetes $KUBE_VERSION (nice'd, GOMAXPROCS=$GOMAXPROCS); cold: ~20-30 min on 2 cores"
start=$SECONDS
(cd "$mod" && CGO_ENABLED=0 go_build -ldflags "$ldflags" -o "$KUBE_BIN/" "${COMPONENTS[@]/#/k8s.io/kubernetes/cmd/}")
echo "$key" > "$stamp"
log "built in $((SECONDS - start))s: $(ls "$KUBE_BIN" | tr '\n' ' ')"
"$KUBE_BIN/kubelet" --version >&2
