{{/*
Keeping the pods that share the DuckDB volume on one node. A ReadWriteOnce volume is attached to one node at a
time: the code server and every run pod that mounts it must run there. Each helper takes
(dict "persistence" <user-code's persistence values> "claimName" <the claim> "affinity" <a pod's own affinity>).

persistence.pinning.mode:
  auto         podAffinity unless accessModes includes ReadWriteMany (then none)
  podAffinity  every pod mounting the claim carries the label below and a required pod affinity to pods with it
               (topologyKey kubernetes.io/hostname): the first one lands anywhere (a pod may match its own term),
               every later one joins it. No node name to maintain; drained nodes are followed.
  node         required node affinity to persistence.pinning.node (its kubernetes.io/hostname label)
  none         nothing (ReadWriteMany storage, or placement handled by the caller's own affinity)
*/}}

{{/* The resolved mode: podAffinity, node or "" (none). */}}
{{- define "ingestion-common.duckdbPinning" -}}
{{- $p := .persistence }}
{{- $pinning := $p.pinning | default dict }}
{{- $mode := $pinning.mode | default "auto" }}
{{- if not $p.enabled }}
{{- else if eq $mode "auto" }}
{{- if not (has "ReadWriteMany" ($p.accessModes | default list)) }}podAffinity{{ end }}
{{- else if eq $mode "podAffinity" }}podAffinity
{{- else if eq $mode "node" }}
{{- $_ := required "persistence.pinning.node is required with persistence.pinning.mode=node" $pinning.node }}node
{{- end }}
{{- end }}

{{/* The label every pod mounting the claim carries (JSON object; empty unless the mode is podAffinity). */}}
{{- define "ingestion-common.duckdbLabels" -}}
{{- if eq (include "ingestion-common.duckdbPinning" .) "podAffinity" }}
{{- toJson (dict "ingestion-patterns/duckdb-volume" (.claimName | trunc 63 | trimSuffix "-")) }}
{{- else }}
{{- toJson dict }}
{{- end }}
{{- end }}

{{/* The pod's own affinity with the pinning merged in (JSON object; {} when there is neither). */}}
{{- define "ingestion-common.duckdbAffinity" -}}
{{- $mode := include "ingestion-common.duckdbPinning" . }}
{{- $affinity := deepCopy (.affinity | default dict) }}
{{- if eq $mode "podAffinity" }}
{{- $term := dict "labelSelector" (dict "matchLabels" (include "ingestion-common.duckdbLabels" . | fromJson)) "topologyKey" "kubernetes.io/hostname" }}
{{- $podAffinity := get $affinity "podAffinity" | default dict }}
{{- $required := get $podAffinity "requiredDuringSchedulingIgnoredDuringExecution" | default list }}
{{- $_ := set $podAffinity "requiredDuringSchedulingIgnoredDuringExecution" (append $required $term) }}
{{- $_ = set $affinity "podAffinity" $podAffinity }}
{{- else if eq $mode "node" }}
{{- /* nodeSelectorTerms are ORed: the node requirement is added to each of them. */ -}}
{{- $expression := dict "key" "kubernetes.io/hostname" "operator" "In" "values" (list .persistence.pinning.node) }}
{{- $nodeAffinity := get $affinity "nodeAffinity" | default dict }}
{{- $required := get $nodeAffinity "requiredDuringSchedulingIgnoredDuringExecution" | default dict }}
{{- $terms := list }}
{{- range get $required "nodeSelectorTerms" | default (list dict) }}
{{- $terms = append $terms (set . "matchExpressions" (append (get . "matchExpressions" | default list) $expression)) }}
{{- end }}
{{- $_ := set $required "nodeSelectorTerms" $terms }}
{{- $_ = set $nodeAffinity "requiredDuringSchedulingIgnoredDuringExecution" $required }}
{{- $_ = set $affinity "nodeAffinity" $nodeAffinity }}
{{- end }}
{{- toJson $affinity }}
{{- end }}
