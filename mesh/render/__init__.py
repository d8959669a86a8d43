"""Envoy v3 bootstrap configs for the local mesh, as JSON-able dicts.

`gateway` (edge: transcoding, rate limits), `sidecars` (egress and inbound), `common`
(shared pieces), `rate_limit` (local token buckets), `local_replies` (JSON bodies for
REST), `bundle` (all of them, written).
"""

from mesh.render.bundle import LocalEnvoy, local_envoys, render_local_mesh

__all__ = ["LocalEnvoy", "local_envoys", "render_local_mesh"]
