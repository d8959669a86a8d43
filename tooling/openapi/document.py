"""The OpenAPI document assembled, and rendered byte-for-byte reproducibly."""

from __future__ import annotations

import json

from tooling.openapi import errors
from tooling.openapi.descriptors import ProtoIndex
from tooling.openapi.paths import OperationBuilder
from tooling.openapi.schemas import Schema, SchemaBuilder

OPENAPI_VERSION = "3.0.3"
API_VERSION = "v1"
TITLE = "Caixa"
# The services the gateway's transcoder serves; consolidado's ingest service is internal.
PUBLIC_SERVICES = (
    "lancamentos.v1.LancamentosService",
    "consolidado.v1.ConsolidadoService",
    "fiscal.v1.FiscalService",
)

BEARER = "bearer"
BEARER_SCHEME: Schema = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A JWT with `sub`, `merchants` (merchant ids, or `*` for every merchant)"
    " and `scope` (space-separated: `lancamentos:write`, `lancamentos:read`,"
    " `consolidado:read`, `admin`). Locally, `caixa token` mints one.",
}
_DESCRIPTION = (
    "The REST/JSON interface of Caixa, served by Envoy's gRPC-JSON transcoder in front of"
    " the gRPC services. JSON uses the proto field names; 64-bit integers are strings and"
    " enums are their value names. Generated from the protos by `python -m tooling.openapi`;"
    " do not edit by hand."
)


def build(
    index: ProtoIndex, server_url: str, services: tuple[str, ...] = PUBLIC_SERVICES
) -> Schema:
    """The document for `services`, served at `server_url` (the local gateway)."""
    schemas = SchemaBuilder(index)
    operations = OperationBuilder(index, schemas)
    paths: dict[str, Schema] = {}
    tags: list[Schema] = []
    operation_ids: set[str] = set()
    for name in services:
        service = index.services[name]
        tag: Schema = {"name": name}
        if description := index.comment(service):
            tag["description"] = description
        tags.append(tag)
        for binding, operation in operations.operations(service):
            if operation["operationId"] in operation_ids:
                # The same RPC name in a later service (ListAuditRecords): qualified.
                operation["operationId"] = f"{service.proto.name}_{operation['operationId']}"
            if operation["operationId"] in operation_ids:
                raise ValueError(f"two operations are named {operation['operationId']}")
            operation_ids.add(operation["operationId"])
            item = paths.setdefault(binding.path, {})
            if binding.method in item:
                raise ValueError(f"{binding.method.upper()} {binding.path} is bound twice")
            item[binding.method] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": API_VERSION, "description": _DESCRIPTION},
        "servers": [{"url": server_url}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": {**schemas.components, **errors.SCHEMAS},
            "responses": errors.responses(),
            "securitySchemes": {BEARER: BEARER_SCHEME},
        },
        "security": [{BEARER: []}],
    }


def render(document: Schema) -> str:
    # Sorted keys and a fixed layout make a byte comparison a staleness check.
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
