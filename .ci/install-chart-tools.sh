#!/usr/bin/env bash
# Install the chart-test tools from the Go module proxy, idempotently:
#   helm (v3) and kubeconform  -> $INGESTION_TOOLS_DIR/bin  (default ~/.cache/ingestion-patterns/bin)
#   skaffold's v4beta14 JSON schema (from the skaffold Go module) -> $INGESTION_TOOLS_DIR/schemas
# Prints the versions. tests/charts finds the tools there (or on PATH). Re-runs are no-ops.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
# The first skaffold release whose module carries docs-v2/content/en/schemas/v4beta14.json.
SKAFFOLD_MODULE_VERSION="${SKAFFOLD_MODULE_VERSION:-v2.19.0}"

TOOLS_DIR="${INGESTION_TOOLS_DIR:-$HOME/.cache/ingestion-patterns}"
BIN="$TOOLS_DIR/bin"
SCHEMAS="$TOOLS_DIR/schemas"
mkdir -p "$BIN" "$SCHEMAS"

command -v go >/dev/null || { echo "install-chart-tools: go is required (the tools come from the Go module proxy)" >&2; exit 1; }

# go install, unless this exact version is already there (a stamp file, since a `go install`ed helm
# reports only "v3.22" without build flags).
install_tool() {  # name module version
  local name="$1" module="$2" version="$3"
  if [[ -x "$BIN/$name" && -f "$BIN/.$name-$version" ]]; then
    return
  fi
  echo "install-chart-tools: go install $module@$version"
  GOBIN="$BIN" CGO_ENABLED=0 go install "$module@$version"
  rm -f "$BIN/.$name-"*
  touch "$BIN/.$name-$version"
}

install_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
install_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

# skaffold's own JSON schema for skaffold.yaml, read from its Go module (nothing is built from it).
# The checksum database does not list this module version, so only this module skips it (GONOSUMDB);
# the file is data for a test, not code. A failure here only makes the schema test fall back to
# structural assertions, so it is not fatal.
SKAFFOLD_SCHEMA="$SCHEMAS/skaffold-v4beta14.json"
if [[ ! -s "$SKAFFOLD_SCHEMA" ]]; then
  if dir=$(cd "$TOOLS_DIR" && GOFLAGS=-mod=mod GONOSUMDB=github.com/GoogleContainerTools/skaffold \
        go mod download -json "github.com/GoogleContainerTools/skaffold/v2@$SKAFFOLD_MODULE_VERSION" 2>/dev/null \
        | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Dir", ""))') && [[ -n "$dir" ]]; then
    install -m 0644 "$dir/docs-v2/content/en/schemas/v4beta14.json" "$SKAFFOLD_SCHEMA"
  else
    echo "install-chart-tools: WARNING: skaffold module $SKAFFOLD_MODULE_VERSION not downloadable; skaffold.yaml gets structural checks only" >&2
  fi
fi

# Strimzi's CRDs (kafka.strimzi.io/v1) for Kafka, KafkaNodePool, KafkaTopic and KafkaUser, generated the way Strimzi's
# own build does (api module pom: io.strimzi.crdgenerator.CrdGenerator over the api model classes), from
# Maven Central artifacts: io.strimzi:api (the newest there with the v1 API) and io.strimzi:crd-generator
# (the newest published). Written to the cache only; nothing is copied into the repository. Needs mvn + java;
# without them the Strimzi tests check the fields the chart relies on, but not the CRD schema.
STRIMZI_API_VERSION="${STRIMZI_API_VERSION:-0.51.0}"
STRIMZI_CRD_GENERATOR_VERSION="${STRIMZI_CRD_GENERATOR_VERSION:-0.45.0}"
STRIMZI_CRDS="$SCHEMAS/strimzi-$STRIMZI_API_VERSION"
if [[ ! -s "$STRIMZI_CRDS/kafkauser.yaml" ]]; then
  if command -v mvn >/dev/null && command -v java >/dev/null; then
    work=$(mktemp -d)
    cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ingestion-patterns.ci</groupId>
  <artifactId>strimzi-crds</artifactId>
  <version>0</version>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>$STRIMZI_API_VERSION</version></dependency>
    <dependency><groupId>io.strimzi</groupId><artifactId>crd-generator</artifactId><version>$STRIMZI_CRD_GENERATOR_VERSION</version></dependency>
  </dependencies>
</project>
POM
    mkdir -p "$STRIMZI_CRDS"
    if (cd "$work" && mvn -q -B -Dstyle.color=never dependency:build-classpath -Dmdep.outputFile=classpath.txt >/dev/null) \
       && java -cp "$(cat "$work/classpath.txt")" io.strimzi.crdgenerator.CrdGenerator \
            --crd-api-version v1 --api-versions v1 --storage-version v1 --describe-api-versions v1 \
            --target-kube 1.16+ --yaml \
            "io.strimzi.api.kafka.model.kafka.Kafka=$STRIMZI_CRDS/kafka.yaml" \
            "io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$STRIMZI_CRDS/kafkanodepool.yaml" \
            "io.strimzi.api.kafka.model.topic.KafkaTopic=$STRIMZI_CRDS/kafkatopic.yaml" \
            "io.strimzi.api.kafka.model.user.KafkaUser=$STRIMZI_CRDS/kafkauser.yaml" 2>/dev/null; then
      :
    else
      echo "install-chart-tools: WARNING: could not generate Strimzi CRDs; Strimzi tests check fields only" >&2
      rm -rf "$STRIMZI_CRDS"
    fi
    rm -rf "$work"
  else
    echo "install-chart-tools: WARNING: mvn/java missing: no Strimzi CRD schemas; Strimzi tests check fields only" >&2
  fi
fi

echo "install-chart-tools: tools in $BIN"
echo "  helm        $("$BIN/helm" version --short 2>/dev/null || true) (module $HELM_VERSION)"
echo "  kubeconform $("$BIN/kubeconform" -v 2>/dev/null || true) (module $KUBECONFORM_VERSION)"
if [[ -s "$SKAFFOLD_SCHEMA" ]]; then
  echo "  skaffold schema v4beta14 from module $SKAFFOLD_MODULE_VERSION: $SKAFFOLD_SCHEMA"
fi
if [[ -s "$STRIMZI_CRDS/kafkatopic.yaml" ]]; then
  echo "  Strimzi v1 CRDs (io.strimzi:api:$STRIMZI_API_VERSION, crd-generator $STRIMZI_CRD_GENERATOR_VERSION): $STRIMZI_CRDS"
fi
