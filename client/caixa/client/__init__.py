"""Typed blocking gRPC clients of the Caixa services, for internal Python callers."""

from caixa.client.consolidado import ConsolidadoClient
from caixa.client.errors import CaixaError
from caixa.client.lancamentos import LancamentosClient
from caixa.client.targets import default_consolidado_target, default_lancamentos_target

__all__ = [
    "CaixaError",
    "ConsolidadoClient",
    "LancamentosClient",
    "default_consolidado_target",
    "default_lancamentos_target",
]
