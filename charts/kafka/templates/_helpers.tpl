{{/* Helpers of this chart; the shared ones (names, chart and selector labels) are in the ingestion-common library chart. */}}

{{/* The labels every object of the chart carries, beside its own selector, component and version. */}}
{{- define "kafka.commonLabels" -}}
helm.sh/chart: {{ include "ingestion-common.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}

{{- define "kafka.labels" -}}
{{ include "kafka.commonLabels" . }}
{{ include "ingestion-common.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: event-stream
{{- end }}

{{/* The Strimzi cluster name: clusterName, or the full name. Services are <cluster>-kafka-bootstrap etc. */}}
{{- define "kafka.clusterName" -}}
{{- default (include "ingestion-common.fullname" .) .Values.clusterName | trunc 40 | trimSuffix "-" }}
{{- end }}

{{/* The in-cluster bootstrap address (plain listener). */}}
{{- define "kafka.bootstrapServers" -}}
{{- printf "%s-kafka-bootstrap:%d" (include "kafka.clusterName" .) (int .Values.listeners.internal.port) }}
{{- end }}

{{/*
Labels of the helm test pod: deliberately NOT matching the Deployment's selector, or its ReplicaSet would
adopt (and could delete) the bare test pod.
*/}}
{{- define "kafka.testLabels" -}}
{{ include "kafka.commonLabels" . }}
app.kubernetes.io/name: {{ include "ingestion-common.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
{{ include "kafka.noIngressLabel" . }}
{{- end }}

{{/* The Kafka UI's own labels (another component than the Strimzi resources). */}}
{{- define "kafka.uiSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ingestion-common.name" . }}-ui
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kafka.uiLabels" -}}
{{ include "kafka.commonLabels" . }}
{{ include "kafka.uiSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.kafkaUi.image.tag | quote }}
app.kubernetes.io/component: kafka-ui
{{- end }}

{{/* mode: standalone - one KRaft node as a StatefulSet, no Strimzi operator. */}}
{{- define "kafka.standalone" -}}
{{- if eq .Values.mode "standalone" }}true{{ end }}
{{- end }}

{{/* The standalone image (its tag defaults to the Kafka version). */}}
{{- define "kafka.standaloneImage" -}}
{{- printf "%s:%s" .Values.standalone.image.repository (default .Values.kafka.version .Values.standalone.image.tag) }}
{{- end }}

{{/* The standalone broker's labels: its own component, so no other pod of the chart matches its selector. */}}
{{- define "kafka.brokerSelectorLabels" -}}
{{ include "ingestion-common.selectorLabels" . }}
app.kubernetes.io/component: kafka
{{- end }}

{{- define "kafka.brokerLabels" -}}
{{ include "kafka.commonLabels" . }}
{{ include "kafka.brokerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.kafka.version | quote }}
{{- end }}

{{/*
A Kafka config value as Kafka reads it: YAML numbers arrive as float64 and would print as 6.048e+08, so
numbers go through JSON (604800000, 0.5); everything else as its string.
*/}}
{{- define "kafka.configValue" -}}
{{- if kindIs "float64" . }}{{ toJson . }}{{ else }}{{ . }}{{ end }}
{{- end }}

{{/*
The standalone node's external (nodeport) listener entry: listeners.nodePort.brokers' entry for node 0, the
only node; its advertised address defaults to localhost:<nodePort>.
*/}}
{{- define "kafka.standaloneExternalBroker" -}}
{{- $found := dict }}
{{- range .Values.listeners.nodePort.brokers }}
{{- if eq (int .broker) 0 }}{{ $found = . }}{{ end }}
{{- end }}
{{- if not $found }}
{{- fail "mode=standalone with listeners.nodePort.enabled needs a listeners.nodePort.brokers entry for broker 0 (the single node)" }}
{{- end }}
{{- toJson (dict "nodePort" $found.nodePort "advertisedHost" (default "localhost" $found.advertisedHost) "advertisedPort" (default $found.nodePort $found.advertisedPort)) }}
{{- end }}

{{/*
The standalone node's server.properties: the KRaft single-node settings (the chart's; they win), then
kafka.config, then single-node defaults kafka.config may override. Paths and ports are fixed in the image
layout the StatefulSet mounts: data on /var/lib/kafka/data, the controller on 9090 (as Strimzi).
*/}}
{{- define "kafka.serverProperties" -}}
{{- $internal := .Values.listeners.internal }}
{{- $plain := upper $internal.name }}
{{- $listeners := list (printf "%s://:%d" $plain (int $internal.port)) "CONTROLLER://:9090" }}
{{- $advertised := list (printf "%s://%s-kafka-bootstrap.%s.svc:%d" $plain (include "kafka.clusterName" .) .Release.Namespace (int $internal.port)) }}
{{- $protocols := list (printf "%s:PLAINTEXT" $plain) "CONTROLLER:PLAINTEXT" }}
{{- with .Values.listeners.nodePort }}
{{- if .enabled }}
{{- $external := upper .name }}
{{- $broker := include "kafka.standaloneExternalBroker" $ | fromJson }}
{{- $listeners = append $listeners (printf "%s://:%d" $external (int .port)) }}
{{- $advertised = append $advertised (printf "%s://%s:%d" $external $broker.advertisedHost (int $broker.advertisedPort)) }}
{{- $protocols = append $protocols (printf "%s:PLAINTEXT" $external) }}
{{- end }}
{{- end }}
{{- $kraft := dict
  "process.roles" "broker,controller"
  "node.id" "0"
  "controller.quorum.voters" "0@localhost:9090"
  "controller.listener.names" "CONTROLLER"
  "inter.broker.listener.name" $plain
  "listeners" (join "," $listeners)
  "advertised.listeners" (join "," $advertised)
  "listener.security.protocol.map" (join "," $protocols)
  "log.dirs" "/var/lib/kafka/data/kafka-log0" }}
{{- $singleNode := dict
  "offsets.topic.replication.factor" 1
  "transaction.state.log.replication.factor" 1
  "transaction.state.log.min.isr" 1
  "share.coordinator.state.topic.replication.factor" 1
  "share.coordinator.state.topic.min.isr" 1
  "default.replication.factor" 1
  "min.insync.replicas" 1 }}
{{- $settings := merge $kraft (deepCopy (default dict .Values.kafka.config)) $singleNode }}
{{- range $key := keys $settings | sortAlpha }}
{{ $key }}={{ include "kafka.configValue" (get $settings $key) }}
{{- end }}
{{- end }}

{{/* KAFKA_HEAP_OPTS of the standalone node: nodePool.jvmOptions' -Xms and -Xmx (Strimzi's keys). */}}
{{- define "kafka.heapOpts" -}}
{{- $jvm := .Values.nodePool.jvmOptions | default dict }}
{{- $opts := list }}
{{- range $key := list "-Xms" "-Xmx" }}
{{- with get $jvm $key }}{{ $opts = append $opts (printf "%s%s" $key (toString .)) }}{{ end }}
{{- end }}
{{- join " " $opts }}
{{- end }}

{{/* The standalone topic Job's labels (not matching the broker's selector). */}}
{{- define "kafka.topicJobLabels" -}}
{{ include "kafka.commonLabels" . }}
{{ include "ingestion-common.selectorLabels" . }}
app.kubernetes.io/component: kafka-topic
{{ include "kafka.noIngressLabel" . }}
{{- end }}

{{/* Pods that only call out (the helm test pod, the topic Job): network-policy/no-ingress.yaml admits nothing to them. */}}
{{- define "kafka.noIngressLabel" -}}
ingestion-patterns/ingress: none
{{- end }}
