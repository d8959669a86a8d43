"""The CLI never replays control characters from the server into a terminal."""

from __future__ import annotations

import grpc
from lancamentos.v1 import lancamentos_pb2 as pb

from caixa.cli import views
from caixa.client import CaixaError

HOSTILE = "caf\x1b[2J\x1b]0;pwned\x07é\r\nrow\x00\x9b\u2028"


def test_tables_and_details_show_controls_as_escapes() -> None:
    entry = pb.Lancamento(
        lancamento_id="0b7e9c3a-5d1f-4e8a-9c2b-6f1d2e3a4b5c",
        merchant_id="m1",
        kind=pb.KIND_CREDIT,
        amount_cents=100,
        value_date="2026-03-10",
        description=HOSTILE,
    )
    for text in (views.lancamentos_table([entry]), views.lancamento_detail(entry)):
        assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text)
        assert "\u2028" not in text
        assert "caf\\x1b[2J\\x1b]0;pwned\\x07é\\r\\nrow\\x00\\x9b\\u2028" in text
    # One entry is one line of the table: header, rule, row.
    assert len(views.lancamentos_table([entry]).splitlines()) == 3


def test_error_messages_show_controls_as_escapes() -> None:
    error = CaixaError(grpc.StatusCode.NOT_FOUND, "bad \x1b[31m")
    assert views.error_lines(error) == ["error: NOT_FOUND: bad \\x1b[31m"]
    error = CaixaError(grpc.StatusCode.INVALID_ARGUMENT, "bad", [("f", "x\ny")])
    assert views.error_lines(error) == ["error: INVALID_ARGUMENT", "  f: x\\ny"]
