{{/*
Kafka client security for the code location and its run pods (user-code's kafka.security): Strimzi's names,
the KafkaUser's Secret with key password and the cluster CA's Secret <cluster>-cluster-ca-cert with key ca.crt.
Each helper takes (dict "security" <kafka.security> "root" $); Secret names and the user are templated.
*/}}

{{/* Where the CA certificate is mounted; KAFKA_SSL_CAFILE is <dir>/<caSecret.key>. */}}
{{- define "ingestion-common.kafkaCaDir" -}}
/etc/kafka-ca
{{- end }}

{{/* The plain settings, a JSON object of env vars: the protocol; with SASL the mechanism and the user; with
SSL the CA file. The password is a secretKeyRef (kafkaEnv). */}}
{{- define "ingestion-common.kafkaSettings" -}}
{{- $s := .security }}
{{- $out := dict "KAFKA_SECURITY_PROTOCOL" $s.protocol }}
{{- if hasPrefix "SASL_" $s.protocol }}
{{- $_ := set $out "KAFKA_SASL_MECHANISM" $s.saslMechanism }}
{{- $_ = set $out "KAFKA_SASL_USERNAME" (tpl (required "kafka.security.username is required with SASL" $s.username) .root) }}
{{- end }}
{{- if hasSuffix "SSL" $s.protocol }}
{{- $_ := set $out "KAFKA_SSL_CAFILE" (printf "%s/%s" (include "ingestion-common.kafkaCaDir" .) $s.caSecret.key) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Container env entries (JSON list): KAFKA_SASL_PASSWORD from its Secret with SASL, else nothing. */}}
{{- define "ingestion-common.kafkaEnv" -}}
{{- $s := .security }}
{{- if hasPrefix "SASL_" $s.protocol }}
{{- $name := tpl (required "kafka.security.passwordSecret.name is required with SASL" $s.passwordSecret.name) .root }}
{{- toJson (list (dict "name" "KAFKA_SASL_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" $name "key" $s.passwordSecret.key)))) }}
{{- else }}
{{- toJson list }}
{{- end }}
{{- end }}

{{/* Volumes (JSON list): the CA Secret as volume kafka-ca with SSL, else nothing. */}}
{{- define "ingestion-common.kafkaCaVolumes" -}}
{{- $s := .security }}
{{- if hasSuffix "SSL" $s.protocol }}
{{- $name := tpl (required "kafka.security.caSecret.name is required with SSL" $s.caSecret.name) .root }}
{{- toJson (list (dict "name" "kafka-ca" "secret" (dict "secretName" $name "items" (list (dict "key" $s.caSecret.key "path" $s.caSecret.key))))) }}
{{- else }}
{{- toJson list }}
{{- end }}
{{- end }}
