#!/bin/sh
# kafka-storage.sh: format a KRaft log directory (format, random-uuid, info); the apache/kafka image's interface on Maven Central's jars.
exec "$(dirname -- "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
