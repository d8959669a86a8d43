"""Typed gRPC clients of the Caixa services, for internal Python callers.

`LancamentosClient`, `ConsolidadoClient` and `FiscalClient` block;
`AsyncLancamentosClient`, `AsyncConsolidadoClient` and `AsyncFiscalClient`
(`caixa.client.aio`, on `grpc.aio`) have the same methods, arguments and
defaults, awaited, with `async with` and `await close()`.
Both kinds default to the local gateway (or `$CAIXA_*_TARGET`), retry the
idempotent calls on `UNAVAILABLE` within each call's deadline, and raise every
failure as `CaixaError`.
"""

from caixa.client import audit_chain
from caixa.client.aio import AsyncConsolidadoClient, AsyncFiscalClient, AsyncLancamentosClient
from caixa.client.consolidado import ConsolidadoClient
from caixa.client.errors import CaixaError
from caixa.client.fiscal import FiscalClient
from caixa.client.lancamentos import LancamentosClient
from caixa.client.targets import (
    default_consolidado_target,
    default_fiscal_target,
    default_lancamentos_target,
)

__all__ = [
    "AsyncConsolidadoClient",
    "AsyncFiscalClient",
    "AsyncLancamentosClient",
    "CaixaError",
    "ConsolidadoClient",
    "FiscalClient",
    "LancamentosClient",
    "audit_chain",
    "default_consolidado_target",
    "default_fiscal_target",
    "default_lancamentos_target",
]
