{{/*
cert-manager's ingress annotations (JSON object): cert-manager.io/issuer or cert-manager.io/cluster-issuer from
(dict "certManager" <{issuer, clusterIssuer}> "tls" <the Ingress's tls>). cert-manager issues the Secret each
tls entry names, for its hosts, so tls is required with either.
*/}}
{{- define "ingestion-common.certManagerAnnotations" -}}
{{- $c := .certManager | default dict }}
{{- $out := dict }}
{{- if and $c.issuer $c.clusterIssuer }}
{{- fail "certManager: set issuer or clusterIssuer, not both" }}
{{- end }}
{{- if or $c.issuer $c.clusterIssuer }}
{{- if not .tls }}
{{- fail "certManager: set tls (secretName and hosts) for cert-manager to issue the certificate into" }}
{{- end }}
{{- with $c.issuer }}{{ $_ := set $out "cert-manager.io/issuer" . }}{{ end }}
{{- with $c.clusterIssuer }}{{ $_ := set $out "cert-manager.io/cluster-issuer" . }}{{ end }}
{{- end }}
{{- toJson $out }}
{{- end }}
