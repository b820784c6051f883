{{/*
Generated credentials without `lookup`: a hook Job (pre-install, pre-upgrade; Argo CD runs it as a PreSync hook)
creates each Secret the first time and keeps it afterwards, so the rendered manifests carry no random value and
`helm template`, Argo CD and Flux render the same objects every time. The pods reference the Secrets by name and
wait for them (kubelet retries a missing Secret), which also holds when the manifests are applied without hooks.

The Secrets are not part of the release: `helm uninstall` leaves them, like the volumes whose data they unlock
(the PostgreSQL password must outlive a reinstall on the same volume). A Secret an older chart version rendered
itself gets the annotation helm.sh/resource-policy: keep first, so the upgrade that stops rendering it keeps it.

Spec: a list of {"name": <Secret>, "keys": {<key>: <rule>}}, rules:
  {"random": N}       N random letters and digits
  {"whsec": N}        a Standard Webhooks secret: "whsec_" + base64 of N random bytes
  {"postgresUrl": {"user", "passwordKey", "host", "port", "database"}}
                      derived: postgresql://user:<the value of passwordKey, URL-encoded>@host:port/database,
                      recomputed on every run (a changed host or database reaches the Secret)
A missing Secret is created with every key; an existing one keeps every value it has and only gains missing
keys (a new webhook source) and updated derived ones. Values are never printed.
*/}}

{{/* The script (Python's standard library only: any of the project's images runs it). */}}
{{- define "ingestion-common.secretInitScript" -}}
import base64, json, os, secrets, ssl, string, sys, time, urllib.error, urllib.parse, urllib.request

KEEP = "helm.sh/resource-policy"
ALPHABET = string.ascii_letters + string.digits
ACCOUNT = os.environ.get("SERVICEACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")


def api_base():
    if os.environ.get("KUBERNETES_API_URL"):
        return os.environ["KUBERNETES_API_URL"]
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    return "https://%s:%s" % ("[%s]" % host if ":" in host else host, os.environ["KUBERNETES_SERVICE_PORT"])


def call(method, path, body=None):
    """(status, parsed body or None); connection errors, 429 and 5xx are retried for two minutes."""
    base = api_base()
    context = ssl.create_default_context(cafile=os.path.join(ACCOUNT, "ca.crt")) if base.startswith("https:") else None
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    for attempt in range(60):
        with open(os.path.join(ACCOUNT, "token")) as token:
            headers = {"Authorization": "Bearer " + token.read().strip(), "Accept": "application/json",
                       "Content-Type": content_type}
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            if error.code != 429 and error.code < 500:
                return error.code, None
            problem = "HTTP %d" % error.code
        except (urllib.error.URLError, OSError) as error:
            problem = str(error)
        print("%s %s: %s, retrying" % (method, path, problem), flush=True)
        time.sleep(2)
    sys.exit("%s %s: giving up" % (method, path))


def generate(rule):
    if "random" in rule:
        return "".join(secrets.choice(ALPHABET) for _ in range(rule["random"]))
    if "whsec" in rule:
        return "whsec_" + base64.b64encode(secrets.token_bytes(rule["whsec"])).decode()
    raise ValueError("unknown rule %r" % sorted(rule))


def derive(rule, values):
    url = rule["postgresUrl"]
    password = urllib.parse.quote(values[url["passwordKey"]], safe="")
    return "postgresql://%s:%s@%s:%s/%s" % (url["user"], password, url["host"], url["port"], url["database"])


def desired(spec, current):
    values = dict(current)
    for key, rule in spec["keys"].items():
        if "postgresUrl" not in rule and key not in values:
            values[key] = generate(rule)
    for key, rule in spec["keys"].items():
        if "postgresUrl" in rule:
            values[key] = derive(rule, values)
    return values


def encode(values):
    return {key: base64.b64encode(value.encode("utf-8", "surrogateescape")).decode() for key, value in values.items()}


