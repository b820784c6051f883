{{/* Helpers of this chart; the shared ones (names, labels, image) are in the ingestion-common library chart. */}}

{{/* The labels of the chart's objects: the shared set, component source-api. */}}
{{- define "mock-api.labels" -}}
{{ include "ingestion-common.labels" (dict "root" . "component" "source-api") }}
{{- end }}

{{/* Secret holding the bearer token (key SOURCE_API_TOKEN): existingSecret (templated) or the generated one. */}}
{{- define "mock-api.tokenSecretName" -}}
{{ include "ingestion-common.existingOrOwnName" (dict "root" . "existing" .Values.token.existingSecret "suffix" "token") }}
{{- end }}
