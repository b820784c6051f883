#!/bin/sh
# kafka-configs.sh: describe and alter configs and SCRAM credentials; the apache/kafka image's interface on Maven Central's jars.
exec "$(dirname -- "$0")/kafka-run-class.sh" org.apache.kafka.tools.ConfigCommand "$@"
