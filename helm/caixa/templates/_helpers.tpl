{{/* Names, labels and the image: written once, used by every template. */}}

{{- define "caixa.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The workload name: "lancamentos", "dispatcher", "consolidado", "fiscal", "migrations". */}}
{{- define "caixa.componentName" -}}
{{- printf "%s-%s" (include "caixa.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* An object in a namespace other releases share (the ingress gateway's): the release's
namespace in its name too, unless that is the gateway's own namespace. */}}
{{- define "caixa.gatewayObjectName" -}}
{{- if eq .root.Values.istio.ingressGateway.namespace .root.Release.Namespace -}}
{{- include "caixa.componentName" . -}}
{{- else -}}
{{- printf "%s-%s-%s" (include "caixa.fullname" .root) .root.Release.Namespace .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "caixa.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: caixa
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- /* Not in the selectors, which are immutable: name already tells the workloads apart. */}}
app.kubernetes.io/component: {{ .component }}
{{ include "caixa.selectorLabels" . }}
{{- end -}}

{{/* Istio reads `app` and `version` for telemetry; selectors use the app.kubernetes.io pair. */}}
{{- define "caixa.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "caixa.podLabels" -}}
{{ include "caixa.labels" . }}
app: {{ .component }}
version: {{ .root.Chart.AppVersion | quote }}
{{- end -}}

{{- define "caixa.serviceAccountName" -}}
{{ include "caixa.componentName" . }}
{{- end -}}

{{/* repository@digest when a digest is given, else repository:tag. */}}
{{- define "caixa.image" -}}
{{- with .Values.image -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Istio principal (SPIFFE id path) of one of this release's ServiceAccounts. */}}
{{- define "caixa.principal" -}}
cluster.local/ns/{{ .root.Release.Namespace }}/sa/{{ include "caixa.serviceAccountName" . }}
{{- end -}}


{{/* AUTH_WORKLOADS: each calling workload's service account and the one scope it is
granted (the services' access rules name them). */}}
{{- define "caixa.workloadGrants" -}}
{{- $ns := .Release.Namespace -}}
{{- $sa := dict -}}
{{- range $component := list "dispatcher" "consolidado" "fiscal" -}}
{{- $_ := set $sa $component (include "caixa.serviceAccountName" (dict "root" $ "component" $component)) -}}
{{- end -}}
system:serviceaccount:{{ $ns }}:{{ $sa.dispatcher }}=consolidado:ingest;system:serviceaccount:{{ $ns }}:{{ $sa.consolidado }}=lancamentos:read;system:serviceaccount:{{ $ns }}:{{ $sa.fiscal }}=lancamentos:write
{{- end -}}
