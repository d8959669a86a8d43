"""One function per subcommand: parsed arguments in, text to print out."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice

from caixa.cli import views
from caixa.cli.audit import audit
from caixa.cli.connections import Connections
from caixa.cli.dates import business_today
from caixa.cli.exit_codes import SERVICE_FAILED, exit_code_for
from caixa.cli.fiscal import fiscal
from caixa.client import CaixaError
from caixa.client.request_fields import new_request_id

Command = Callable[[argparse.Namespace, Connections], str]

_MAX_PAGE_SIZE = 1000


@contextmanager
def _retry_hint(request_id: str) -> Iterator[None]:
    # After a failure we cannot tell whether the write landed; only the same
    # key makes a manual retry safe, so say which one it was.
    try:
        yield
    except CaixaError as error:
        if exit_code_for(error.code) == SERVICE_FAILED:
            error.add_note(
                f"hint: the outcome is unknown; retry with --request-id {request_id} "
                "so it is not recorded twice"
            )
        raise


def create(args: argparse.Namespace, connections: Connections) -> str:
    request_id = args.request_id or new_request_id()
    with _retry_hint(request_id):
        lancamento = connections.lancamentos.create_lancamento(
            args.merchant,
            args.kind,
            args.amount_cents,
            value_date=args.date,
            description=args.description,
            request_id=request_id,
        )
    return views.to_json(lancamento) if args.json else views.lancamento_detail(lancamento)


def get(args: argparse.Namespace, connections: Connections) -> str:
    lancamento = connections.lancamentos.get_lancamento(args.merchant, args.lancamento_id)
    return views.to_json(lancamento) if args.json else views.lancamento_detail(lancamento)


def list_(args: argparse.Namespace, connections: Connections) -> str:
    limit: int = args.limit
    entries = connections.lancamentos.iter_lancamentos(
        args.merchant,
        from_date=args.from_date,
        to_date=args.to_date,
        kind=args.kind,
        page_size=min(limit, _MAX_PAGE_SIZE) if limit else _MAX_PAGE_SIZE,
    )
    lancamentos = list(islice(entries, limit) if limit else entries)
    if args.json:
        return views.lancamentos_json(lancamentos)
    return views.lancamentos_table(lancamentos)


def reverse(args: argparse.Namespace, connections: Connections) -> str:
    request_id = args.request_id or new_request_id()
    with _retry_hint(request_id):
        lancamento = connections.lancamentos.reverse_lancamento(
            args.merchant,
            args.lancamento_id,
            request_id=request_id,
            value_date=args.date,
            description=args.description,
        )
    return views.to_json(lancamento) if args.json else views.lancamento_detail(lancamento)


def balance(args: argparse.Namespace, connections: Connections) -> str:
    day = args.date or business_today(args.timezone)
    daily = connections.consolidado.get_daily_balance(args.merchant, day)
    return views.to_json(daily) if args.json else views.balance_detail(daily)


def report(args: argparse.Namespace, connections: Connections) -> str:
    response = connections.consolidado.list_daily_balances(
        args.merchant, args.from_date, args.to_date
    )
    if args.json:
        return views.to_json(response)
    return views.balance_report(response.daily_balances)


COMMANDS: dict[str, Command] = {
    "create": create,
    "get": get,
    "list": list_,
    "reverse": reverse,
    "balance": balance,
    "report": report,
    "audit": audit,
    "fiscal": fiscal,
}
