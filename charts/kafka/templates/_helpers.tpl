{{/* Chart name, overridable. */}}
{{- define "kafka.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart> (predictable, so the umbrella chart can point at it), or fullnameOverride.
*/}}
{{- define "kafka.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kafka.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kafka.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kafka.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafka.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kafka.labels" -}}
helm.sh/chart: {{ include "kafka.chart" . }}
{{ include "kafka.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: event-stream
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}

{{/* The Strimzi cluster name: clusterName, or the full name. Services are <cluster>-kafka-bootstrap etc. */}}
{{- define "kafka.clusterName" -}}
{{- default (include "kafka.fullname" .) .Values.clusterName | trunc 40 | trimSuffix "-" }}
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
helm.sh/chart: {{ include "kafka.chart" . }}
app.kubernetes.io/name: {{ include "kafka.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}

{{/* The Kafka UI's own labels (another component than the Strimzi resources). */}}
{{- define "kafka.uiSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kafka.name" . }}-ui
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kafka.uiLabels" -}}
helm.sh/chart: {{ include "kafka.chart" . }}
{{ include "kafka.uiSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.kafkaUi.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: kafka-ui
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}
