{{/* The chart's image, <image.repository>:<image.tag>; the tag defaults to the chart's appVersion. */}}
{{- define "ingestion-common.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
