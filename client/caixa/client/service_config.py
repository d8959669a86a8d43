"""The gRPC service config that lets the channel retry idempotent calls.

Only methods that are safe to repeat get a retry policy: reads, the
mutations that carry a `request_id` (the server deduplicates them), and
fiscal's document calls (a verdict on the document alone, or booking keyed on
its access key). The streaming RPCs never do: a retried import, change feed or
document stream would restart from the caller's iterator or sequence, which
only the caller can decide.
"""

from __future__ import annotations

import json
from typing import Any

LANCAMENTOS_SERVICE = "lancamentos.v1.LancamentosService"
CONSOLIDADO_SERVICE = "consolidado.v1.ConsolidadoService"
FISCAL_SERVICE = "fiscal.v1.FiscalService"

RETRYABLE_METHODS: dict[str, tuple[str, ...]] = {
    LANCAMENTOS_SERVICE: (
        "CreateLancamento",
        "GetLancamento",
        "ListLancamentos",
        "ReverseLancamento",
        "SummarizeLancamentos",
        "ListAuditRecords",
    ),
    CONSOLIDADO_SERVICE: ("GetDailyBalance", "ListDailyBalances", "ListAuditRecords"),
    # Not ValidateDocuments / SummarizeDocuments: bidirectional streams.
    FISCAL_SERVICE: (
        "ValidateDocument",
        "SummarizeDocument",
        "ProcessDocument",
        "GetDocument",
        "RegisterMerchant",
        "ListAuditRecords",
    ),
}

# Four attempts with 0.1 s → 0.2 s → 0.4 s (jittered) backoff fit well inside
# the default 5 s deadline, which still bounds the whole call.
RETRY_POLICY: dict[str, Any] = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


# Retries stop while the channel's calls keep failing: each failed attempt takes a
# token, each success gives back 0.1, and retries run only above half of the 10
# tokens. So once a service is down, a channel adds about 5 retries in all, not 3
# per call, to the load on a server already struggling (gRPC's retry throttling, A6).
RETRY_THROTTLING: dict[str, Any] = {"maxTokens": 10, "tokenRatio": 0.1}


def build_service_config(service: str) -> dict[str, Any]:
    """The service config for a channel to `service` (its full proto name)."""
    methods = RETRYABLE_METHODS.get(service, ())
    if not methods:
        return {}
    return {
        "methodConfig": [
            {
                "name": [{"service": service, "method": method} for method in methods],
                "retryPolicy": dict(RETRY_POLICY),
            }
        ],
        "retryThrottling": dict(RETRY_THROTTLING),
    }


def service_config_json(service: str) -> str:
    """`build_service_config` as the JSON the `grpc.service_config` option takes."""
    return json.dumps(build_service_config(service), separators=(",", ":"))
