#!/usr/bin/env bash
# helm install of charts/platform on the local cluster, with the images images.sh built and imported
# (never pulled) and PostgreSQL from the local Debian-based image. Prints the time until every pod is Ready.
# KAFKA=standalone (default): charts/kafka's standalone mode (a KRaft StatefulSet) on the Kafka image images.sh
# built from Maven Central's jars, because the Strimzi operator's image cannot be had here; KAFKA=off leaves
# Kafka out (kafka.enabled=false). Kafka is installed as production has it: only the TLS listener with
# SCRAM-SHA-512 and ACLs (no plaintext listener, no node port); the code location and its run pods log in as
# the chart's application user over SASL_SSL (user-code's kafka.security: Strimzi's Secret names), and may
# also produce (Write), which the e2e tier does from the code-location pod with `ingest produce`.
# config/platform-values.yaml (over the chart's values-kind.yaml) turns Apicurio Registry on
# (global.schemaRegistry) and declares the Avro topic `payments`; the registry runs on the image images.sh built
# from Maven Central's distribution. KAFKA=off turns both off.
source "$(dirname "$0")/lib.sh"
NAMESPACE="${NAMESPACE:-ingestion}" RELEASE="${RELEASE:-ingestion}"
HELM="${HELM:-$(command -v helm || echo "${XDG_CACHE_HOME:-$HOME/.cache}/ingestion-patterns/bin/helm")}"
K() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
export KUBECONFIG="$KUBECONFIG_ADMIN"

K create namespace "$NAMESPACE" --dry-run=client -o yaml | K apply -f - >/dev/null
K label namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
# Chart dependencies, all file:// (nothing is downloaded): each subchart's (the ingestion-common library)
# first, so the umbrella packages them complete.
for chart in user-code webhook-receiver mock-api kafka platform; do
  "$HELM" dependency build "$REPO/charts/$chart" >/dev/null
done
args=(-f "$REPO/charts/platform/values-kind.yaml" -f "$LC_DIR/config/platform-values.yaml")
for c in user-code webhook-receiver mock-api; do
  args+=(--set "$c.image.repository=localhost/ingestion-patterns/$c" --set "$c.image.tag=$IMAGE_TAG"
         --set "$c.image.pullPolicy=Never")
done
args+=(--set "postgresql.image.repository=${POSTGRES_IMAGE%:*}" --set "postgresql.image.tag=${POSTGRES_IMAGE##*:}"
       --set postgresql.image.pullPolicy=Never)
case "${KAFKA:-standalone}" in
  off) args+=(--set kafka.enabled=false --set global.schemaRegistry.enabled=false --set-json 'global.sources.kafka_topics=[]') ;;
  standalone)
    args+=(--set kafka.mode=standalone --set "kafka.standalone.image.repository=${KAFKA_IMAGE%:*}"
           --set "kafka.standalone.image.tag=${KAFKA_IMAGE##*:}" --set kafka.standalone.image.pullPolicy=Never
           --set "kafka.standalone.kubectlImage.repository=${KUBECTL_IMAGE%:*}"
           --set "kafka.standalone.kubectlImage.tag=${KUBECTL_IMAGE##*:}" --set kafka.standalone.kubectlImage.pullPolicy=Never
           --set "kafka.registry.image.repository=${APICURIO_IMAGE%:*}" --set "kafka.registry.image.tag=${APICURIO_IMAGE##*:}"
           --set kafka.registry.image.pullPolicy=Never
           --set kafka.listeners.internal.enabled=false --set kafka.listeners.nodePort.enabled=false
           --set kafka.listeners.tls.enabled=true --set kafka.authorization.enabled=true
           --set 'kafka.user.topicOperations={Describe,DescribeConfigs,Read,Write}'
           --set "user-code.env.KAFKA_BOOTSTRAP_SERVERS=$RELEASE-kafka-kafka-bootstrap:9093"
           --set user-code.kafka.security.protocol=SASL_SSL --set user-code.kafka.security.saslMechanism=SCRAM-SHA-512
           --set "user-code.kafka.security.username=$RELEASE-kafka-app"
           --set "user-code.kafka.security.passwordSecret.name=$RELEASE-kafka-app"
           --set user-code.kafka.security.passwordSecret.key=password
           --set "user-code.kafka.security.caSecret.name=$RELEASE-kafka-cluster-ca-cert"
           --set user-code.kafka.security.caSecret.key=ca.crt) ;;
  *) die "KAFKA must be standalone or off here (the Strimzi operator's image cannot be had)" ;;
esac
s=$SECONDS
"$HELM" upgrade --install "$RELEASE" "$REPO/charts/platform" -n "$NAMESPACE" "${args[@]}" "$@" \
  --wait --timeout "${HELM_TIMEOUT:-8m}"
log "helm install until Ready: $((SECONDS - s))s"
K -n "$NAMESPACE" get pods -o wide
