"""The clients one CLI run needs, opened on first use and closed at the end."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from caixa.client import ConsolidadoClient, FiscalClient, LancamentosClient
from caixa.client.targets import default_fiscal_target


class Connections:
    """Opens only the channel a command uses, so `balance` works while
    lancamentos is unreachable, and the reverse; `fiscal` likewise."""

    def __init__(
        self,
        lancamentos_target: str,
        consolidado_target: str,
        timeout: float,
        token: str | None = None,
        fiscal_target: str | None = None,
    ) -> None:
        self._token = token  # None: the clients read $CAIXA_TOKEN
        self._lancamentos_target = lancamentos_target
        self._consolidado_target = consolidado_target
        self._fiscal_target = fiscal_target or default_fiscal_target()
        self._timeout = timeout
        self._lancamentos: LancamentosClient | None = None
        self._consolidado: ConsolidadoClient | None = None
        self._fiscal: FiscalClient | None = None

    @property
    def lancamentos(self) -> LancamentosClient:
        if self._lancamentos is None:
            self._lancamentos = LancamentosClient(
                self._lancamentos_target, timeout=self._timeout, token=self._token
            )
        return self._lancamentos

    @property
    def consolidado(self) -> ConsolidadoClient:
        if self._consolidado is None:
            self._consolidado = ConsolidadoClient(
                self._consolidado_target, timeout=self._timeout, token=self._token
            )
        return self._consolidado

    @property
    def fiscal(self) -> FiscalClient:
        if self._fiscal is None:
            self._fiscal = FiscalClient(
                self._fiscal_target, timeout=self._timeout, token=self._token
            )
        return self._fiscal

    def close(self) -> None:
        for client in (self._lancamentos, self._consolidado, self._fiscal):
            if client is not None:
                client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
