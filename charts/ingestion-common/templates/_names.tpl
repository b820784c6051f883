{{/*
Names. Every helper takes the including chart's context (.): .Chart and .Values are that chart's.
*/}}

{{/* Chart name, overridable (nameOverride). */}}
{{- define "ingestion-common.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<name> (predictable, so the umbrella chart can point at it), or fullnameOverride.
*/}}
{{- define "ingestion-common.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "ingestion-common.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* <chart>-<version>, the value of the helm.sh/chart label. */}}
{{- define "ingestion-common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* serviceAccount.name, else the full name when serviceAccount.create, else "default". */}}
{{- define "ingestion-common.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ingestion-common.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An object the user may bring (an existing Secret or claim): its name, templated, or else <fullname>-<suffix>,
the one the chart creates. Pass (dict "root" $ "existing" .Values.token.existingSecret "suffix" "token").
*/}}
{{- define "ingestion-common.existingOrOwnName" -}}
{{- if .existing }}
{{- tpl .existing .root }}
{{- else }}
{{- printf "%s-%s" (include "ingestion-common.fullname" .root) .suffix }}
{{- end }}
{{- end }}
