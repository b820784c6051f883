#!/bin/sh
# kafka-acls.sh: list, add and remove ACLs; the apache/kafka image's interface on Maven Central's jars.
exec "$(dirname -- "$0")/kafka-run-class.sh" org.apache.kafka.tools.AclCommand "$@"
