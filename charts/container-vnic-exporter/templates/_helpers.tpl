{{- define "cve.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cve.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cve.labels" -}}
{{ include "cve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The directory of the CRI socket, mounted read-only under /host. */}}
{{- define "cve.criDir" -}}
{{- $s := required "kubernetes.criSocket: the CRI socket's path on the node (or kubernetes.enabled: false)" .Values.kubernetes.criSocket -}}
{{- if not (isAbs $s) -}}
{{- fail (printf "kubernetes.criSocket %q: an absolute path on the node, like /run/containerd/containerd.sock" $s) -}}
{{- end -}}
{{- dir (clean $s) -}}
{{- end -}}

{{/*
The relabelings of both monitors: node and instance are the node's name,
job is container_vnic, and the target's namespace, pod and container labels
(those of the exporter's own pod) are dropped, so that honorLabels keeps
the exporter's labels and no series gets the exporter's pod as its own.
*/}}
{{- define "cve.relabelings" -}}
- sourceLabels: [__meta_kubernetes_pod_node_name]
  targetLabel: node
- sourceLabels: [__meta_kubernetes_pod_node_name]
  targetLabel: instance
- targetLabel: job
  replacement: container_vnic
- action: labeldrop
  regex: namespace|pod|container
{{- end -}}
