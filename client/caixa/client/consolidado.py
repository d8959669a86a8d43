"""Typed blocking client of `consolidado.v1.ConsolidadoService`."""

from __future__ import annotations

import grpc
from consolidado.v1 import consolidado_pb2, consolidado_pb2_grpc

from caixa.client.channel import Metadata, ServiceClient
from caixa.client.errors import raising_caixa_errors
from caixa.client.request_fields import DateLike, to_date_field
from caixa.client.service_config import CONSOLIDADO_SERVICE
from caixa.client.targets import default_consolidado_target


class ConsolidadoClient(ServiceClient):
    """Reads consolidated daily balances. Every failure raises `CaixaError`.

    Both methods are reads, so the channel retries them on `UNAVAILABLE`
    within the call's deadline.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = 5.0,
        channel_credentials: grpc.ChannelCredentials | None = None,
        metadata: Metadata = (),
    ) -> None:
        super().__init__(
            target or default_consolidado_target(),
            CONSOLIDADO_SERVICE,
            timeout=timeout,
            channel_credentials=channel_credentials,
            metadata=metadata,
        )
        self._stub = consolidado_pb2_grpc.ConsolidadoServiceStub(self.channel)

    def get_daily_balance(
        self, merchant_id: str, date: DateLike, *, timeout: float | None = None
    ) -> consolidado_pb2.DailyBalance:
        request = consolidado_pb2.GetDailyBalanceRequest(
            merchant_id=merchant_id, date=to_date_field(date)
        )
        with raising_caixa_errors():
            return self._stub.GetDailyBalance(
                request, timeout=self._deadline(timeout), metadata=self._call_metadata
            )

    def list_daily_balances(
        self,
        merchant_id: str,
        from_date: DateLike,
        to_date: DateLike,
        *,
        timeout: float | None = None,
    ) -> consolidado_pb2.ListDailyBalancesResponse:
        """One balance per calendar day of the range (at most 366 days)."""
        request = consolidado_pb2.ListDailyBalancesRequest(
            merchant_id=merchant_id,
            from_date=to_date_field(from_date),
            to_date=to_date_field(to_date),
        )
        with raising_caixa_errors():
            return self._stub.ListDailyBalances(
                request, timeout=self._deadline(timeout), metadata=self._call_metadata
            )
