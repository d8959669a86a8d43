{{- /*
PostgreSQL connections, per database, at the autoscalers' maximums plus a rollout's
surge (25 %, rounded up): each process opens up to 2 × databasePoolSize (pool plus
overflow) and, where it has an outbox (lancamentos, the dispatcher, fiscal), one LISTEN
connection; migrate opens two. CloudNativePG's max_connections is derived from it; a
server the chart does not manage must allow it (databaseConnections.serverMaxConnections),
or rendering fails.
In a distributed topology every site counts the write path as if it ran it: a hot
standby refuses to replay with a lower max_connections than its primary's, and any site
may become the primary.
*/ -}}
{{- define "caixa.databaseConnections" -}}
{{- $root := . -}}
{{- $databases := list "lancamentos" "consolidado" "fiscal" -}}
{{- $need := dict -}}
{{- range $database := $databases }}{{ $_ := set $need $database 0 }}{{ end -}}
{{- $listens := list "lancamentos" "dispatcher" "fiscal" -}}
{{- range $component, $database := dict "lancamentos" "lancamentos" "dispatcher" "lancamentos" "consolidado" "consolidado" "fiscal" "fiscal" -}}
{{- $values := index $root.Values $component -}}
{{- $everySite := and $root.Values.cnpg.enabled $root.Values.cnpg.replication.clusters -}}
{{- if or $values.enabled (and $everySite (ne $component "consolidado")) -}}
{{- $max := int $values.replicaCount -}}
{{- if and $values.autoscaling $values.autoscaling.enabled -}}{{- $max = int $values.autoscaling.maxReplicas -}}{{- end -}}
{{- $processes := add $max (div (add $max 3) 4) -}}
{{- $each := add (mul 2 (int $values.databasePoolSize)) (ternary 1 0 (has $component $listens)) -}}
{{- $_ := set $need $database (add (index $need $database) (mul $processes $each)) -}}
{{- end -}}
{{- end -}}
{{- if or (and $root.Values.cluster.writePath $root.Values.migrations.enabled) (and $root.Values.cnpg.enabled $root.Values.cnpg.replication.clusters) -}}
{{- range $database := $databases -}}
{{- $_ := set $need $database (add (index $need $database) 2) -}}
{{- end -}}
{{- end -}}
{{- range $database, $n := $need -}}
{{- $_ := set $need $database (add $n (int $root.Values.databaseConnections.reserved)) -}}
{{- end -}}
{{- toJson $need -}}
{{- end -}}

{{- /* max_connections for a CNPG-managed database: what the release needs, at least 100. */ -}}
{{- define "caixa.cnpgMaxConnections" -}}
{{- $need := index (include "caixa.databaseConnections" .root | fromJson) .database -}}
{{- max 100 (int $need) -}}
{{- end -}}

{{- define "caixa.databaseConnectionsGuard" -}}
{{- $need := include "caixa.databaseConnections" . | fromJson -}}
{{- range $database, $n := $need -}}
{{- $managed := and $.Values.cnpg.enabled (has $database $.Values.cnpg.databases) -}}
{{- $allowed := int (index $.Values.databaseConnections.serverMaxConnections $database) -}}
{{- if and (not $managed) (gt (int $n) $allowed) -}}
{{- fail (printf "the %s database's clients may open %d connections at the autoscalers' maximums (each process 2 × databasePoolSize, plus LISTEN and migrate, plus databaseConnections.reserved %d), but its server allows %d (databaseConnections.serverMaxConnections.%s): past that PostgreSQL refuses them and requests fail UNAVAILABLE. Raise the server's max_connections, or lower databasePoolSize or autoscaling.maxReplicas" $database (int $n) (int $.Values.databaseConnections.reserved) $allowed $database) -}}
{{- end -}}
{{- end -}}
{{- end -}}
