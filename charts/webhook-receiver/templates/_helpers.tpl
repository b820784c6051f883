{{/* Helpers of this chart; the shared ones (names, labels, image) are in the ingestion-common library chart. */}}

{{/* The labels of the chart's objects: the shared set, component webhook-receiver. */}}
{{- define "webhook-receiver.labels" -}}
{{ include "ingestion-common.labels" (dict "root" . "component" "webhook-receiver") }}
{{- end }}

{{/* Secret holding WEBHOOK_SECRET_<SOURCE> keys: existingSecret (templated) or the generated one. */}}
{{- define "webhook-receiver.signingSecretName" -}}
{{ include "ingestion-common.existingOrOwnName" (dict "root" . "existing" .Values.signing.existingSecret "suffix" "signing") }}
{{- end }}

{{/* Secret holding WEBHOOK_INBOX_URL: existingSecret (templated, e.g. by the umbrella chart) or the generated one. */}}
{{- define "webhook-receiver.inboxSecretName" -}}
{{ include "ingestion-common.existingOrOwnName" (dict "root" . "existing" .Values.inbox.existingSecret "suffix" "inbox") }}
{{- end }}

{{/* Env var name for a source's signing secret: WEBHOOK_SECRET_<SOURCE>, upper case, '-' -> '_'. */}}
{{- define "webhook-receiver.secretEnvName" -}}
{{- printf "WEBHOOK_SECRET_%s" (. | upper | replace "-" "_") }}
{{- end }}
