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

{{/* The in-cluster bootstrap address of the plain listener (the tls listener's when the plain one is off). */}}
{{- define "kafka.bootstrapServers" -}}
{{- if include "kafka.plainEnabled" . }}
{{- printf "%s-kafka-bootstrap:%d" (include "kafka.clusterName" .) (int .Values.listeners.internal.port) }}
{{- else }}
{{- include "kafka.tlsBootstrapServers" . }}
{{- end }}
{{- end }}

{{/* The in-cluster bootstrap address of the tls (SCRAM-SHA-512) listener: the application's. */}}
{{- define "kafka.tlsBootstrapServers" -}}
{{- printf "%s-kafka-bootstrap:%d" (include "kafka.clusterName" .) (int .Values.listeners.tls.port) }}
{{- end }}

{{/* "true" when the plaintext listener is on (listeners.internal.enabled, default on). */}}
{{- define "kafka.plainEnabled" -}}
{{- if ne (toString .Values.listeners.internal.enabled) "false" }}true{{ end }}
{{- end }}

{{/* "true" when the tls + SCRAM-SHA-512 listener is on. */}}
{{- define "kafka.tlsEnabled" -}}
{{- with .Values.listeners.tls }}{{ if .enabled }}true{{ end }}{{ end }}
{{- end }}

{{/* "true" when ACLs are enforced (Strimzi `authorization: simple`; standalone: StandardAuthorizer). */}}
{{- define "kafka.authorizationEnabled" -}}
{{- with .Values.authorization }}{{ if .enabled }}true{{ end }}{{ end }}
{{- end }}

{{/* "true" when the application's user is made (it authenticates on the tls listener). */}}
{{- define "kafka.userEnabled" -}}
{{- if and (include "kafka.tlsEnabled" .) .Values.user.enabled }}true{{ end }}
{{- end }}

{{/* The application's Kafka user (SCRAM-SHA-512), also the name of its password Secret: user.name or <cluster>-app. */}}
{{- define "kafka.userName" -}}
{{- default (printf "%s-app" (include "kafka.clusterName" .)) .Values.user.name }}
{{- end }}

{{/*
The topics the chart makes (a JSON list of {name, partitions, replicas, config, deadLetter}): topic, then with
declaredTopics.enabled each topic global.sources.kafka_topics declares (its topic and dead_letter_topic), once
each. A declaration without a topic reads topic.name (KAFKA_TOPIC). A declared one takes topic's partitions,
replicas and config, or its declaredTopics.overrides entry's (config merged over topic's).
*/}}
{{- define "kafka.topics" -}}
{{- $topics := list (dict "name" .Values.topic.name "partitions" .Values.topic.partitions "replicas" .Values.topic.replicas "config" (.Values.topic.config | default dict) "deadLetter" false) }}
{{- $seen := dict .Values.topic.name true }}
{{- $declared := .Values.declaredTopics | default dict }}
{{- if $declared.enabled }}
{{- $sources := (.Values.global | default dict).sources | default dict }}
{{- range $sources.kafka_topics | default list }}
{{- range $name, $deadLetter := dict (.topic | default "") false (.dead_letter_topic | default "") true }}
{{- if and $name (not (hasKey $seen $name)) }}
{{- $_ := set $seen $name true }}
{{- $override := get ($declared.overrides | default dict) $name | default dict }}
{{- $config := merge (deepCopy ($override.config | default dict)) ($.Values.topic.config | default dict) }}
{{- $topics = append $topics (dict "name" $name "partitions" ($override.partitions | default $.Values.topic.partitions) "replicas" ($override.replicas | default $.Values.topic.replicas) "config" $config "deadLetter" $deadLetter) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $topics }}
{{- end }}

{{/* A topic's KafkaTopic name (a DNS name): lower case, '_' and '.' as '-'. */}}
{{- define "kafka.topicResourceName" -}}
{{- . | replace "_" "-" | replace "." "-" | lower }}
{{- end }}

{{/*
The application user's topic ACLs (a JSON list of {topic, operations}): user.topicOperations on topic.name, the
declared topics and user.topics; on a declared dead-letter topic also Write (the landing produces rejects there).
*/}}
{{- define "kafka.userTopicAcls" -}}
{{- $acls := list }}
{{- $seen := dict }}
{{- range include "kafka.topics" . | fromJsonArray }}
{{- $operations := $.Values.user.topicOperations }}
{{- if and .deadLetter (not (has "Write" $operations)) }}{{ $operations = append $operations "Write" }}{{ end }}
{{- $acls = append $acls (dict "topic" .name "operations" $operations) }}
{{- $_ := set $seen .name true }}
{{- end }}
{{- range .Values.user.topics | default list }}
{{- if not (hasKey $seen .) }}
{{- $acls = append $acls (dict "topic" . "operations" $.Values.user.topicOperations) }}
{{- $_ := set $seen . true }}
{{- end }}
{{- end }}
{{- toJson $acls }}
{{- end }}

