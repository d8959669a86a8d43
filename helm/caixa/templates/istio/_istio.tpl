{{/*
Helpers of the Istio templates. The DestinationRule/VirtualService ones are the Go twin of
mesh.istio_specs (mesh/README.md has the mapping); tests/chart/test_istio_traffic.py
proves both print the same objects. Durations pass through as written in the values.
*/}}

{{/* Labels of every Istio object; `caixa-mesh render istio` prints the same. */}}
{{- define "caixa.istio.labels" -}}
app.kubernetes.io/part-of: caixa
app.kubernetes.io/component: mesh
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ingress gateway's principal, as its pods present it. */}}
{{- define "caixa.istio.gatewayPrincipal" -}}
{{- with .Values.istio.ingressGateway -}}
cluster.local/ns/{{ .namespace }}/sa/{{ .serviceAccount }}
{{- end -}}
{{- end -}}

{{/* Istio's HTTPRetry from a `retries` value (istio_specs.http_retry). Without an
explicit `attempts: 0` Istio would apply its mesh default of 2 retries. */}}
{{- define "caixa.istio.httpRetry" -}}
{{- if eq (int .attempts) 0 -}}
attempts: 0
{{- else -}}
attempts: {{ int .attempts }}
retryIgnorePreviousHosts: {{ if hasKey . "retryOtherHosts" }}{{ .retryOtherHosts }}{{ else }}true{{ end }}
retryRemoteLocalities: {{ if hasKey . "retryRemoteLocalities" }}{{ .retryRemoteLocalities }}{{ else }}false{{ end }}
{{- with .retryOn }}
retryOn: {{ join "," . | toJson }}
{{- end }}
{{- with .perTryTimeout }}
perTryTimeout: {{ toJson . }}
{{- end }}
{{- with .backoff }}
backoff: {{ toJson .baseInterval }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* One HTTPRoute (named "<upstream>.<class>" like the local Envoy's routes): dict "name" "match" (a StringMatch dict) "host" "timeout" "retries". */}}
{{- define "caixa.istio.httpRoute" -}}
- name: {{ toJson .name }}
  match:
    - uri: {{ toJson .match }}
  route:
    - destination:
        host: {{ toJson .host }}
  timeout: {{ toJson .timeout }}
  retries:
    {{- include "caixa.istio.httpRetry" .retries | nindent 4 }}
{{- end -}}

{{/* A class's methods as a StringMatch: exact for one, a regex for several (Envoy
anchors safe_regex on the whole path). */}}
{{- define "caixa.istio.methodsMatch" -}}
{{- if eq (len .) 1 -}}
{{- dict "exact" (printf "/%s" (first .)) | toJson -}}
{{- else -}}
{{- $alternatives := list -}}
{{- range . }}{{ $alternatives = append $alternatives (printf "/%s" . | regexQuoteMeta) }}{{ end -}}
{{- dict "regex" (join "|" $alternatives) | toJson -}}
{{- end -}}
{{- end -}}

{{/*
The HTTPRoutes of one upstream (effective.upstream_routes): route classes by name, then
one default per service (its timeout, never retried). dict "root" $ "upstream" <name>
"only" <list of services, or nil for all>.
*/}}
{{- define "caixa.istio.upstreamRoutes" -}}
{{- $u := index .root.Values.mesh.upstreams .upstream -}}
{{- $only := .only -}}
{{- $noRetries := dict "attempts" 0 -}}
{{- range $name, $class := $u.routeClasses }}
{{- $methods := list -}}
{{- range $class.methods }}
{{- if or (kindIs "invalid" $only) (has (first (splitList "/" .)) $only) }}{{ $methods = append $methods . }}{{ end -}}
{{- end }}
{{- if $methods }}
{{ include "caixa.istio.httpRoute" (dict "name" (printf "%s.%s" $.upstream $name) "match" (include "caixa.istio.methodsMatch" $methods | fromJson) "host" $u.host "timeout" ($class.timeout | default $u.timeout) "retries" ($class.retries | default $u.retries | default $noRetries)) }}
{{- end }}
{{- end }}
{{- range $u.services }}
{{- if or (kindIs "invalid" $only) (has . $only) }}
{{ include "caixa.istio.httpRoute" (dict "name" (printf "%s.default-%s" $.upstream .) "match" (dict "prefix" (printf "/%s/" .)) "host" $u.host "timeout" $u.timeout "retries" $noRetries) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The one JWT rule, from istio.jwt; dict: root, forward (forwardOriginalToken or not),
merchantsHeader (copy the verified `merchants` claim for the per-merchant rate limit:
Envoy's claim_to_headers, which drops a copy the client sent). */}}
{{- define "caixa.istio.jwtRules" -}}
{{- with .root.Values.istio.jwt }}
- issuer: {{ toJson .issuer }}
  jwksUri: {{ toJson .jwksUri }}
  {{- with .audiences }}
  audiences: {{ toJson . }}
  {{- end }}
  {{- if $.forward }}
  forwardOriginalToken: {{ .forwardOriginalToken }}
  {{- end }}
  {{- if $.merchantsHeader }}
  outputClaimToHeaders:
    - header: x-caixa-jwt-merchants
      claim: merchants
  {{- end }}
{{- end }}
{{- end -}}
