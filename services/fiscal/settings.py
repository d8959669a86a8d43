"""Settings of the fiscal service and its dispatcher towards lancamentos."""

from __future__ import annotations

from pydantic import Field

from services.platform.outbox.settings import OutboxSettings


class FiscalSettings(OutboxSettings):
    # No default: the chart and the local stack both set it (fiscal's sidecar).
    lancamentos_target: str = Field(
        "", description="gRPC target of lancamentos (fiscal's Envoy sidecar); to dispatch"
    )
    fiscal_trusted_cas_file: str | None = Field(
        None, description="PEM bundle of the CAs signatures must chain to (ICP-Brasil's)"
    )
    fiscal_require_trusted_signature: bool = Field(
        False,
        description="book only documents whose signature chains to FISCAL_TRUSTED_CAS_FILE",
    )
    fiscal_max_document_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, le=16 * 1024 * 1024, description="larger documents are refused"
    )
    fiscal_store_documents: bool = Field(
        True, description="keep each processed document's XML in the database"
    )
    # Many small calls per batch rather than one big one: see delivery.
    dispatch_batch_size: int = Field(64, ge=1, le=1000)