{{/* Strimzi's Secret names: the cluster CA's certificate (ca.crt) and key, and the brokers' certificates. */}}
{{- define "kafka.clusterCaCertSecret" -}}
{{- printf "%s-cluster-ca-cert" (include "kafka.clusterName" .) }}
{{- end }}
{{- define "kafka.clusterCaSecret" -}}
{{- printf "%s-cluster-ca" (include "kafka.clusterName" .) }}
{{- end }}
{{- define "kafka.brokersSecret" -}}
{{- printf "%s-kafka-brokers" (include "kafka.clusterName" .) }}
{{- end }}

{{/* standalone: the broker's certificate subject; its principal is the broker's own super user. */}}
{{- define "kafka.brokerSubject" -}}
{{- printf "CN=%s-kafka" (include "kafka.clusterName" .) }}
{{- end }}

{{/* standalone: the replication listener (mutual TLS, the broker's own certificate), for the admin Job. */}}
{{- define "kafka.replicationBootstrap" -}}
{{- printf "%s-kafka-brokers.%s.svc:9091" (include "kafka.clusterName" .) .Release.Namespace }}
{{- end }}

{{/* The port name probes use: the plain listener's, else the tls listener's. */}}
{{- define "kafka.probePort" -}}
{{- if include "kafka.plainEnabled" . }}{{ .Values.listeners.internal.name }}{{ else }}{{ .Values.listeners.tls.name }}{{ end }}
{{- end }}

{{/*
A client properties file for the application's user on the tls listener (SASL_SSL, SCRAM-SHA-512, the cluster
CA from /etc/kafka/ca/ca.crt), written by a shell line to $1; the password is read from the mounted Secret.
*/}}
{{- define "kafka.writeUserClientProperties" -}}
printf 'security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nssl.truststore.type=PEM\nssl.truststore.location=/etc/kafka/ca/ca.crt\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";\n' {{ include "kafka.userName" . | squote }} "$(cat /etc/kafka/user/password)" > "$1"
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
With listeners.tls: TLS (SASL_SSL, SCRAM-SHA-512) for clients; the broker's own traffic (controller on 9090,
replication on 9091) is mutual TLS with its certificate, whose principal is a super user; the keystore
password is appended by the start script from the brokers' Secret (never in this ConfigMap).
*/}}
{{- define "kafka.serverProperties" -}}
{{- $cluster := include "kafka.clusterName" . }}
{{- $internal := .Values.listeners.internal }}
{{- $tls := .Values.listeners.tls }}
{{- $bootstrapHost := printf "%s-kafka-bootstrap.%s.svc" $cluster .Release.Namespace }}
{{- $listeners := list }}
{{- $advertised := list }}
{{- $protocols := list }}
{{- $interBroker := "" }}
{{- if include "kafka.plainEnabled" . }}
{{- $plain := upper $internal.name }}
{{- $listeners = append $listeners (printf "%s://:%d" $plain (int $internal.port)) }}
{{- $advertised = append $advertised (printf "%s://%s:%d" $plain $bootstrapHost (int $internal.port)) }}
{{- $protocols = append $protocols (printf "%s:PLAINTEXT" $plain) }}
{{- $interBroker = $plain }}
{{- end }}
{{- $secured := dict }}
{{- if include "kafka.tlsEnabled" . }}
{{- $name := upper $tls.name }}
{{- $lower := lower $tls.name }}
{{- $listeners = append $listeners (printf "%s://:%d" $name (int $tls.port)) }}
{{- $advertised = append $advertised (printf "%s://%s:%d" $name $bootstrapHost (int $tls.port)) }}
{{- $protocols = append $protocols (printf "%s:SASL_SSL" $name) }}
{{- $listeners = append $listeners "REPLICATION://:9091" }}
{{- $advertised = append $advertised (printf "REPLICATION://%s-kafka-0.%s-kafka-brokers.%s.svc:9091" $cluster $cluster .Release.Namespace) }}
{{- $protocols = append $protocols "REPLICATION:SSL" }}
{{- $interBroker = "REPLICATION" }}
{{- $secured = dict
  (printf "listener.name.%s.sasl.enabled.mechanisms" $lower) "SCRAM-SHA-512"
  (printf "listener.name.%s.scram-sha-512.sasl.jaas.config" $lower) "org.apache.kafka.common.security.scram.ScramLoginModule required;"
  "listener.name.replication.ssl.client.auth" "required"
  "listener.name.controller.ssl.client.auth" "required"
  "ssl.keystore.type" "PKCS12"
  "ssl.keystore.location" "/etc/kafka/certs/broker.p12"
  "ssl.truststore.type" "PEM"
  "ssl.truststore.location" "/etc/kafka/ca/ca.crt"
  "ssl.endpoint.identification.algorithm" "https" }}
{{- end }}
{{- $listeners = append $listeners "CONTROLLER://:9090" }}
{{- $protocols = append $protocols (printf "CONTROLLER:%s" (ternary "SSL" "PLAINTEXT" (not (empty $secured)))) }}
{{- with .Values.listeners.nodePort }}
{{- if .enabled }}
{{- $external := upper .name }}
{{- $broker := include "kafka.standaloneExternalBroker" $ | fromJson }}
{{- $listeners = append $listeners (printf "%s://:%d" $external (int .port)) }}
{{- $advertised = append $advertised (printf "%s://%s:%d" $external $broker.advertisedHost (int $broker.advertisedPort)) }}
{{- $protocols = append $protocols (printf "%s:PLAINTEXT" $external) }}
{{- end }}
{{- end }}
{{- if include "kafka.authorizationEnabled" . }}
{{- if empty $secured }}
{{- fail "mode=standalone with authorization.enabled needs listeners.tls.enabled: the broker's own traffic authenticates with its certificate there" }}
{{- end }}
{{- $superUsers := prepend (default list .Values.authorization.superUsers) (printf "User:%s" (include "kafka.brokerSubject" .)) }}
{{- $_ := set $secured "authorizer.class.name" "org.apache.kafka.metadata.authorizer.StandardAuthorizer" }}
{{- $_ := set $secured "super.users" (join ";" $superUsers) }}
{{- $_ := set $secured "allow.everyone.if.no.acl.found" "false" }}
{{- end }}
{{- $kraft := merge (dict
  "process.roles" "broker,controller"
  "node.id" "0"
  "controller.quorum.voters" "0@localhost:9090"
  "controller.listener.names" "CONTROLLER"
  "inter.broker.listener.name" $interBroker
  "listeners" (join "," $listeners)
  "advertised.listeners" (join "," $advertised)
  "listener.security.protocol.map" (join "," $protocols)
  "log.dirs" "/var/lib/kafka/data/kafka-log0") $secured }}
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

