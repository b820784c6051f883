{{/* Helpers of this chart; the shared ones (name, chart and selector labels) are in the ingestion-common library chart. */}}

{{/* Prefix of every object of this chart: the release name (the subcharts add their own suffixes). */}}
{{- define "platform.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "platform.labels" -}}
helm.sh/chart: {{ include "ingestion-common.chart" . }}
{{ include "ingestion-common.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ingestion-patterns
{{- end }}

{{/* Labels of one component: pass (dict "root" $ "component" "dagster-webserver"). */}}
{{- define "platform.componentSelectorLabels" -}}
{{ include "ingestion-common.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "platform.componentLabels" -}}
{{ include "platform.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Control-plane image: dagster.image, defaulting to the user-code image (it has dagster-webserver,
dagster-k8s and dagster-postgres installed). */}}
{{- define "platform.dagsterImage" -}}
{{- $uc := index .Values "user-code" "image" }}
{{- $repo := default $uc.repository .Values.dagster.image.repository }}
{{- $tag := default (default .Chart.AppVersion $uc.tag) .Values.dagster.image.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{- define "platform.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "platform.fullname" .) }}
{{- end }}

{{- define "platform.postgresql.host" -}}
{{- if .Values.postgresql.enabled }}
{{- include "platform.postgresql.fullname" . }}
{{- else }}
{{- required "postgresql.external.host is required when postgresql.enabled=false" .Values.postgresql.external.host }}
{{- end }}
{{- end }}

{{- define "platform.postgresql.port" -}}
{{- if .Values.postgresql.enabled }}5432{{ else }}{{ .Values.postgresql.external.port }}{{ end }}
{{- end }}

{{/* Secret with key postgresql-password (the key K8sRunLauncher's postgres_password_secret expects). */}}
{{- define "platform.postgresql.secretName" -}}
{{- default (printf "%s-postgresql" (include "platform.fullname" .)) .Values.postgresql.auth.existingSecret }}
{{- end }}

{{/* Secret with key WEBHOOK_INBOX_URL. */}}
{{- define "platform.inbox.secretName" -}}
{{- default (printf "%s-inbox" (include "platform.fullname" .)) .Values.inbox.existingSecret }}
{{- end }}

{{/* Secret with key SOURCE_API_TOKEN. */}}
{{- define "platform.sourceApi.secretName" -}}
{{- default (printf "%s-source-api" (include "platform.fullname" .)) .Values.sourceApi.existingSecret }}
{{- end }}

{{- define "platform.dagster.fullname" -}}
{{- printf "%s-dagster" (include "platform.fullname" .) }}
{{- end }}

{{- define "platform.dagster.instanceConfigMap" -}}
{{- printf "%s-instance" (include "platform.dagster.fullname" .) }}
{{- end }}

{{- define "platform.dagster.workspaceConfigMap" -}}
{{- printf "%s-workspace" (include "platform.dagster.fullname" .) }}
{{- end }}

{{- define "platform.dagster.serviceAccountName" -}}
{{- include "platform.dagster.fullname" . }}
{{- end }}

{{- define "platform.dagster.runServiceAccountName" -}}
{{- printf "%s-run" (include "platform.dagster.fullname" .) }}
{{- end }}

{{/* Names the user-code subchart gives its objects (<release>-user-code...): runs reuse them. */}}
{{- define "platform.userCode.fullname" -}}
{{- $uc := index .Values "user-code" }}
{{- default (printf "%s-user-code" .Release.Name) $uc.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "platform.userCode.claimName" -}}
{{- $uc := index .Values "user-code" }}
{{- if $uc.persistence.existingClaim }}
{{- tpl $uc.persistence.existingClaim . }}
{{- else }}
{{- printf "%s-duckdb" (include "platform.userCode.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secrets the code server loads with envFrom; the run pods get exactly the same list. */}}
{{- define "platform.userCode.envSecretNames" -}}
{{- $uc := index .Values "user-code" }}
{{- $names := list }}
{{- range $uc.envSecrets }}{{ $names = append $names (tpl . $) }}{{ end }}
{{- if $uc.secretEnv }}{{ $names = append $names (printf "%s-secret-env" (include "platform.userCode.fullname" .)) }}{{ end }}
{{- toJson $names }}
{{- end }}

{{/* Mounts for the Dagster control-plane containers (read-only root filesystem). */}}
{{- define "platform.dagster.volumeMounts" -}}
- name: dagster-home
  mountPath: /opt/dagster/dagster_home
- name: instance
  mountPath: /opt/dagster/dagster_home/dagster.yaml
  subPath: dagster.yaml
- name: workspace
  mountPath: /opt/dagster/workspace
- name: tmp
  mountPath: /tmp
# local_artifact_storage points into the DuckDB volume (for run pods); the control plane gets a scratch
# directory at the same path instead, so nothing there ever writes to the read-only root filesystem.
- name: artifacts
  mountPath: {{ index .Values "user-code" "persistence" "mountPath" }}
{{- end }}

{{- define "platform.dagster.volumes" -}}
- name: dagster-home
  emptyDir:
    sizeLimit: 256Mi
- name: instance
  configMap:
    name: {{ include "platform.dagster.instanceConfigMap" . }}
- name: workspace
  configMap:
    name: {{ include "platform.dagster.workspaceConfigMap" . }}
- name: tmp
  emptyDir:
    sizeLimit: 512Mi
- name: artifacts
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{- define "platform.dagster.env" -}}
- name: DAGSTER_HOME
  value: /opt/dagster/dagster_home
- name: DAGSTER_PG_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "platform.postgresql.secretName" . }}
      key: postgresql-password
{{- end }}
