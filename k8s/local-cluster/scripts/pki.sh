#!/usr/bin/env bash
# Certificates (openssl) and kubeconfigs for the local cluster, in $LC_PKI / $LC_CONF. Idempotent: existing
# files are kept, so a restarted cluster keeps its identity; cluster-down deletes them with the state.
source "$(dirname "$0")/lib.sh"
mkdir -p "$LC_PKI" "$LC_CONF"
cd "$LC_PKI"
IP="$(node_ip)"
DAYS=3650

[ -f ca.key ] || {
  openssl genrsa -out ca.key 2048 2>/dev/null
  openssl req -x509 -new -key ca.key -days $DAYS -subj "/CN=ingestion-patterns-local-ca" -out ca.crt
}
# The service-account token signing pair.
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }

# cert NAME SUBJECT EXT: a CA-signed certificate; EXT holds extendedKeyUsage / subjectAltName lines.
cert() {
  local name=$1 subj=$2 ext=$3
  [ -f "$name.crt" ] && return
  openssl genrsa -out "$name.key" 2048 2>/dev/null
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%b\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days $DAYS \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
client='extendedKeyUsage=clientAuth'
san="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
san+=",DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$API_SERVICE_IP,IP:$IP"

cert apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth\nsubjectAltName=$san"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
cert admin "/O=system:masters/CN=kubernetes-admin" "$client"
cert controller-manager "/CN=system:kube-controller-manager" "$client"
cert scheduler "/CN=system:kube-scheduler" "$client"
cert kube-proxy "/CN=system:kube-proxy" "$client"
cert kube-network-policies "/CN=kube-network-policies" "$client"
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
cert kubelet-serving "/CN=$NODE_NAME" "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$IP"

# kubeconfig NAME: $LC_CONF/NAME.kubeconfig with the client certificate NAME, embedded.
kubeconfig() {
  local name=$1 file="$LC_CONF/$1.kubeconfig"
  [ -f "$file" ] && return
  local k=(kubectl config --kubeconfig "$file")
  "${k[@]}" set-cluster local --server "https://127.0.0.1:$API_PORT" --certificate-authority ca.crt --embed-certs >/dev/null
  "${k[@]}" set-credentials "$name" --client-certificate "$name.crt" --client-key "$name.key" --embed-certs >/dev/null
  "${k[@]}" set-context local --cluster local --user "$name" >/dev/null
  "${k[@]}" use-context local >/dev/null
  chmod 600 "$file"
}
for n in admin controller-manager scheduler kube-proxy kube-network-policies kubelet; do kubeconfig $n; done
ln -sf "$LC_CONF/admin.kubeconfig" "$KUBECONFIG_ADMIN"
log "pki and kubeconfigs in $LC_PKI, $LC_CONF"
