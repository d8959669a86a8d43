"""Where the clients connect when the caller names no target: the Envoy
gateway of the local mesh, which serves every public service's gRPC (and REST)."""

from __future__ import annotations

import os

LANCAMENTOS_TARGET_ENV = "CAIXA_LANCAMENTOS_TARGET"
CONSOLIDADO_TARGET_ENV = "CAIXA_CONSOLIDADO_TARGET"
FISCAL_TARGET_ENV = "CAIXA_FISCAL_TARGET"
DEFAULT_LANCAMENTOS_TARGET = "localhost:8080"
DEFAULT_CONSOLIDADO_TARGET = "localhost:8080"
DEFAULT_FISCAL_TARGET = "localhost:8080"


def default_lancamentos_target() -> str:
    """`$CAIXA_LANCAMENTOS_TARGET`, else the local gateway."""
    return os.environ.get(LANCAMENTOS_TARGET_ENV) or DEFAULT_LANCAMENTOS_TARGET


def default_consolidado_target() -> str:
    """`$CAIXA_CONSOLIDADO_TARGET`, else the local gateway."""
    return os.environ.get(CONSOLIDADO_TARGET_ENV) or DEFAULT_CONSOLIDADO_TARGET


def default_fiscal_target() -> str:
    """`$CAIXA_FISCAL_TARGET`, else the local gateway."""
    return os.environ.get(FISCAL_TARGET_ENV) or DEFAULT_FISCAL_TARGET
