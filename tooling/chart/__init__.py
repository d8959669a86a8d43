"""Checks of the Helm chart in `helm/caixa` (rendered by `mesh.chart`): its values
schema kept in step with the mesh policy model, and evaluators of the NetworkPolicies
and AuthorizationPolicies it renders."""
