#!/bin/sh
# kafka-run-class.sh CLASS ARGS...: run a Kafka main class on the jars in $KAFKA_LIBS (default /opt/kafka/libs),
# as the apache/kafka image's script of the same name does: $KAFKA_HEAP_OPTS, $KAFKA_OPTS and the log4j2
# settings ($KAFKA_LOG4J_OPTS, else config/log4j2.xml next to bin/, logging to the console).
set -e
class="$1"
shift
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
: "${KAFKA_LIBS:=/opt/kafka/libs}"
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=$here/../config/log4j2.xml}"
java=java
[ -n "$JAVA_HOME" ] && java="$JAVA_HOME/bin/java"
# The options are word lists on purpose (like Kafka's own scripts): they are left unquoted.
# shellcheck disable=SC2086
exec "$java" $KAFKA_HEAP_OPTS $KAFKA_OPTS $KAFKA_LOG4J_OPTS -cp "$KAFKA_LIBS/*" "$class" "$@"
