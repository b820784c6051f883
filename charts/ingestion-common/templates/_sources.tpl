{{/*
Declared sources (global.sources, docs/kubernetes.md "Add a source"): rendered into one ConfigMap, key
sources.yaml, that the code server, every run pod and the webhook receiver mount read-only; INGEST_SOURCES_FILE
names the file. Each helper takes the including chart's context (.).
*/}}

{{/* Where the ConfigMap is mounted, and the file INGEST_SOURCES_FILE names. */}}
{{- define "ingestion-common.sourcesDir" -}}
/etc/ingestion/sources
{{- end }}

{{- define "ingestion-common.sourcesFile" -}}
{{ include "ingestion-common.sourcesDir" . }}/sources.yaml
{{- end }}

{{/* The text of sources.yaml: every kind's key, each a list of declarations (their own fields, as given). */}}
{{- define "ingestion-common.sourcesYaml" -}}
{{- $sources := (.Values.global | default dict).sources | default dict }}
{{- $file := dict }}
{{- range $kind := list "webhooks" "rest_apis" "kafka_topics" }}
{{- $_ := set $file $kind (get $sources $kind | default list) }}
{{- end }}
{{- /* Each kind's identifying field: one declaration per value (the app refuses a repeat, later and less plainly). */ -}}
{{- range $kind, $field := dict "webhooks" "source_id" "rest_apis" "name" "kafka_topics" "name" }}
{{- $seen := dict }}
{{- range get $file $kind }}
{{- $value := toString (get . $field) }}
{{- if hasKey $seen $value }}
{{- fail (printf "global.sources.%s: %s %q is declared twice" $kind $field $value) }}
{{- end }}
{{- $_ := set $seen $value true }}
{{- end }}
{{- end }}
{{- toYaml $file }}
{{- end }}

{{/* The pod annotation that rolls a Deployment when the declared sources change. */}}
{{- define "ingestion-common.sourcesChecksum" -}}
checksum/sources: {{ include "ingestion-common.sourcesYaml" . | sha256sum }}
{{- end }}

{{/* The ConfigMap: pass (dict "root" $ "name" <its name> "labels" <the chart's labels, YAML>). */}}
{{- define "ingestion-common.sourcesConfigMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .name }}
  labels:
    {{- .labels | nindent 4 }}
data:
  sources.yaml: |
    {{- include "ingestion-common.sourcesYaml" .root | nindent 4 }}
{{- end }}

{{/* A subchart's ConfigMap name: sources.existingConfigMap (templated, the umbrella's) or <fullname>-sources. */}}
{{- define "ingestion-common.sourcesConfigMapName" -}}
{{ include "ingestion-common.existingOrOwnName" (dict "root" . "existing" .Values.sources.existingConfigMap "suffix" "sources") }}
{{- end }}

{{/* A subchart's own ConfigMap, unless the umbrella renders it (sources.existingConfigMap). */}}
{{- define "ingestion-common.subchartSourcesConfigMap" -}}
{{- if not .root.Values.sources.existingConfigMap }}
{{ include "ingestion-common.sourcesConfigMap" (dict "root" .root "name" (include "ingestion-common.sourcesConfigMapName" .root) "labels" .labels) }}
{{- end }}
{{- end }}

{{/* The pod's volume holding the ConfigMap (YAML): pass its name. */}}
{{- define "ingestion-common.sourcesVolume" -}}
- name: sources
  configMap:
    name: {{ . }}
{{- end }}

{{/* The container's mount of that volume (YAML). */}}
{{- define "ingestion-common.sourcesVolumeMount" -}}
- name: sources
  mountPath: {{ include "ingestion-common.sourcesDir" . }}
  readOnly: true
{{- end }}
