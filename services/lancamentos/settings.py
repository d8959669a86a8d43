"""Settings of the lancamentos service and its outbox dispatcher."""

from __future__ import annotations

from pydantic import Field

from services.platform.outbox.settings import OutboxSettings


class LancamentosSettings(OutboxSettings):
    # No default: the chart and the local stack (values-local.yaml) both set it.
    consolidado_target: str = Field(
        "", description="gRPC target of consolidado's ingest (its Envoy sidecar); to dispatch"
    )
    group_commit_max_batch: int = Field(256, ge=1, le=5000)
    import_chunk_size: int = Field(2000, ge=1, le=10000)
