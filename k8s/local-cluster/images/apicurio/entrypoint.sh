#!/bin/sh
# Apicurio Registry's Quarkus application (Maven Central's apicurio-registry-app "all" tar.gz, unpacked in
# /opt/apicurio; APICURIO_JAR is its runner jar) on Debian's Java 17. Configured as the
# apicurio/apicurio-registry image is: by environment (QUARKUS_HTTP_PORT, APICURIO_STORAGE_KIND,
# APICURIO_DATASOURCE_URL, ...; default storage H2 in memory), with JAVA_OPTS (default below) and
# JAVA_OPTS_APPEND. Writes under /tmp (the JVM's and Vert.x's files) and, with file storage, where
# APICURIO_DATASOURCE_URL points (the chart's persistence: /var/lib/apicurio on a volume), so it runs as
# any non-root user on a read-only root filesystem with those two writable.
set -e
: "${JAVA_OPTS:=-XX:MaxRAMPercentage=50 -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true}"
cd /tmp
# The options are word lists on purpose: they are left unquoted.
# shellcheck disable=SC2086
exec java $JAVA_OPTS $JAVA_OPTS_APPEND -Djava.io.tmpdir=/tmp -jar "$APICURIO_JAR" "$@"
