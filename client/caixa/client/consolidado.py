"""Typed blocking client of `consolidado.v1.ConsolidadoService`."""

from __future__ import annotations

from consolidado.v1 import consolidado_pb2_grpc

from caixa.client import calls
from caixa.client.channel import ServiceClient
from caixa.client.methods import blocking_call
from caixa.client.service_config import CONSOLIDADO_SERVICE


class ConsolidadoClient(ServiceClient):
    """Reads consolidated daily balances. Every failure raises `CaixaError`.

    Both methods are reads, so the channel retries them on `UNAVAILABLE`
    within the call's deadline.
    """

    _service = CONSOLIDADO_SERVICE
    _stub_type = consolidado_pb2_grpc.ConsolidadoServiceStub

    get_daily_balance = blocking_call(calls.get_daily_balance)
    list_daily_balances = blocking_call(calls.list_daily_balances)
    list_audit_records = blocking_call(calls.list_audit_records)
