{{/* The pieces every Caixa workload shares: pod shape, security, probes, env. */}}

{{/* Restricted Pod Security Standard. 10001 is the Dockerfile's non-root user. */}}
{{- define "caixa.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "caixa.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
Native gRPC probes. `liveness` stays SERVING while the process lives, so a dependency
outage never restarts pods; "" is SERVING only when the database answers.
*/}}
{{- define "caixa.grpcProbes" -}}
startupProbe:
  grpc: {port: {{ .Values.ports.grpc }}, service: liveness}
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  grpc: {port: {{ .Values.ports.grpc }}, service: liveness}
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  grpc: {port: {{ .Values.ports.grpc }}}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end -}}

{{/* The in-cluster gRPC target of a mesh upstream ("lancamentos", "consolidado", "fiscal"). */}}
{{- define "caixa.upstreamTarget" -}}
{{- $host := (index .root.Values.mesh.upstreams .upstream).host -}}
dns:///{{ $host }}.{{ .root.Release.Namespace }}.svc.cluster.local:{{ .root.Values.ports.grpc }}
{{- end -}}

{{- define "caixa.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name }}
      key: {{ .ref.key }}
{{- end -}}

{{/*
A Deployment. dict: root, component, args (list), env (list of EnvVar, after the shared
ones), databaseSecret (a secrets.* entry), and optionally shutdownGrace / stopSeconds: the
gRPC server's drain and the process's whole stop time (both default to drainSeconds),
preStopSeconds (default termination.preStopSeconds; 0 for a workload nobody calls),
reserved (more variables the chart owns, set or not, which <component>.env may not set),
and volumes / volumeMounts (more of them, for the app container).
*/}}
{{- define "caixa.deployment" -}}
{{- $root := .root -}}
{{- $values := index $root.Values .component -}}
{{- $ctx := dict "root" $root "component" .component -}}
{{- $drain := int $root.Values.termination.drainSeconds -}}
{{- $shutdownGrace := int (default $drain .shutdownGrace) -}}
{{- $stop := int (default $drain .stopSeconds) -}}
{{- $preStop := int (ternary .preStopSeconds $root.Values.termination.preStopSeconds (hasKey . "preStopSeconds")) -}}
{{- $reserved := concat (list "GRPC_HOST" "GRPC_PORT" "METRICS_PORT" "SHUTDOWN_GRACE_SECONDS" "DATABASE_URL" "OTEL_EXPORTER_OTLP_ENDPOINT" "OTEL_TRACES_SAMPLER_ARG" "OTEL_SERVICE_NAME" "AUTH_ISSUER" "AUTH_AUDIENCE" "AUTH_JWKS_URL" "AUTH_WORKLOAD_ISSUER" "AUTH_WORKLOAD_AUDIENCE" "AUTH_WORKLOAD_JWKS_FILE" "AUTH_WORKLOADS" "WORKLOAD_TOKEN_FILE") (.reserved | default list) -}}
{{- $auth := $root.Values.auth.workloads -}}
{{- /* Who calls whom: the dispatcher feeds consolidado, consolidado reads lancamentos,
fiscal books in lancamentos. */ -}}
{{- $calls := has .component (list "dispatcher" "consolidado" "fiscal") -}}
{{- range .env }}{{ $reserved = append $reserved .name }}{{ end -}}
{{- range $name, $_ := $values.env }}
{{- if has $name $reserved }}
{{- fail (printf "%s.env.%s: the chart sets %s itself; change the value it comes from instead" $.component $name $name) }}
{{- end }}
{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "caixa.componentName" $ctx }}
  labels:
    {{- include "caixa.labels" $ctx | nindent 4 }}
spec:
  {{- if not (and $values.autoscaling $values.autoscaling.enabled) }}
  replicas: {{ $values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "caixa.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "caixa.podLabels" $ctx | nindent 8 }}
        sidecar.istio.io/inject: "true"
      {{- /*
      sidecar.istio.io/nativeSidecar: Istio's proxy as a native sidecar (Kubernetes >= 1.29;
      Istio turns it on by itself only when every node is >= 1.33): kubelet starts it before
      the app and sends it SIGTERM only after the app has exited. Its preStop, though, starts
      Envoy's graceful drain as soon as the pod is deleted (istio/istio#47226): from then on
      existing connections get GOAWAY and new ones are still accepted for
      terminationDrainDuration, set here to the preStop wait plus the app's whole stop, so
      the proxy keeps accepting until the app is gone (a call that meets a GOAWAY reconnects,
      and one refused is retried). The proxy exits with the app, so the grace period is the
      preStop wait plus the app's stop, not a second drain. proxy.istio.io/config: that
      drain, and stats that include what the alerts and the dashboard read (circuit breakers, ejections,
      retries). rewriteAppHTTPProbers: kubelet's gRPC probes go to the sidecar agent, not
      through STRICT mTLS. checksum/workload-jwks: new cluster keys roll the pods (the
      services read them at start).

      podAnnotations are laid over these once: a proxy.istio.io/config of theirs is merged
      into this one (their fields win), and any other key set here is refused rather than
      written twice, which Kubernetes would keep only one of, silently.
      */}}
      {{- $proxy := dict "terminationDrainDuration" (printf "%ds" (add $preStop $stop)) "proxyStatsMatcher" (dict "inclusionRegexps" (list ".*circuit_breakers.*" ".*upstream_rq_pending_overflow.*" ".*upstream_rq_retry.*" ".*outlier_detection.*")) }}
      {{- $annotations := dict
        "sidecar.istio.io/nativeSidecar" "true"
        "sidecar.istio.io/rewriteAppHTTPProbers" "true"
        "checksum/workload-jwks" ($auth.jwks | sha256sum)
        "prometheus.io/scrape" "true"
        "prometheus.io/port" ($root.Values.ports.metrics | toString)
        "prometheus.io/path" "/metrics" }}
      {{- $sidecar := $root.Values.istio.proxyResources }}
      {{- $_ := set $annotations "sidecar.istio.io/proxyCPU" ($sidecar.requests.cpu | toString) }}
      {{- $_ := set $annotations "sidecar.istio.io/proxyMemory" ($sidecar.requests.memory | toString) }}
      {{- $_ := set $annotations "sidecar.istio.io/proxyCPULimit" ($sidecar.limits.cpu | toString) }}
      {{- $_ := set $annotations "sidecar.istio.io/proxyMemoryLimit" ($sidecar.limits.memory | toString) }}
      {{- range $key, $value := $values.podAnnotations }}
      {{- if eq $key "proxy.istio.io/config" }}
      {{- $proxy = mergeOverwrite $proxy (fromYaml $value) }}
      {{- else if hasKey $annotations $key }}
      {{- fail (printf "%s.podAnnotations sets %s, which the chart sets itself; remove it (proxy.istio.io/config alone is merged)" $.component $key) }}
      {{- else }}
      {{- $_ := set $annotations $key ($value | toString) }}
      {{- end }}
      {{- end }}
      {{- $_ := set $annotations "proxy.istio.io/config" (toJson $proxy) }}
      annotations:
        {{- toYaml $annotations | nindent 8 }}
    spec:
      serviceAccountName: {{ include "caixa.serviceAccountName" $ctx }}
      automountServiceAccountToken: false
      # preStop, then the app's whole stop; the native sidecar has been draining since the
      # deletion and exits with the app.
      terminationGracePeriodSeconds: {{ add $preStop $stop $root.Values.termination.graceMarginSeconds }}
      securityContext:
        {{- include "caixa.podSecurityContext" $root | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        {{- $spread := $root.Values.topologySpread }}
        {{- /* The hostname constraint wins if topologyKey is the hostname too. */}}
        {{- range $key, $when := merge (dict "kubernetes.io/hostname" $spread.hostnameWhenUnsatisfiable) (dict $spread.topologyKey $spread.whenUnsatisfiable) }}
        - topologyKey: {{ $key }}
          maxSkew: {{ $spread.maxSkew }}
          whenUnsatisfiable: {{ $when }}
          nodeTaintsPolicy: Honor
          labelSelector:
            matchLabels:
              {{- include "caixa.selectorLabels" $ctx | nindent 14 }}
          # Only this rollout's pods count, so old and new ReplicaSets are spread alike.
          matchLabelKeys: [pod-template-hash]
        {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "caixa.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
          ports:
            - name: grpc
              containerPort: {{ $root.Values.ports.grpc }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $root.Values.ports.metrics }}
              protocol: TCP
          env:
            - name: GRPC_HOST
              value: 0.0.0.0
            - name: GRPC_PORT
              value: {{ $root.Values.ports.grpc | quote }}
            - name: METRICS_PORT
              value: {{ $root.Values.ports.metrics | quote }}
            - name: SHUTDOWN_GRACE_SECONDS
              value: {{ $shutdownGrace | quote }}
            {{- include "caixa.secretEnv" (dict "name" "DATABASE_URL" "ref" .databaseSecret) | nindent 12 }}
            # Counted in the database's connections (_connections.tpl).
            - name: DATABASE_POOL_SIZE
              value: {{ $values.databasePoolSize | quote }}
            # Every call is checked here too, whatever Istio let through: the user's
            # token (the gateway's issuer) or a workload's (Kubernetes service account).
            - name: AUTH_ISSUER
              value: {{ $root.Values.istio.jwt.issuer | quote }}
            - name: AUTH_AUDIENCE
              value: {{ first $root.Values.istio.jwt.audiences | quote }}
            - name: AUTH_JWKS_URL
              value: {{ $root.Values.istio.jwt.jwksUri | quote }}
            - name: AUTH_WORKLOAD_ISSUER
              value: {{ $auth.issuer | quote }}
            - name: AUTH_WORKLOAD_AUDIENCE
              value: {{ $auth.audience | quote }}
            - name: AUTH_WORKLOAD_JWKS_FILE
              value: /etc/caixa/workload-jwks/jwks.json
            - name: AUTH_WORKLOADS
              value: {{ include "caixa.workloadGrants" $root | quote }}
            {{- if $calls }}
            - name: WORKLOAD_TOKEN_FILE
              value: /var/run/secrets/caixa/workload/token
            {{- end }}
            {{- with $root.Values.tracing.otlpEndpoint }}
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ . | quote }}
            - name: OTEL_TRACES_SAMPLER_ARG
              value: {{ $root.Values.tracing.samplingRatio | quote }}
            - name: OTEL_SERVICE_NAME
              value: {{ $ctx.component | quote }}
            {{- end }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- range $name, $value := $values.env }}
            - name: {{ $name }}
              value: {{ $value | quote }}
            {{- end }}
          {{- include "caixa.grpcProbes" $root | nindent 10 }}
          {{- if gt $preStop 0 }}
          # The endpoint is already being removed; keep serving until callers know.
          lifecycle:
            preStop:
              sleep: {seconds: {{ $preStop }}}
          {{- end }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- include "caixa.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: workload-jwks
              mountPath: /etc/caixa/workload-jwks
              readOnly: true
            {{- if $calls }}
            - name: workload-token
              mountPath: /var/run/secrets/caixa/workload
              readOnly: true
            {{- end }}
            {{- with .volumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        # The root filesystem is read-only; Python and grpc still want a scratch dir.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        # The cluster's service-account keys, which workload tokens are checked with.
        - name: workload-jwks
          configMap:
            name: {{ include "caixa.componentName" (dict "root" $root "component" "workload-jwks") }}
        {{- if $calls }}
        # This workload's identity on its calls: kubelet keeps it fresh, for our
        # audience only (never the API server's token, which stays unmounted).
        - name: workload-token
          projected:
            sources:
              - serviceAccountToken:
                  path: token
                  audience: {{ $auth.audience }}
                  expirationSeconds: {{ int $auth.tokenExpirationSeconds }}
        {{- end }}
        {{- with .volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end -}}

{{/* The Service that the mesh upstream `.upstream` names. */}}
{{- define "caixa.service" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: v1
kind: Service
metadata:
  # The Istio DestinationRule and VirtualService hosts come from mesh.upstreams.*.host.
  name: {{ (index .root.Values.mesh.upstreams .component).host }}
  labels:
    {{- include "caixa.labels" $ctx | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "caixa.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: grpc
      port: {{ .root.Values.ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
{{- end -}}

{{- define "caixa.hpa" -}}
{{- $ctx := dict "root" .root "component" .component -}}
{{- $scaling := (index .root.Values .component).autoscaling -}}
{{- if $scaling.enabled -}}
{{- if lt (int $scaling.maxReplicas) (int $scaling.minReplicas) -}}
{{- fail (printf "%s.autoscaling: maxReplicas (%d) is below minReplicas (%d)" .component (int $scaling.maxReplicas) (int $scaling.minReplicas)) -}}
{{- end -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "caixa.componentName" $ctx }}
  labels:
    {{- include "caixa.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "caixa.componentName" $ctx }}
  minReplicas: {{ $scaling.minReplicas }}
  maxReplicas: {{ $scaling.maxReplicas }}
  metrics:
    # The app container's CPU only: a pod-level figure would average in the sidecar's.
    - type: ContainerResource
      containerResource:
        name: cpu
        container: {{ .component }}
        target:
          type: Utilization
          averageUtilization: {{ $scaling.targetCPUUtilizationPercentage }}
{{- end -}}
{{- end -}}

{{- define "caixa.pdb" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "caixa.componentName" $ctx }}
  labels:
    {{- include "caixa.labels" $ctx | nindent 4 }}
spec:
  {{- toYaml (index .root.Values .component).podDisruptionBudget | nindent 2 }}
  # Readiness follows the database: during its outage every pod is NotReady, and the
  # default policy would then block node drains until the database returns.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "caixa.selectorLabels" $ctx | nindent 6 }}
{{- end -}}

{{/* The write path needs the PostgreSQL primary; see cluster.writePath. With CNPG's
distributed topology every release names the same primary site, and only that site's
release may run the write path: two releases can never both render writers. */}}
{{- define "caixa.writePathGuard" -}}
{{- if and (not .Values.cluster.writePath) (or .Values.lancamentos.enabled .Values.dispatcher.enabled .Values.fiscal.enabled) -}}
{{- fail "lancamentos, dispatcher and fiscal are the write path and run only in the cluster with the PostgreSQL primary: set lancamentos.enabled=false, dispatcher.enabled=false and fiscal.enabled=false, or cluster.writePath=true" -}}
{{- end -}}
{{- $cnpg := .Values.cnpg -}}
{{- $replication := $cnpg.replication -}}
{{- $site := .Values.cluster.name -}}
{{- if and $cnpg.enabled $replication.clusters -}}
{{- if lt (len $replication.clusters) 2 -}}
{{- fail "cnpg.replication.clusters names one site: a distributed topology needs at least two, or leave it empty" -}}
{{- end -}}
{{- if not (has $site $replication.clusters) -}}
{{- fail (printf "cluster.name %q is not in cnpg.replication.clusters %v" $site $replication.clusters) -}}
{{- end -}}
{{- if not (has $replication.primary $replication.clusters) -}}
{{- fail (printf "cnpg.replication.primary %q is not in cnpg.replication.clusters %v: name the one site whose databases accept writes, the same in every release" $replication.primary $replication.clusters) -}}
{{- end -}}
{{- $isPrimary := and (eq $replication.primary $site) (not $cnpg.fenced) -}}
{{- if and .Values.cluster.writePath (not $isPrimary) -}}
{{- fail (printf "cluster.writePath is true but this site (%s) is not the writer (cnpg.replication.primary is %q%s): its databases refuse writes, and a second write path is a second ledger. Set cluster.writePath=false, lancamentos.enabled=false, dispatcher.enabled=false, fiscal.enabled=false" $site $replication.primary (ternary ", and it is fenced" "" (and (eq $replication.primary $site) $cnpg.fenced))) -}}
{{- end -}}
{{- if and $isPrimary (not .Values.cluster.writePath) -}}
{{- fail (printf "cnpg.replication.primary is this site (%s) but cluster.writePath is false: the ledger would accept no entry anywhere. Set cluster.writePath=true" $site) -}}
{{- end -}}
{{- /* Stale values (a site's file from before a failover) must not move the primary
back: the live Clusters say who it is now, and only the runbook, which sets movePrimary,
may change it. `helm template` sees no live objects, so this holds on install and upgrade
only. */ -}}
{{- range $database := $cnpg.databases -}}
{{- $name := include "caixa.cnpgClusterName" (dict "root" $ "database" $database) -}}
{{- $live := lookup "postgresql.cnpg.io/v1" "Cluster" $.Release.Namespace $name -}}
{{- $livePrimary := dig "spec" "replica" "primary" "" $live -}}
{{- $want := include "caixa.cnpgSiteName" (dict "root" $ "database" $database "site" $replication.primary) -}}
{{- if and $livePrimary (ne $livePrimary $want) (ne $replication.movePrimary $replication.primary) -}}
{{- fail (printf "the live Cluster %s names %s the primary, these values %s: moving the primary is the failover runbook's (caixa-mesh failover), which fences the old one first. Values from before a failover? Update them to primary %q" $name $livePrimary $want (trimPrefix (printf "%s-" $name) $livePrimary)) -}}
{{- end -}}
{{- end -}}
{{- if and (not (eq $replication.primary $site)) $replication.promotionTokens -}}
{{- fail "cnpg.replication.promotionTokens are set on a site that is not cnpg.replication.primary: a token promotes the site it is given to, so set primary to this site too" -}}
{{- end -}}
{{- else if and $cnpg.fenced .Values.cluster.writePath -}}
{{- fail "cnpg.fenced is true but cluster.writePath is true: a fenced database accepts no writes. Set cluster.writePath=false, lancamentos.enabled=false, dispatcher.enabled=false, fiscal.enabled=false" -}}
{{- end -}}
{{- end -}}

{{/* The Cluster of `database` at `site`, as CNPG's distributed topology names it.
Never truncated: two sites' names must not meet. */}}
{{- define "caixa.cnpgSiteName" -}}
{{- $name := printf "%s-%s" (include "caixa.cnpgClusterName" .) .site -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "the CloudNativePG server name %q is longer than 63 characters: shorten the release name or cluster.name" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* Backups leave the site (cnpg.backup.offSite): an object store inside this cluster
dies with it. */}}
{{- define "caixa.cnpgOffSiteGuard" -}}
{{- $backup := .Values.cnpg.backup -}}
{{- if $backup.offSite -}}
{{- $host := (urlParse (default "https://s3.amazonaws.com" $backup.endpointURL)).hostname -}}
{{- /* A Service (name, name.namespace, ….svc, ….cluster.local) or a private address is
this site's own. */ -}}
{{- $private := regexMatch "^(10\\.|192\\.168\\.|172\\.(1[6-9]|2[0-9]|3[01])\\.|127\\.|169\\.254\\.)" $host -}}
{{- if or (hasSuffix ".svc" $host) (hasSuffix ".cluster.local" $host) (lt (len (splitList "." $host)) 3) $private -}}
{{- fail (printf "cnpg.backup.endpointURL %q is inside this cluster: the backups would die with it. Archive off-site (another site's or a provider's object store), or set cnpg.backup.offSite=false for a throwaway cluster" $backup.endpointURL) -}}
{{- end -}}
{{- range $peer := .Values.cnpg.objectStorePeers -}}
{{- if or (hasKey $peer "namespaceSelector") (hasKey $peer "podSelector") -}}
{{- fail "cnpg.objectStorePeers selects pods in this cluster: the backups would die with it. Name the off-site store's addresses (ipBlock), or set cnpg.backup.offSite=false" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "caixa.cnpgClusterName" -}}
{{- $name := include "caixa.componentName" (dict "root" .root "component" (printf "%s-pg" .database)) -}}
{{- /* CNPG refuses longer Cluster names (it derives its Services' and Jobs' from them). */ -}}
{{- if gt (len $name) 50 -}}
{{- fail (printf "the CloudNativePG Cluster name %q is longer than CloudNativePG's 50 characters: shorten the release name" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- /* The ObjectStore every CNPG Cluster archives to (root context). */}}
{{- define "caixa.cnpgObjectStoreName" -}}
{{ include "caixa.componentName" (dict "root" . "component" "pg-backups") }}
{{- end -}}

{{- /* Helm leaves the ledger's objects alone once made (cnpg.keepOnUninstall). */}}
{{- define "caixa.cnpgKeep" -}}
{{- if .Values.cnpg.keepOnUninstall -}}
annotations:
  helm.sh/resource-policy: keep
{{- end -}}
{{- end -}}

{{- /* The Barman Cloud plugin's CNPG-I name. */}}
{{- define "caixa.cnpgBackupPlugin" -}}
barman-cloud.cloudnative-pg.io
{{- end -}}
