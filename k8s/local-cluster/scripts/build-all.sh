#!/usr/bin/env bash
# Everything the cluster and the platform need, built (or found in the cache) before cluster-up:
# the Kubernetes binaries and the other tools (Go, CPU-bound) while the Python base image is assembled
# (debootstrap, mostly network), then the platform's images. Prints how long each part took.
source "$(dirname "$0")/lib.sh"
mkdir -p "$LC_LOG"
s=$SECONDS
"$LC_DIR/scripts/images.sh" base > "$LC_LOG/images-base.log" 2>&1 &
base=$!
"$LC_DIR/scripts/build-kube.sh"
log "TIMING kubernetes binaries: $((SECONDS - s))s"
t=$SECONDS
"$LC_DIR/scripts/build-tools.sh"
log "TIMING etcd, CoreDNS, Traefik, local-path-provisioner, pause, kube-network-policies, kubectl: $((SECONDS - t))s"
t=$SECONDS
wait $base || die "the Python base image failed: $LC_LOG/images-base.log"
log "TIMING Python base image (waited after the Go builds): $((SECONDS - t))s"
t=$SECONDS
"$LC_DIR/scripts/images.sh" platform
log "TIMING platform images (user-code, webhook-receiver, mock-api, postgres, kafka, apicurio-registry): $((SECONDS - t))s"
log "TIMING all builds: $((SECONDS - s))s"
