{{/* Chart name, overridable. */}}
{{- define "webhook-receiver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart> (predictable, so the umbrella chart can point at it), or fullnameOverride.
*/}}
{{- define "webhook-receiver.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "webhook-receiver.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "webhook-receiver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "webhook-receiver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webhook-receiver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "webhook-receiver.labels" -}}
helm.sh/chart: {{ include "webhook-receiver.chart" . }}
{{ include "webhook-receiver.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: webhook-receiver
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}

{{- define "webhook-receiver.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webhook-receiver.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "webhook-receiver.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Secret holding WEBHOOK_SECRET_<SOURCE> keys: existingSecret (templated) or the generated one. */}}
{{- define "webhook-receiver.signingSecretName" -}}
{{- if .Values.signing.existingSecret }}
{{- tpl .Values.signing.existingSecret . }}
{{- else }}
{{- printf "%s-signing" (include "webhook-receiver.fullname" .) }}
{{- end }}
{{- end }}

{{/* Secret holding WEBHOOK_INBOX_URL: existingSecret (templated, e.g. by the umbrella chart) or the generated one. */}}
{{- define "webhook-receiver.inboxSecretName" -}}
{{- if .Values.inbox.existingSecret }}
{{- tpl .Values.inbox.existingSecret . }}
{{- else }}
{{- printf "%s-inbox" (include "webhook-receiver.fullname" .) }}
{{- end }}
{{- end }}

{{/* Env var name for a source's signing secret: WEBHOOK_SECRET_<SOURCE>, upper case, '-' -> '_'. */}}
{{- define "webhook-receiver.secretEnvName" -}}
{{- printf "WEBHOOK_SECRET_%s" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
Labels of the helm test pod: deliberately NOT matching the Deployment's selector, or its ReplicaSet would
adopt (and could delete) the bare test pod.
*/}}
{{- define "webhook-receiver.testLabels" -}}
helm.sh/chart: {{ include "webhook-receiver.chart" . }}
app.kubernetes.io/name: {{ include "webhook-receiver.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}
