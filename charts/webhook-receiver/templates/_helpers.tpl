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

{{/* Secret holding WEBHOOK_ADMIN_TOKEN: existingSecret (templated) or the generated one. */}}
{{- define "webhook-receiver.adminSecretName" -}}
{{ include "ingestion-common.existingOrOwnName" (dict "root" . "existing" .Values.admin.existingSecret "suffix" "admin") }}
{{- end }}

{{/* The secret-init hook's spec (JSON list): the signing secrets and the admin token, unless existing. */}}
{{- define "webhook-receiver.generatedSecrets" -}}
{{- $spec := list }}
{{- if not .Values.signing.existingSecret }}
{{- $keys := dict }}
{{- range .Values.signing.sources }}{{ $_ := set $keys (include "webhook-receiver.secretEnvName" .) (dict "whsec" 32) }}{{ end }}
{{- if $keys }}
{{- $spec = append $spec (dict "name" (include "webhook-receiver.signingSecretName" .) "keys" $keys) }}
{{- end }}
{{- end }}
{{- if not .Values.admin.existingSecret }}
{{- $spec = append $spec (dict "name" (include "webhook-receiver.adminSecretName" .) "keys" (dict .Values.admin.existingSecretKey (dict "random" 40))) }}
{{- end }}
{{- toJson $spec }}
{{- end }}

{{/* The sources the public edge exposes (JSON list): publicPaths.sources, else signing.sources and the declared
webhook sources (global.sources.webhooks). */}}
{{- define "webhook-receiver.publicSources" -}}
{{- $declared := list }}
{{- range ((.Values.global | default dict).sources | default dict).webhooks }}{{ $declared = append $declared .source_id }}{{ end }}
{{- toJson (.Values.publicPaths.sources | default (concat (.Values.signing.sources | default list) $declared | uniq)) }}
{{- end }}

{{/* The one pattern of publicPaths.match=regex: a source name as the receiver accepts it, nothing after it. */}}
{{- define "webhook-receiver.publicRegex" -}}
/webhook/[A-Za-z0-9_-]{1,64}$
{{- end }}

{{/* The Ingress paths (JSON list of {path, pathType}). */}}
{{- define "webhook-receiver.ingressPaths" -}}
{{- $paths := list }}
{{- if eq .Values.publicPaths.match "regex" }}
{{- if eq .Values.ingress.className "traefik" }}
{{- fail "publicPaths.match=regex: Traefik's Ingress provider has no regular-expression paths (an ImplementationSpecific path is a literal prefix there); use exact, or the HTTPRoute" }}
{{- end }}
{{- $paths = append $paths (dict "path" (include "webhook-receiver.publicRegex" .) "pathType" "ImplementationSpecific") }}
{{- else }}
{{- range include "webhook-receiver.publicSources" . | fromJsonArray }}
{{- $paths = append $paths (dict "path" (printf "/webhook/%s" .) "pathType" "Exact") }}
{{- end }}
{{- end }}
{{- if not $paths }}
{{- fail "publicPaths: no source to expose (declare one in global.sources.webhooks, or set signing.sources or publicPaths.sources)" }}
{{- end }}
{{- toJson $paths }}
{{- end }}

{{/* The Traefik buffering Middleware's name, and whether it is rendered (for the Ingress or the HTTPRoute). */}}
{{- define "webhook-receiver.bodySizeMiddleware" -}}
{{- printf "%s-body-size" (include "ingestion-common.fullname" .) }}
{{- end }}

{{- define "webhook-receiver.traefikIngress" -}}
{{- if and .Values.ingress.enabled (eq .Values.ingress.className "traefik") .Values.ingress.traefik.bodySizeMiddleware }}true{{ end }}
{{- end }}
