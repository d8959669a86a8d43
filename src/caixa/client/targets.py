"""Where the clients connect when the caller names no target.

The one place for these defaults: a later change points both at the Envoy
gateway (localhost:8080) instead of the services themselves.
"""

from __future__ import annotations

import os

LANCAMENTOS_TARGET_ENV = "CAIXA_LANCAMENTOS_TARGET"
CONSOLIDADO_TARGET_ENV = "CAIXA_CONSOLIDADO_TARGET"
DEFAULT_LANCAMENTOS_TARGET = "localhost:50051"
DEFAULT_CONSOLIDADO_TARGET = "localhost:50052"


def default_lancamentos_target() -> str:
    """`$CAIXA_LANCAMENTOS_TARGET`, else the local lancamentos service."""
    return os.environ.get(LANCAMENTOS_TARGET_ENV) or DEFAULT_LANCAMENTOS_TARGET


def default_consolidado_target() -> str:
    """`$CAIXA_CONSOLIDADO_TARGET`, else the local consolidado service."""
    return os.environ.get(CONSOLIDADO_TARGET_ENV) or DEFAULT_CONSOLIDADO_TARGET
