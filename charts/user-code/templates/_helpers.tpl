{{/* Chart name, overridable. */}}
{{- define "user-code.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart> (predictable, so the umbrella chart can point at it), or fullnameOverride.
*/}}
{{- define "user-code.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "user-code.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "user-code.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "user-code.selectorLabels" -}}
app.kubernetes.io/name: {{ include "user-code.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "user-code.labels" -}}
helm.sh/chart: {{ include "user-code.chart" . }}
{{ include "user-code.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: dagster-code-location
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}

{{- define "user-code.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "user-code.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "user-code.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* ConfigMap with the plain env (DUCKDB_PATH, SOURCE_API_URL, KAFKA_*): shared with every run pod. */}}
{{- define "user-code.envConfigMapName" -}}
{{- printf "%s-env" (include "user-code.fullname" .) }}
{{- end }}

{{/* Secret created from secretEnv (development only). */}}
{{- define "user-code.secretEnvName" -}}
{{- printf "%s-secret-env" (include "user-code.fullname" .) }}
{{- end }}

{{/* Every Secret whose keys become env vars, templated names resolved: the same list goes to the run pods. */}}
{{- define "user-code.envSecretNames" -}}
{{- $names := list }}
{{- range .Values.envSecrets }}{{ $names = append $names (tpl . $) }}{{ end }}
{{- if .Values.secretEnv }}{{ $names = append $names (include "user-code.secretEnvName" .) }}{{ end }}
{{- toJson $names }}
{{- end }}

{{/* The claim holding DuckDB. */}}
{{- define "user-code.claimName" -}}
{{- if .Values.persistence.existingClaim }}
{{- tpl .Values.persistence.existingClaim . }}
{{- else }}
{{- printf "%s-duckdb" (include "user-code.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Labels of the helm test pod: deliberately NOT matching the Deployment's selector, or its ReplicaSet would
adopt (and could delete) the bare test pod.
*/}}
{{- define "user-code.testLabels" -}}
helm.sh/chart: {{ include "user-code.chart" . }}
app.kubernetes.io/name: {{ include "user-code.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}
