{{/*
The Dagster instance (dagster.yaml), laid out like the official Dagster chart's configmap-instance.yaml:
PostgreSQL storages, DagsterDaemonScheduler, QueuedRunCoordinator, K8sRunLauncher, run monitoring, run retries,
concurrency pools (pool "duckdb": one DuckDB writer at a time), compute logs and tick retention. Rendered into
the instance ConfigMap and, for `dagster instance migrate`, into the migration hook's own copy.
*/}}
{{- define "platform.dagster.instance" -}}
{{- $d := .Values.dagster }}
{{- $uc := index .Values "user-code" }}
{{- $rl := $d.runLauncher }}
{{- $mountPath := $uc.persistence.mountPath }}
{{- /* psycopg2 is what dagster-postgres installs; SQLAlchemy 2.1's default driver for a plain
       postgresql:// URL is psycopg 3, which the image does not carry. */ -}}
{{- $postgresDb := dict
      "username" .Values.postgresql.auth.username
      "password" (dict "env" "DAGSTER_PG_PASSWORD")
      "hostname" (include "platform.postgresql.host" .)
      "db_name" .Values.postgresql.auth.database
      "port" (include "platform.postgresql.port" . | int)
      "params" dict
      "scheme" "postgresql+psycopg2" }}
{{- /* Run pods: the DuckDB claim (pinned with the code server, see user-code.persistence.pinning), the code
       location's env and Kafka credentials, and runK8sConfig merged over the chart's own settings. */ -}}
{{- $placement := include "platform.run.placement" . | fromJson }}
{{- $runLabels := merge (dict "app.kubernetes.io/part-of" "ingestion-patterns" "app.kubernetes.io/instance" .Release.Name "app.kubernetes.io/component" "dagster-run") (include "ingestion-common.duckdbLabels" $placement | fromJson) ($rl.labels | default dict) }}
{{- $kafka := dict "security" $uc.kafka.security "root" . }}
{{- $volumes := list (dict "name" "tmp" "emptyDir" (dict "sizeLimit" "1Gi")) }}
{{- $volumeMounts := list (dict "name" "tmp" "mount_path" "/tmp") }}
{{- /* The declared sources: a run loads the definitions as the code server does (INGEST_SOURCES_FILE comes with
       the code location's env ConfigMap). */ -}}
{{- $volumes = append $volumes (dict "name" "sources" "configMap" (dict "name" (include "platform.userCode.sourcesConfigMap" .))) }}
{{- $volumeMounts = append $volumeMounts (dict "name" "sources" "mount_path" (include "ingestion-common.sourcesDir" .) "read_only" true) }}
{{- if $uc.persistence.enabled }}
{{- $volumes = append $volumes (dict "name" "duckdb" "persistentVolumeClaim" (dict "claimName" (include "platform.userCode.claimName" .))) }}
{{- $volumeMounts = append $volumeMounts (dict "name" "duckdb" "mount_path" $mountPath) }}
{{- end }}
{{- range include "ingestion-common.kafkaCaVolumes" $kafka | fromJsonArray }}
{{- $volumes = append $volumes . }}
{{- $volumeMounts = append $volumeMounts (dict "name" .name "mount_path" (include "ingestion-common.kafkaCaDir" $kafka) "read_only" true) }}
{{- end }}
{{- $envSecrets := include "platform.userCode.envSecretNames" . | fromJsonArray }}
{{- range $rl.envSecrets }}{{ $envSecrets = append $envSecrets (tpl . $) }}{{ end }}
{{- $container := dict "resources" $rl.resources "security_context" .Values.securityContext }}
{{- with include "ingestion-common.kafkaEnv" $kafka | fromJsonArray }}
{{- $_ := set $container "env" . }}
{{- end }}
{{- $own := dict
      "container_config" $container
      "pod_spec_config" (dict "security_context" .Values.podSecurityContext "automount_service_account_token" false)
      "pod_template_spec_metadata" dict
      "job_config" dict
      "job_metadata" dict
      "job_spec_config" (dict "ttl_seconds_after_finished" $rl.ttlSecondsAfterFinished "backoff_limit" $rl.backoffLimit "active_deadline_seconds" $rl.activeDeadlineSeconds) }}
{{- $user := $rl.runK8sConfig | default dict }}
{{- $runK8sConfig := dict }}
{{- range $section, $ownSection := $own }}
{{- $merged := deepCopy $ownSection }}
{{- range $key, $value := get $user ($section | camelcase | untitle) | default dict }}
{{- $key = snakecase $key }}
{{- $current := get $merged $key }}
{{- if and (kindIs "slice" $current) (kindIs "slice" $value) }}
{{- $_ := set $merged $key (concat $current $value) }}
{{- else if and (kindIs "map" $current) (kindIs "map" $value) }}
{{- $_ := set $merged $key (mergeOverwrite (deepCopy $current) $value) }}
{{- else }}
{{- $_ := set $merged $key $value }}
{{- end }}
{{- end }}
{{- if eq $section "pod_spec_config" }}
{{- with include "ingestion-common.duckdbAffinity" $placement | fromJson }}
{{- $_ := set $merged "affinity" . }}
{{- end }}
{{- end }}
{{- if $merged }}
{{- $_ := set $runK8sConfig $section $merged }}
{{- end }}
{{- end }}
{{- $launcher := dict
      "load_incluster_config" true
      "job_namespace" (default .Release.Namespace $rl.jobNamespace)
      "image_pull_policy" $rl.imagePullPolicy
      "service_account_name" (include "platform.dagster.runServiceAccountName" .)
      "dagster_home" "/opt/dagster/dagster_home"
      "instance_config_map" (include "platform.dagster.instanceConfigMap" .)
      "postgres_password_secret" (include "platform.postgresql.secretName" .)
      "env_config_maps" (list (printf "%s-env" (include "platform.userCode.fullname" .)))
      "env_secrets" $envSecrets
      "volumes" $volumes
      "volume_mounts" $volumeMounts
      "labels" $runLabels
      "fail_pod_on_run_failure" $rl.failPodOnRunFailure
      "run_k8s_config" $runK8sConfig }}
{{- with include "platform.run.pullSecrets" . | fromJsonArray }}
{{- $_ := set $launcher "image_pull_secrets" . }}
{{- end }}
{{- $instance := dict
  "scheduler" (dict "module" "dagster._core.scheduler" "class" "DagsterDaemonScheduler")
  "schedule_storage" (dict "module" "dagster_postgres.schedule_storage" "class" "PostgresScheduleStorage" "config" (dict "postgres_db" $postgresDb))
  "run_storage" (dict "module" "dagster_postgres.run_storage" "class" "PostgresRunStorage" "config" (dict "postgres_db" $postgresDb))
  "event_log_storage" (dict "module" "dagster_postgres.event_log" "class" "PostgresEventLogStorage" "config" (dict "postgres_db" $postgresDb))
  "compute_logs" (include "platform.dagster.computeLogs" . | fromJson)
  "local_artifact_storage" (dict "module" "dagster._core.storage.root" "class" "LocalArtifactStorage" "config" (dict "base_dir" (printf "%s/dagster_storage" $mountPath)))
  "run_coordinator" (dict "module" "dagster._core.run_coordinator" "class" "QueuedRunCoordinator" "config" (dict "dequeue_interval_seconds" $d.runCoordinator.dequeueIntervalSeconds "dequeue_use_threads" true "dequeue_num_workers" 4))
  "concurrency" (dict
      "runs" (dict "max_concurrent_runs" $d.runCoordinator.maxConcurrentRuns "tag_concurrency_limits" $d.runCoordinator.tagConcurrencyLimits)
      "pools" (dict "granularity" $d.concurrency.granularity "default_limit" $d.concurrency.defaultPoolLimit))
  "run_launcher" (dict "module" "dagster_k8s" "class" "K8sRunLauncher" "config" $launcher)
  "run_monitoring" (dict
      "enabled" $d.runMonitoring.enabled
      "start_timeout_seconds" $d.runMonitoring.startTimeoutSeconds
      "cancel_timeout_seconds" $d.runMonitoring.cancelTimeoutSeconds
      "poll_interval_seconds" $d.runMonitoring.pollIntervalSeconds
      "max_resume_run_attempts" $d.runMonitoring.maxResumeRunAttempts
      "free_slots_after_run_end_seconds" $d.runMonitoring.freeSlotsAfterRunEndSeconds)
  "run_retries" (dict "enabled" $d.runRetries.enabled "max_retries" $d.runRetries.maxRetries)
  "sensors" (dict "use_threads" true "num_workers" $d.daemon.sensorWorkers)
  "schedules" (dict "use_threads" true "num_workers" 2)
  "telemetry" (dict "enabled" $d.telemetry.enabled)
}}
{{- if $d.retention.enabled }}
{{- $retention := dict }}
{{- range $kind, $settings := omit $d.retention "enabled" }}
{{- $_ := set $retention ($kind | snakecase) (dict "purge_after_days" $settings.purgeAfterDays) }}
{{- end }}
{{- $_ := set $instance "retention" $retention }}
{{- end }}
{{- toYaml $instance }}
{{- end }}

