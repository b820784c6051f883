{{/* Helpers of this chart; the shared ones (names, labels, image) are in the ingestion-common library chart. */}}

{{/* The labels of the chart's objects: the shared set, component source-api. */}}
{{- define "mock-api.labels" -}}
{{ include "ingestion-common.labels" (dict "root" . "component" "source-api") }}
{{- end }}

{{/* The credentials the API checks (values keys, a JSON list): the bearer token, the API key. */}}
{{- define "mock-api.credentials" -}}
["token", "apiKey"]
{{- end }}

{{/*
A credential's Secret: its existingSecret (templated) or the generated one, <fullname>-token or <fullname>-api-key.
Pass (dict "root" $ "credential" "token").
*/}}
{{- define "mock-api.credentialSecretName" -}}
{{ include "ingestion-common.existingOrOwnName" (dict "root" .root "existing" (index .root.Values .credential).existingSecret "suffix" (.credential | kebabcase)) }}
{{- end }}

{{/* Secret holding the bearer token (key SOURCE_API_TOKEN by default). */}}
{{- define "mock-api.tokenSecretName" -}}
{{ include "mock-api.credentialSecretName" (dict "root" . "credential" "token") }}
{{- end }}
