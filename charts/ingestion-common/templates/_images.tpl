{{/*
An image reference from (dict "repository" "tag" "digest" "defaultTag"): <repository>@<digest> when a digest
is given (the tag is then only documentation), else <repository>:<tag or defaultTag>.
*/}}
{{- define "ingestion-common.imageRef" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (default .defaultTag .tag) }}
{{- end }}
{{- end }}

{{/* The chart's image: image.repository with image.digest, or image.tag (default: the chart's appVersion). */}}
{{- define "ingestion-common.image" -}}
{{- include "ingestion-common.imageRef" (dict "repository" .Values.image.repository "tag" .Values.image.tag "digest" .Values.image.digest "defaultTag" .Chart.AppVersion) }}
{{- end }}

{{/*
The imagePullSecrets of a pod, as a JSON list: the given ones (pass (dict "root" $ "secrets" <list>)) and
global.imagePullSecrets, each name once.
*/}}
{{- define "ingestion-common.imagePullSecretList" -}}
{{- $global := (.root.Values.global | default dict).imagePullSecrets | default list }}
{{- $names := list }}
{{- $out := list }}
{{- range concat (.secrets | default list) $global }}
{{- if not (has .name $names) }}
{{- $names = append $names .name }}
{{- $out = append $out (dict "name" .name) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}
