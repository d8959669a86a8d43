"""How results and errors look on a terminal, or as JSON for scripts. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from consolidado.v1 import consolidado_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from lancamentos.v1 import lancamentos_pb2

from caixa.cli.money import format_brl
from caixa.cli.table import render_fields, render_table, terminal_safe
from caixa.client import CaixaError

_KIND_LABELS: dict[int, str] = {
    lancamentos_pb2.KIND_CREDIT: "credit",
    lancamentos_pb2.KIND_DEBIT: "debit",
}


def message_dict(message: Message) -> dict[str, Any]:
    # Zero amounts are printed too: a script reading `credits_cents` should
    # find "0", not a missing key.
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def to_json(value: Message | dict[str, Any]) -> str:
    data = message_dict(value) if isinstance(value, Message) else value
    return json.dumps(data, indent=2, ensure_ascii=False)


def lancamentos_json(lancamentos: Sequence[lancamentos_pb2.Lancamento]) -> str:
    return to_json({"lancamentos": [message_dict(item) for item in lancamentos]})


def kind_label(kind: int) -> str:
    return _KIND_LABELS.get(kind, "unspecified")


def lancamento_detail(lancamento: lancamentos_pb2.Lancamento) -> str:
    fields = [
        ("id", lancamento.lancamento_id),
        ("merchant", lancamento.merchant_id),
        ("kind", kind_label(lancamento.kind)),
        ("amount", format_brl(lancamento.amount_cents)),
        ("value date", lancamento.value_date),
        ("description", lancamento.description),
        ("request id", lancamento.request_id),
        ("created at", lancamento.created_at.ToJsonString()),
        ("sequence", str(lancamento.sequence)),
    ]
    if lancamento.reverses_lancamento_id:
        fields.append(("reverses", lancamento.reverses_lancamento_id))
    if lancamento.reversed_by_lancamento_id:
        fields.append(("reversed by", lancamento.reversed_by_lancamento_id))
    return render_fields(fields)


def lancamentos_table(lancamentos: Sequence[lancamentos_pb2.Lancamento]) -> str:
    if not lancamentos:
        return "no lancamentos"
    rows = [
        (
            item.value_date,
            kind_label(item.kind),
            format_brl(item.amount_cents),
            item.lancamento_id,
            _reversal_note(item),
            item.description,
        )
        for item in lancamentos
    ]
    headers = ("date", "kind", "amount", "id", "reversal", "description")
    return render_table(headers, rows, right_aligned={2})


def _reversal_note(lancamento: lancamentos_pb2.Lancamento) -> str:
    if lancamento.reverses_lancamento_id:
        return f"reverses {lancamento.reverses_lancamento_id}"
    if lancamento.reversed_by_lancamento_id:
        return f"reversed by {lancamento.reversed_by_lancamento_id}"
    return ""


def balance_detail(balance: consolidado_pb2.DailyBalance) -> str:
    as_of = balance.as_of.ToJsonString() if balance.HasField("as_of") else "no entries yet"
    return render_fields(
        [
            ("merchant", balance.merchant_id),
            ("date", balance.date),
            ("opening", format_brl(balance.opening_balance_cents)),
            ("credits", format_brl(balance.credits_cents)),
            ("debits", format_brl(balance.debits_cents)),
            ("net", format_brl(balance.net_cents)),
            ("closing", format_brl(balance.closing_balance_cents)),
            ("count", str(balance.lancamentos_count)),
            ("as of", as_of),
        ]
    )


REPORT_HEADERS = ("date", "opening", "credits", "debits", "net", "closing", "count")


def balance_report(balances: Sequence[consolidado_pb2.DailyBalance]) -> str:
    """One row per day, and a total: the range's first opening and last closing."""
    if not balances:
        return "no balances"
    rows = [
        (
            b.date,
            format_brl(b.opening_balance_cents),
            format_brl(b.credits_cents),
            format_brl(b.debits_cents),
            format_brl(b.net_cents),
            format_brl(b.closing_balance_cents),
            str(b.lancamentos_count),
        )
        for b in balances
    ]
    footer = (
        "total",
        format_brl(balances[0].opening_balance_cents),
        format_brl(sum(b.credits_cents for b in balances)),
        format_brl(sum(b.debits_cents for b in balances)),
        format_brl(sum(b.net_cents for b in balances)),
        format_brl(balances[-1].closing_balance_cents),
        str(sum(b.lancamentos_count for b in balances)),
    )
    return render_table(REPORT_HEADERS, rows, right_aligned=range(1, 7), footer=footer)


def error_lines(error: CaixaError) -> list[str]:
    """`error: CODE: message`; for bad fields `error: CODE` and one indented line
    per field (the server's message only repeats them)."""
    if error.field_violations:
        lines = [f"error: {error.code.name}"]
        lines += [f"  {field}: {description}" for field, description in error.field_violations]
    else:
        lines = [f"error: {error.code.name}: {error.message}"]
    return [terminal_safe(line) for line in lines]


def error_json(error: CaixaError, notes: list[str]) -> str:
    """The error as `--json` callers parse it."""
    body: dict[str, Any] = {"code": error.code.name, "message": error.message}
    if error.field_violations:
        body["field_violations"] = [
            {"field": field, "description": description}
            for field, description in error.field_violations
        ]
    if error.request_id:
        body["request_id"] = error.request_id
    if notes:
        body["notes"] = notes
    return json.dumps({"error": body}, ensure_ascii=False)
