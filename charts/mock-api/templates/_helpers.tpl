{{/* Chart name, overridable. */}}
{{- define "mock-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart> (predictable, so the umbrella chart can point at it), or fullnameOverride.
*/}}
{{- define "mock-api.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "mock-api.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "mock-api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mock-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mock-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mock-api.labels" -}}
helm.sh/chart: {{ include "mock-api.chart" . }}
{{ include "mock-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: source-api
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}

{{- define "mock-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mock-api.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mock-api.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Secret holding the bearer token (key SOURCE_API_TOKEN): existingSecret (templated) or the generated one. */}}
{{- define "mock-api.tokenSecretName" -}}
{{- if .Values.token.existingSecret }}
{{- tpl .Values.token.existingSecret . }}
{{- else }}
{{- printf "%s-token" (include "mock-api.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Labels of the helm test pod: deliberately NOT matching the Deployment's selector, or its ReplicaSet would
adopt (and could delete) the bare test pod.
*/}}
{{- define "mock-api.testLabels" -}}
helm.sh/chart: {{ include "mock-api.chart" . }}
app.kubernetes.io/name: {{ include "mock-api.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}
