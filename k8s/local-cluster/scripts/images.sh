#!/usr/bin/env bash
# Builds images without Docker (buildah, chroot isolation) and imports them into the cluster's containerd
# (namespace k8s.io). Each image is saved as a docker-archive under $IMAGES_DIR, keyed by its inputs, so a
# later run only re-imports it.
#   images.sh system     pause, CoreDNS, Traefik, local-path-provisioner (+ the Debian base for its helper pod)
#   images.sh platform   Python base (debootstrap), the project's three images (docker/Dockerfile's targets)
#                        (BASE_IMAGE=the local base), PostgreSQL (Debian's package), Kafka (Apache Kafka's
#                        jars from Maven Central on Debian's Java, for charts/kafka's standalone mode,
#                        kubectl FROM scratch for its certificates Job, and Apicurio Registry from Maven
#                        Central's distribution on the same Java, for its schema registry)
source "$(dirname "$0")/lib.sh"
mkdir -p "$IMAGES_DIR"
CTR=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_TAG="localhost/ingestion-patterns/python-base:3.11-$SUITE"
EXTRA_CA_DIR="${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
BASE_KEY="$SUITE-2-$(cat "$EXTRA_CA_DIR"/*.crt 2>/dev/null | sha256sum | cut -c1-8)"

# import NAME KEY REF BUILD-FUNCTION: build REF unless $IMAGES_DIR/NAME.tar was built from KEY, then import it.
import() {
  local name=$1 key=$2 ref=$3 fn=$4 tar="$IMAGES_DIR/$1.tar" s=$SECONDS
  [ -n "$key" ] || { log "skipping image $ref: $name is not built"; return; }
  if [ "$(cat "$tar.key" 2>/dev/null)" != "$key" ] || [ ! -f "$tar" ]; then
    log "building image $ref"
    "$fn" "$ref"
    rm -f "$tar"; buildah push -q "$ref" "docker-archive:$tar:$ref" >/dev/null
    echo "$key" > "$tar.key"
    log "built $ref ($((SECONDS - s))s)"
  fi
  if [ ! -S "$CONTAINERD_SOCK" ]; then log "containerd not running: $ref built, not imported"; return; fi
  if [ "$("${CTR[@]}" images ls -q "name==$ref" | wc -l)" = 0 ] || [ "$(cat "$tar.imported" 2>/dev/null)" != "$key" ]; then
    "${CTR[@]}" images import "$tar" >/dev/null
    echo "$key" > "$tar.imported"
    log "imported $ref"
  fi
}
binkey() { sha256sum "$TOOLS_BIN/$1" 2>/dev/null | cut -c1-16; }

# scratch REF BINARY USER ARGS...: an image holding one static binary (and CA certificates for TLS clients).
scratch() {
  local ref=$1 bin=$2 user=$3; shift 3
  local c; c=$(buildah from scratch)
  buildah copy -q "$c" "$TOOLS_BIN/$bin" "/$bin" >/dev/null
  buildah copy -q "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
  buildah config --entrypoint "[\"/$bin\"]" --user "$user" "$@" "$c"
  buildah commit -q --rm "$c" "$ref" >/dev/null
}
pause_image() { scratch "$1" pause 65535:65535; }
coredns_image() { scratch "$1" coredns 65532:65532; }
traefik_image() { scratch "$1" traefik 65532:65532; }
local_path_image() { scratch "$1" local-path-provisioner 65532:65532; }
# kubectl alone: the certificates Job of charts/kafka's standalone mode writes its Secrets with it.
kubectl_image() { scratch "$1" kubectl 65532:65532; }
# Debian's static busybox with its applets as symlinks: the shell of local-path-provisioner's helper pod.
busybox_image() {
  local c d; c=$(buildah from scratch); d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/tmp" && cp /bin/busybox "$d/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$d/bin/$a"; done
  buildah copy -q "$c" "$d" / >/dev/null && rm -rf "$d"
  buildah config --env PATH=/bin --cmd '["sh"]' "$c"
  buildah commit -q --rm "$c" "$1" >/dev/null
}

