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
{{- $d := .Values.dagster.image }}
{{- $tag := default (default .Chart.AppVersion $uc.tag) $d.tag }}
{{- if $d.repository }}
{{- include "ingestion-common.imageRef" (dict "repository" $d.repository "tag" $tag "digest" $d.digest) }}
{{- else }}
{{- include "ingestion-common.imageRef" (dict "repository" $uc.repository "tag" $tag "digest" (default $uc.digest $d.digest)) }}
{{- end }}
{{- end }}

{{/* PostgreSQL's image (tag or digest). */}}
{{- define "platform.postgresql.image" -}}
{{- $i := .Values.postgresql.image }}
{{- include "ingestion-common.imageRef" (dict "repository" $i.repository "tag" $i.tag "digest" $i.digest) }}
{{- end }}

{{/* imagePullSecrets (JSON list) of the Dagster pods and the run pods: dagster.imagePullSecrets and the
globals; run pods add the code location's (they run its image). */}}
{{- define "platform.dagster.pullSecrets" -}}
{{- include "ingestion-common.imagePullSecretList" (dict "root" . "secrets" .Values.dagster.imagePullSecrets) }}
{{- end }}

{{- define "platform.run.pullSecrets" -}}
{{- $uc := index .Values "user-code" }}
{{- include "ingestion-common.imagePullSecretList" (dict "root" . "secrets" (concat (.Values.dagster.imagePullSecrets | default list) ($uc.imagePullSecrets | default list))) }}
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

{{/* Secret with keys SOURCE_API_TOKEN (bearer token) and SOURCE_API_KEY (API key). */}}
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

{{/* The declared sources' ConfigMap the code server mounts (this chart's, by default); the run pods mount it too. */}}
{{- define "platform.userCode.sourcesConfigMap" -}}
{{- $uc := index .Values "user-code" }}
{{- if ($uc.sources | default dict).existingConfigMap }}
{{- tpl $uc.sources.existingConfigMap . }}
{{- else }}
{{- printf "%s-sources" (include "platform.userCode.fullname" .) }}
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

{{/* The env of a Dagster component's containers: the chart's own, then the component's env entries, then
envFrom its envSecrets. Pass (dict "root" $ "component" .Values.dagster.webserver). */}}
{{- define "platform.dagster.containerEnv" -}}
env:
  {{- include "platform.dagster.env" .root | nindent 2 }}
  {{- with .component.env }}
  {{- tpl (toYaml .) $.root | nindent 2 }}
  {{- end }}
{{- with .component.envSecrets }}
envFrom:
  {{- range . }}
  - secretRef:
      name: {{ tpl .name $.root }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Scheduling fields of a Dagster component's pod: nodeSelector, affinity, tolerations. */}}
{{- define "platform.dagster.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The user-code chart's pinning argument (ingestion-common's _placement.tpl), for run pods: their own
affinity is runK8sConfig.podSpecConfig.affinity. */}}
{{- define "platform.run.placement" -}}
{{- $uc := index .Values "user-code" }}
{{- $pod := .Values.dagster.runLauncher.runK8sConfig.podSpecConfig | default dict }}
{{- toJson (dict "persistence" $uc.persistence "claimName" (include "platform.userCode.claimName" .) "affinity" (get $pod "affinity" | default dict)) }}
{{- end }}

{{/*
The secret-init hook's spec (ingestion-common's _secret_init.tpl): the Secrets this chart generates, each only
when no existingSecret names one.
*/}}
{{- define "platform.generatedSecrets" -}}
{{- $auth := .Values.postgresql.auth }}
{{- if eq $auth.inboxUsername $auth.username }}
{{- fail "postgresql.auth.inboxUsername must not be postgresql.auth.username: the inbox has its own role, never the superuser" }}
{{- end }}
{{- $spec := list }}
{{- if not .Values.postgresql.enabled }}
{{- if not (and $auth.existingSecret .Values.inbox.existingSecret) }}
{{- fail "postgresql.enabled=false: set postgresql.auth.existingSecret and inbox.existingSecret (the external server's credentials; see docs/kubernetes.md for the inbox role)" }}
{{- end }}
{{- end }}
{{- if not $auth.existingSecret }}
{{- $spec = append $spec (dict "name" (include "platform.postgresql.secretName" .) "keys" (dict "postgresql-password" (dict "random" 32))) }}
{{- end }}
{{- if not .Values.inbox.existingSecret }}
{{- $url := dict "user" $auth.inboxUsername "passwordKey" "WEBHOOK_INBOX_PASSWORD" "host" (include "platform.postgresql.host" .) "port" (include "platform.postgresql.port" .) "database" $auth.inboxDatabase }}
{{- $spec = append $spec (dict "name" (include "platform.inbox.secretName" .) "keys" (dict "WEBHOOK_INBOX_PASSWORD" (dict "random" 32) "WEBHOOK_INBOX_URL" (dict "postgresUrl" $url))) }}
{{- end }}
{{- if not .Values.sourceApi.existingSecret }}
{{- $spec = append $spec (dict "name" (include "platform.sourceApi.secretName" .) "keys" (dict "SOURCE_API_TOKEN" (dict "random" 32) "SOURCE_API_KEY" (dict "random" 32))) }}
{{- end }}
{{- toJson $spec }}
{{- end }}

{{/*
The inbox's own role (postgresql.auth.inboxUsername), run by psql as the superuser with -v role=<role>
-v inbox_db=<database> -v owner=<superuser> and the password in the environment (INBOX_PASSWORD). Idempotent.
The role logs in and owns the schema of its name in the inbox database, where the receiver and the code
location create and alter the inbox table (CREATE TABLE IF NOT EXISTS, ALTER TABLE ADD COLUMN IF NOT EXISTS);
it is no superuser, creates no databases or roles, and may connect to no other database (CONNECT is revoked
from PUBLIC on them). A table made before the role existed (by the superuser, in public) moves into its schema.
*/}}
{{- define "platform.inboxRoleSql" -}}
\getenv password INBOX_PASSWORD
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'inbox_db', :'owner')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'inbox_db') \gexec
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', datname) FROM pg_database WHERE datallowconn \gexec
GRANT CONNECT ON DATABASE :"inbox_db" TO :"role";
\connect :"inbox_db"
SET client_min_messages = warning;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS :"role" AUTHORIZATION :"role";
ALTER SCHEMA :"role" OWNER TO :"role";
ALTER ROLE :"role" IN DATABASE :"inbox_db" SET search_path TO :"role";
SELECT format('ALTER TABLE public.webhook_inbox SET SCHEMA %I', :'role')
  WHERE to_regclass('public.webhook_inbox') IS NOT NULL AND to_regclass(format('%I.webhook_inbox', :'role')) IS NULL \gexec
SELECT format('ALTER TABLE %I.webhook_inbox OWNER TO %I', :'role', :'role')
  WHERE to_regclass(format('%I.webhook_inbox', :'role')) IS NOT NULL \gexec
{{- end }}
