{{/*
Labels (the app.kubernetes.io set, plus part-of: ingestion-patterns). Helpers take the including chart's
context (.), or a dict with it as "root".
*/}}

{{/* The labels a chart's selectors match: its name and the release. */}}
{{- define "ingestion-common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ingestion-common.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels of a chart's objects: pass (dict "root" $ "component" "<app.kubernetes.io/component>"). */}}
{{- define "ingestion-common.labels" -}}
helm.sh/chart: {{ include "ingestion-common.chart" .root }}
{{ include "ingestion-common.selectorLabels" .root }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}

{{/*
Labels of a helm test pod: deliberately NOT matching the chart's selector (name <name>-test), or a
Deployment's ReplicaSet would adopt (and could delete) the bare test pod.
*/}}
{{- define "ingestion-common.testLabels" -}}
helm.sh/chart: {{ include "ingestion-common.chart" . }}
app.kubernetes.io/name: {{ include "ingestion-common.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}
