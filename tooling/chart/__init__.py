"""The Helm chart in `helm/caixa`: render it with the real Helm engine, and keep its values
schema in step with the mesh policy model."""
