#!/bin/sh
# kafka-server-start.sh: run the broker (and KRaft controller) with a server.properties; the apache/kafka image's interface on Maven Central's jars.
exec "$(dirname -- "$0")/kafka-run-class.sh" kafka.Kafka "$@"
