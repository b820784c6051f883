#!/bin/sh
# kafka-topics.sh: create, list, describe and alter topics; the apache/kafka image's interface on Maven Central's jars.
exec "$(dirname -- "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