{{/*
compute_logs (JSON): NoOpComputeLogManager, or S3/GCS/Azure Blob with the values' settings in Dagster's names.
Only settings that are set are written, so Dagster's own defaults apply to the rest.
*/}}
{{- define "platform.dagster.computeLogs" -}}
{{- $c := .Values.dagster.computeLogManager }}
{{- $config := dict "local_dir" $c.localDir }}
{{- with $c.uploadIntervalSeconds }}{{ $_ := set $config "upload_interval" (int .) }}{{ end }}
{{- if eq $c.type "s3" }}
{{- $s := $c.s3 }}
{{- $_ := set $config "bucket" (required "dagster.computeLogManager.s3.bucket is required" $s.bucket) }}
{{- range $name, $key := dict "prefix" "prefix" "region" "region" "endpointUrl" "endpoint_url" "uploadExtraArgs" "upload_extra_args" }}
{{- with get $s $name }}{{ $_ := set $config $key . }}{{ end }}
{{- end }}
{{- range $name, $key := dict "useSsl" "use_ssl" "verify" "verify" "skipEmptyFiles" "skip_empty_files" "showUrlOnly" "show_url_only" }}
{{- if hasKey $s $name }}{{ $_ := set $config $key (get $s $name) }}{{ end }}
{{- end }}
{{- toJson (dict "module" "dagster_aws.s3.compute_log_manager" "class" "S3ComputeLogManager" "config" $config) }}
{{- else if eq $c.type "gcs" }}
{{- $s := $c.gcs }}
{{- $_ := set $config "bucket" (required "dagster.computeLogManager.gcs.bucket is required" $s.bucket) }}
{{- range $name, $key := dict "prefix" "prefix" "jsonCredentialsEnvvar" "json_credentials_envvar" }}
{{- with get $s $name }}{{ $_ := set $config $key . }}{{ end }}
{{- end }}
{{- if hasKey $s "showUrlOnly" }}{{ $_ := set $config "show_url_only" $s.showUrlOnly }}{{ end }}
{{- toJson (dict "module" "dagster_gcp.gcs.compute_log_manager" "class" "GCSComputeLogManager" "config" $config) }}
{{- else if eq $c.type "azure" }}
{{- $s := $c.azure }}
{{- $_ := set $config "storage_account" (required "dagster.computeLogManager.azure.storageAccount is required" $s.storageAccount) }}
{{- $_ = set $config "container" (required "dagster.computeLogManager.azure.container is required" $s.container) }}
{{- range $name, $key := dict "prefix" "prefix" "endpointSuffix" "endpoint_suffix" }}
{{- with get $s $name }}{{ $_ := set $config $key . }}{{ end }}
{{- end }}
{{- with $s.accessKeyOrSasTokenEnv }}
{{- $_ := set $config "access_key_or_sas_token" (dict "env" .) }}
{{- else }}
{{- $_ := set $config "default_azure_credential" dict }}
{{- end }}
{{- if hasKey $s "showUrlOnly" }}{{ $_ := set $config "show_url_only" $s.showUrlOnly }}{{ end }}
{{- toJson (dict "module" "dagster_azure.blob.compute_log_manager" "class" "AzureBlobComputeLogManager" "config" $config) }}
{{- else }}
{{- toJson (dict "module" "dagster._core.storage.noop_compute_log_manager" "class" "NoOpComputeLogManager") }}
{{- end }}
{{- end }}
