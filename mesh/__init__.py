"""Mesh policy: one typed source (the `mesh:` key of the Helm values) from which the
local Envoy configs (here) and the Istio resources (the Helm chart) are both derived,
plus its linter.

Modules: `durations` (Go-style duration strings), `policy` (the schema), `values`
(loading and merging values files), `methods` (gRPC method names and the descriptor),
`effective` (what each route class really gets), `envoy_fields` (the Istio→Envoy field
mapping), `chart` (the chart rendered by the real Helm engine: the Istio side),
`descriptor` (the gateway's descriptor set), `render/` (Envoy bootstraps), `lint`,
`explain` and `cli`.
"""
