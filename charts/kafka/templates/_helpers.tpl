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
