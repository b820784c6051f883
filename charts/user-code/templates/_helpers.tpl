{{/* Helpers of this chart; the shared ones (names, labels, image) are in the ingestion-common library chart. */}}

{{/* The labels of the chart's objects: the shared set, component dagster-code-location. */}}
{{- define "user-code.labels" -}}
{{ include "ingestion-common.labels" (dict "root" . "component" "dagster-code-location") }}
{{- end }}

{{/* ConfigMap with the plain env (DUCKDB_PATH, SOURCE_API_URL, KAFKA_*): shared with every run pod. */}}
{{- define "user-code.envConfigMapName" -}}
{{- printf "%s-env" (include "ingestion-common.fullname" .) }}
{{- end }}

{{/* Secret created from secretEnv (development only). */}}
{{- define "user-code.secretEnvName" -}}
{{- printf "%s-secret-env" (include "ingestion-common.fullname" .) }}
{{- end }}

{{/* Every Secret whose keys become env vars, templated names resolved: the same list goes to the run pods. */}}
{{- define "user-code.envSecretNames" -}}
{{- $names := list }}
{{- range .Values.envSecrets }}{{ $names = append $names (tpl . $) }}{{ end }}
{{- if .Values.secretEnv }}{{ $names = append $names (include "user-code.secretEnvName" .) }}{{ end }}
{{- toJson $names }}
{{- end }}

{{/* The claim holding DuckDB: persistence.existingClaim (templated) or the chart's own. */}}
{{- define "user-code.claimName" -}}
{{ include "ingestion-common.existingOrOwnName" (dict "root" . "existing" .Values.persistence.existingClaim "suffix" "duckdb") }}
{{- end }}

{{/* The pinning helpers' argument (ingestion-common's _placement.tpl) for this chart's pods. */}}
{{- define "user-code.placement" -}}
{{- toJson (dict "persistence" .Values.persistence "claimName" (include "user-code.claimName" .) "affinity" .Values.affinity) }}
{{- end }}