def ensure(namespace, spec):
    collection = "/api/v1/namespaces/%s/secrets" % namespace
    name = spec["name"]
    for attempt in range(10):
        status, found = call("GET", "%s/%s" % (collection, name))
        if status == 404:
            values = desired(spec, {})
            metadata = {"name": name, "labels": spec.get("labels", {}), "annotations": {KEEP: "keep"}}
            status, _ = call("POST", collection, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                                  "metadata": metadata, "data": encode(values)})
            if status == 201:
                print("created Secret %s (%s)" % (name, ", ".join(sorted(values))), flush=True)
                return
        elif status == 200:
            current = {key: base64.b64decode(value).decode("utf-8", "surrogateescape")
                       for key, value in (found.get("data") or {}).items()}
            values = desired(spec, current)
            changed = sorted(key for key in values if current.get(key) != values[key])
            kept = (found["metadata"].get("annotations") or {}).get(KEEP) == "keep"
            if not changed and kept:
                print("kept Secret %s as it is" % name, flush=True)
                return
            patch = {"metadata": {"annotations": {KEEP: "keep"},
                                  "resourceVersion": found["metadata"]["resourceVersion"]}}
            if changed:
                patch["data"] = encode({key: values[key] for key in changed})
            status, _ = call("PATCH", "%s/%s" % (collection, name), patch)
            if status == 200:
                print("kept Secret %s; set %s" % (name, ", ".join(changed + ([] if kept else ["annotation " + KEEP]))),
                      flush=True)
                return
        if status != 409:
            sys.exit("Secret %s: unexpected HTTP %s (does the Role allow it?)" % (name, status))
        time.sleep(1)  # 409: someone else wrote it meanwhile; read it again
    sys.exit("Secret %s: conflicting writers" % name)


for item in json.loads(os.environ["SPEC"]):
    ensure(os.environ["NAMESPACE"], item)
{{- end }}

{{/* A short digest of the spec, for pod annotations: pods roll when what the Secrets should hold changes. */}}
{{- define "ingestion-common.secretInitChecksum" -}}
{{- .spec | toJson | sha256sum | trunc 16 }}
{{- end }}

{{/*
The hook objects: a ServiceAccount, a Role that may create Secrets and read or patch only the ones in the spec,
its RoleBinding, and the Job. Pass (dict "root" $ "spec" <list> "image" <ref> "pullPolicy" <policy>
"pullSecrets" <list> "podSecurityContext" <obj> "securityContext" <obj>, optionally "name": the objects' name,
default <fullname>-secret-init). Renders nothing for an empty spec.
The objects are kept after success (before-hook-creation only), so `kubectl logs job/<name>` shows what it did.
*/}}
{{- define "ingestion-common.secretInit" -}}
{{- if .spec }}
{{- $root := .root }}
{{- $name := .name | default (printf "%s-secret-init" (include "ingestion-common.fullname" $root | trunc 51 | trimSuffix "-")) }}
{{- $labels := include "ingestion-common.labels" (dict "root" $root "component" "secret-init") }}
{{- $names := list }}
{{- $spec := list }}
{{- $secretLabels := dict "app.kubernetes.io/instance" $root.Release.Name "app.kubernetes.io/part-of" "ingestion-patterns" "app.kubernetes.io/component" "generated-secret" }}
{{- range .spec }}
{{- $names = append $names .name }}
{{- $spec = append $spec (dict "name" .name "labels" $secretLabels "keys" .keys) }}
{{- end }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels:
    {{- $labels | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-20"
    helm.sh/hook-delete-policy: before-hook-creation
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  labels:
    {{- $labels | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-20"
    helm.sh/hook-delete-policy: before-hook-creation
rules:
  # Kubernetes cannot restrict create to names (the name is not known when it authorizes).
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["create"]
  - apiGroups: [""]
    resources: ["secrets"]
    resourceNames: {{ toJson $names }}
    verbs: ["get", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  labels:
    {{- $labels | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-20"
    helm.sh/hook-delete-policy: before-hook-creation
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $root.Release.Namespace }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}
  labels:
    {{- $labels | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation
    checkov.io/skip1: CKV_K8S_38=it creates the release's Secrets through the Kubernetes API (Role limited to Secrets, get and patch by name)
spec:
  backoffLimit: 3
  activeDeadlineSeconds: 600
  template:
    metadata:
      labels:
        {{- $labels | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      automountServiceAccountToken: true
      {{- with include "ingestion-common.imagePullSecretList" (dict "root" $root "secrets" .pullSecrets) | fromJsonArray }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml .podSecurityContext | nindent 8 }}
      containers:
        - name: secret-init
          image: {{ .image | quote }}
          imagePullPolicy: {{ .pullPolicy | default "IfNotPresent" }}
          command:
            - python
            - -c
            - |
              {{- include "ingestion-common.secretInitScript" . | nindent 14 }}
          env:
            - name: NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: SPEC
              value: {{ $spec | toJson | quote }}
            - name: PYTHONDONTWRITEBYTECODE
              value: "1"
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {cpu: 200m, memory: 128Mi}
          securityContext:
            {{- toYaml .securityContext | nindent 12 }}
{{- end }}
{{- end }}
