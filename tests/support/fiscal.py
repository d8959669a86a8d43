"""fiscal under test: its settings (quick to shut down, quick to retry) and its requests."""

from __future__ import annotations

from fiscal.v1 import fiscal_pb2 as pb
from google.api.httpbody_pb2 import HttpBody

from services.fiscal.settings import FiscalSettings


def fiscal_settings(database_url: str, **overrides: object) -> FiscalSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "grpc_port": 0,
        "lancamentos_target": "127.0.0.1:1",
        "shutdown_grace_seconds": 1.0,
        "dispatch_drain_seconds": 0.0,
        "dispatch_poll_seconds": 0.2,
        "dispatch_backoff_base_seconds": 0.02,
        "dispatch_backoff_max_seconds": 0.2,
        **overrides,
    }
    return FiscalSettings.model_validate(values)


def xml(data: bytes) -> HttpBody:
    return HttpBody(content_type="application/xml", data=data)


def process_request(
    merchant_id: str, data: bytes, merchant_document: str = ""
) -> pb.ProcessDocumentRequest:
    return pb.ProcessDocumentRequest(
        merchant_id=merchant_id, merchant_document=merchant_document, document=xml(data)
    )