# A Debian root filesystem (debootstrap) with Python: the base the project's Dockerfile builds on.
base_image() {
  local rootfs="$LC_CACHE/rootfs-$SUITE"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    rm -rf "$rootfs"
    nice -n 19 debootstrap --variant=minbase \
      --include=python3,python3-venv,python3-pip,ca-certificates,tzdata "$SUITE" "$rootfs" "$DEBIAN_MIRROR" \
      > "$LC_LOG/debootstrap.log" 2>&1 || die "debootstrap failed: $LC_LOG/debootstrap.log"
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    # Like the official python image: `python` and `pip` on PATH, and pip usable in the image.
    ln -sf python3 "$rootfs/usr/bin/python"
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  fi
  local c; c=$(buildah from scratch)
  local mnt; mnt=$(buildah mount "$c")
  cp -a "$rootfs/." "$mnt/"
  # The machine's own extra CAs (e.g. a TLS-inspecting egress proxy), so pip and uv in the Dockerfile's
  # RUN steps reach PyPI through it; uv reads SSL_CERT_FILE instead of its bundled roots.
  if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
    cp "$EXTRA_CA_DIR"/*.crt "$mnt/usr/local/share/ca-certificates/"
    chroot "$mnt" update-ca-certificates >/dev/null 2>&1
  fi
  buildah umount "$c" >/dev/null
  buildah config --env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --cmd '["python3"]' "$c"
  buildah commit -q --rm "$c" "$1" >/dev/null
}

# The project's own Dockerfile, unchanged, on the local base: the target named as the image (the three
# builds share the builder's layers).
dockerfile_image() {
  local name=${1#localhost/ingestion-patterns/}; name=${name%%:*}
  nice -n 19 buildah bud -q --isolation chroot --layers --build-arg "BASE_IMAGE=$BASE_TAG" \
    --target "$name" -f "$REPO/docker/Dockerfile" -t "$1" "$REPO" > "$LC_LOG/build-$name.log" 2>&1 \
    || die "buildah bud $name failed: $LC_LOG/build-$name.log"
}

# PostgreSQL from Debian's package on the local base, with an entrypoint of ours that honours the same
# environment as the official image (POSTGRES_USER/PASSWORD/DB, PGDATA, /docker-entrypoint-initdb.d).
postgres_image() {
  local c; c=$(buildah from "$BASE_TAG")
  buildah run --isolation chroot "$c" -- sh -c 'groupadd -r -g 999 postgres && useradd -r -u 999 -g postgres -d /var/lib/postgresql postgres \
    && apt-get update -q && apt-get install -y -q --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15/main /etc/postgresql \
    && mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql && chown postgres: /var/run/postgresql' \
    > "$LC_LOG/build-postgres.log" 2>&1 || die "postgres image: $LC_LOG/build-postgres.log"
  buildah copy -q --chmod 0755 "$c" "$LC_DIR/images/postgres-entrypoint.sh" /usr/local/bin/docker-entrypoint.sh >/dev/null
  buildah config --env PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PGDATA=/var/lib/postgresql/data --user 999:999 --port 5432 \
    --entrypoint '["docker-entrypoint.sh"]' --cmd '["postgres"]' "$c"
  buildah commit -q --rm "$c" "$1" >/dev/null
}

# Apache Kafka's jars (Maven Central, the same set the local broker runs) on Debian's Java 17, with the
# apache/kafka image's script interface (/opt/kafka/bin/kafka-{storage,server-start,topics}.sh) that
# charts/kafka's standalone mode calls.
KAFKA_SRC="$LC_DIR/images/kafka"
KAFKA_LIBS=""  # the jar folder (ensure_jars: found in, or fetched into, the broker's cache); set once below
# java_container NAME SETUP: a working container (its id printed) from the local base with Debian's Java 17
# installed, then the shell commands SETUP run in it; NAME names the log.
java_container() {
  local c; c=$(buildah from "$BASE_TAG")
  buildah run --isolation chroot "$c" -- sh -c "apt-get update -q \
    && apt-get install -y -q --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* && $2" > "$LC_LOG/build-$1.log" 2>&1 || die "$1 image: $LC_LOG/build-$1.log"
  echo "$c"
}
kafka_image() {
  local c; c=$(java_container kafka 'groupadd -r -g 1000 kafka && useradd -r -u 1000 -g kafka -d /opt/kafka kafka')
  buildah copy -q "$c" "$KAFKA_LIBS" /opt/kafka/libs >/dev/null
  buildah copy -q --chmod 0755 "$c" "$KAFKA_SRC/bin" /opt/kafka/bin >/dev/null
  buildah copy -q "$c" "$KAFKA_SRC/config" /opt/kafka/config >/dev/null
  buildah config --env PATH=/opt/kafka/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env KAFKA_LIBS=/opt/kafka/libs \
    --user 1000:1000 --port 9092 --workingdir /opt/kafka --cmd '["kafka-topics.sh", "--version"]' "$c"
  buildah commit -q --rm "$c" "$1" >/dev/null
}
kafka_key() {
  { ls "$KAFKA_LIBS"; cat "$KAFKA_SRC"/bin/* "$KAFKA_SRC"/config/*; } 2>/dev/null | sha256sum | cut -c1-16
}

# Apicurio Registry (charts/kafka's registry, global.schemaRegistry.enabled): Maven Central's runnable
# distribution (io.apicurio:apicurio-registry-app:<version>:tar.gz:all, fetched and unpacked by the dev tooling's
# ensure_app, as `ingest registry up` runs it) on the same Java, run by an entrypoint of ours that honours the
# official image's environment (JAVA_OPTS, QUARKUS_*, APICURIO_*). User 10001, as the chart runs it; it writes
# only under /tmp (the chart's emptyDir), with its default storage H2 in memory.
APICURIO_SRC="$LC_DIR/images/apicurio"
APICURIO_APP=""  # the unpacked distribution's folder (ensure_app); set once below
apicurio_image() {
  local runner c
  runner=$(compgen -G "$APICURIO_APP/*-runner.jar" | head -1) || die "no *-runner.jar in $APICURIO_APP"
  c=$(java_container apicurio 'true')
  buildah copy -q "$c" "$APICURIO_APP" /opt/apicurio >/dev/null
  buildah copy -q --chmod 0755 "$c" "$APICURIO_SRC/entrypoint.sh" /usr/local/bin/apicurio-registry >/dev/null
  buildah config --cmd '[]' "$c"  # the base's python3 would otherwise become the entrypoint's argument
  buildah config --env "APICURIO_JAR=/opt/apicurio/${runner##*/}" --user 10001:10001 --port 8080 --workingdir /tmp \
    --entrypoint '["apicurio-registry"]' "$c"
  buildah commit -q --rm "$c" "$1" >/dev/null
}
apicurio_key() {
  { echo "$APICURIO_IMAGE"; ls -R "$APICURIO_APP"; cat "$APICURIO_SRC"/*; } 2>/dev/null | sha256sum | cut -c1-16
}

case "${1:-system}" in
  system)
    import pause "$(binkey pause)" registry.k8s.io/pause:3.10 pause_image
    import coredns "$(binkey coredns)" localhost/local-cluster/coredns:v1.14.7 coredns_image
    import traefik "$(binkey traefik)" localhost/local-cluster/traefik:v3.6.12 traefik_image
    import local-path-provisioner "$(binkey local-path-provisioner)" \
      localhost/local-cluster/local-path-provisioner:v0.0.30 local_path_image
    [ -x /bin/busybox ] || die "busybox missing: apt-get install busybox-static"
    import busybox "$(sha256sum /bin/busybox | cut -c1-16)" localhost/local-cluster/busybox:local busybox_image
    ;;
  base)
    import python-base "$BASE_KEY" "$BASE_TAG" base_image ;;
  platform)
    import python-base "$BASE_KEY" "$BASE_TAG" base_image
    src="$(cd "$REPO" && cat pyproject.toml uv.lock devtools/pyproject.toml docker/Dockerfile .dockerignore 2>/dev/null \
      | sha256sum | cut -c1-8)"
    src+="-$(cd "$REPO" && git ls-files -s app devtools | sha256sum | cut -c1-8)"
    src+="-$(cd "$REPO" && git diff HEAD -- app devtools | sha256sum | cut -c1-8)"
    for name in user-code webhook-receiver mock-api; do
      import "$name" "$src" "localhost/ingestion-patterns/$name:$IMAGE_TAG" dockerfile_image
    done
    import postgres "$(sha256sum "$LC_DIR/images/postgres-entrypoint.sh" | cut -c1-16)" \
      "$POSTGRES_IMAGE" postgres_image
    if [ "${KAFKA:-standalone}" = standalone ]; then
      KAFKA_LIBS="$(cd "$REPO" && uv run --frozen python -c \
        'from ingestion_devtools.kafka_broker import ensure_jars; print(ensure_jars())')"
      import kafka "$(kafka_key)" "$KAFKA_IMAGE" kafka_image
      import kubectl "$(binkey kubectl)" "$KUBECTL_IMAGE" kubectl_image
      APICURIO_APP="$(cd "$REPO" && INGEST_APICURIO_VERSION="$APICURIO_VERSION" uv run --frozen python -c \
        'from ingestion_devtools.schema_registry import ensure_app; print(ensure_app().parent)')"
      import apicurio-registry "$(apicurio_key)" "$APICURIO_IMAGE" apicurio_image
    fi
    ;;
  *) die "usage: images.sh system|base|platform" ;;
esac