{{/* The certificates Job's labels (not matching the broker's selector; it receives no traffic). */}}
{{- define "kafka.certificatesJobLabels" -}}
{{ include "kafka.commonLabels" . }}
{{ include "ingestion-common.selectorLabels" . }}
app.kubernetes.io/component: kafka-certificates
{{ include "kafka.noIngressLabel" . }}
{{- end }}

{{/* "true" when Apicurio Registry is rendered (global.schemaRegistry.enabled: the user code reads the same switch). */}}
{{- define "kafka.registryEnabled" -}}
{{- if (((.Values.global | default dict).schemaRegistry) | default dict).enabled }}true{{ end }}
{{- end }}

{{/* The registry's Service name and its Confluent-compatible API, the URL Avro clients (SCHEMA_REGISTRY_URL) use. */}}
{{- define "kafka.registryName" -}}
{{- printf "%s-registry" (include "ingestion-common.fullname" .) }}
{{- end }}

{{- define "kafka.registryUrl" -}}
{{- printf "http://%s:8080/apis/ccompat/v7" (include "kafka.registryName" .) }}
{{- end }}

{{/*
The registry's storage: "env" when registry.env names APICURIO_DATASOURCE_URL or APICURIO_STORAGE_KIND (the
user's storage wins), else "file" (H2 on the registry.persistence PVC) when persistence is on, else "memory".
*/}}
{{- define "kafka.registryStorage" -}}
{{- $storage := ternary "file" "memory" (((.Values.registry.persistence | default dict).enabled) | default false) }}
{{- range .Values.registry.env }}
{{- if has .name (list "APICURIO_DATASOURCE_URL" "APICURIO_STORAGE_KIND") }}
{{- $storage = "env" }}
{{- end }}
{{- end }}
{{- $storage }}
{{- end }}

{{- define "kafka.registrySelectorLabels" -}}
app.kubernetes.io/name: {{ include "ingestion-common.name" . }}-registry
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kafka.registryLabels" -}}
{{ include "kafka.commonLabels" . }}
{{ include "kafka.registrySelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.registry.image.tag | quote }}
app.kubernetes.io/component: schema-registry
{{- end }}
