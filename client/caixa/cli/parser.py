"""The `caixa` command line: its subcommands and flags, nothing else."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from caixa.cli import arguments, traces
from caixa.cli.dates import TIMEZONE_ENV, default_timezone
from caixa.cli.exit_codes import CHAIN_BROKEN, DOCUMENTS_FAILED
from caixa.client.channel import TOKEN_ENV
from caixa.client.targets import (
    CONSOLIDADO_TARGET_ENV,
    FISCAL_TARGET_ENV,
    LANCAMENTOS_TARGET_ENV,
    default_consolidado_target,
    default_fiscal_target,
    default_lancamentos_target,
)

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_LIST_LIMIT = 50


def _add_global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Each subcommand repeats the global flags with SUPPRESS defaults, so
    # `caixa --json balance ...` and `caixa balance ... --json` both work
    # without the subcommand resetting a value given before it.
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    # Defaults are spelled into the help: "%(default)s" would show SUPPRESS.
    lancamentos_target = default_lancamentos_target()
    consolidado_target = default_consolidado_target()
    fiscal_target = default_fiscal_target()

    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the result as JSON (proto field names) instead of text",
    )
    parser.add_argument(
        "--lancamentos-target",
        metavar="HOST:PORT",
        default=default(lancamentos_target),
        help=f"lancamentos address (env {LANCAMENTOS_TARGET_ENV}; default {lancamentos_target})",
    )
    parser.add_argument(
        "--consolidado-target",
        metavar="HOST:PORT",
        default=default(consolidado_target),
        help=f"consolidado address (env {CONSOLIDADO_TARGET_ENV}; default {consolidado_target})",
    )
    parser.add_argument(
        "--fiscal-target",
        metavar="HOST:PORT",
        default=default(fiscal_target),
        help=f"fiscal address (env {FISCAL_TARGET_ENV}; default {fiscal_target})",
    )
    zone = default_timezone()
    parser.add_argument(
        "--timezone",
        type=arguments.time_zone,
        metavar="ZONE",
        default=default(zone),
        help=f"the services' BUSINESS_TIMEZONE, which says what day 'today' is "
        f"(env {TIMEZONE_ENV}; default {zone})",
    )
    parser.add_argument(
        "--token",
        metavar="JWT",
        default=default(None),
        help=f"bearer token sent on every call (env {TOKEN_ENV}; see `caixa token`)",
    )
    parser.add_argument(
        "--timeout",
        type=arguments.timeout_seconds,
        metavar="SECONDS",
        default=default(DEFAULT_TIMEOUT_SECONDS),
        help=f"deadline of each call, retries included (default {DEFAULT_TIMEOUT_SECONDS})",
    )


EPILOG = """\
exit status: 0 success; 1 the service could not answer (unavailable, deadline
exceeded, internal error): the same command may work later; 2 the request was
rejected or malformed (usage, invalid argument, not found, already exists,
failed precondition, permission): fix it before rerunning; 3 `audit verify`
found the chain altered; 4 `fiscal validate|summary|process`: some file did
not pass (its row says why); 130 interrupted.
"""


class Parser(argparse.ArgumentParser):
    """Usage errors in two lines: what is wrong, and where the help is; the
    usage block argparse prints first buried the one line that matters."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="caixa",
        description="Record and inspect merchants' lancamentos and daily balances,\n"
        "and check and book their NF-e invoices.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_flags(parser, suppress=False)
    global_flags = Parser(add_help=False)
    _add_global_flags(global_flags, suppress=True)

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, parents=[global_flags])
        sub.add_argument("--merchant", required=True, help="the merchant id")
        return sub

    create = command("create", "record a credit or a debit")
    create.add_argument("--kind", required=True, choices=("credit", "debit"))
    amount = create.add_mutually_exclusive_group(required=True)
    amount.add_argument(
        "--amount",
        dest="amount_cents",
        type=arguments.brl_amount,
        metavar="REAIS",
        help="amount in reais with '.' before the centavos, e.g. 10.50",
    )
    amount.add_argument(
        "--amount-cents",
        dest="amount_cents",
        type=arguments.amount_cents,
        metavar="N",
        help="amount in centavos, e.g. 1050",
    )
    create.add_argument("--date", type=arguments.iso_date, help="value date (default today)")
    create.add_argument("--description", default="")
    create.add_argument("--request-id", help="idempotency key; reuse it when retrying by hand")

    get = command("get", "show one lancamento")
    get.add_argument("lancamento_id", metavar="ID")

    listing = command("list", "list lancamentos by value date")
    listing.add_argument("--from", dest="from_date", type=arguments.iso_date, metavar="DATE")
    listing.add_argument("--to", dest="to_date", type=arguments.iso_date, metavar="DATE")
    listing.add_argument("--kind", choices=("credit", "debit"))
    listing.add_argument(
        "--limit",
        type=arguments.non_negative_int,
        default=DEFAULT_LIST_LIMIT,
        metavar="N",
        help="show at most N lancamentos; 0 shows all (default %(default)s)",
    )

    reverse = command("reverse", "reverse (estornar) a lancamento")
    reverse.add_argument("lancamento_id", metavar="ID")
    reverse.add_argument("--date", type=arguments.iso_date, help="value date (default today)")
    reverse.add_argument("--description", default="")
    reverse.add_argument("--request-id", help="idempotency key; reuse it when retrying by hand")

    balance = command("balance", "show the consolidated balance of one day")
    balance.add_argument(
        "--date", type=arguments.iso_date, help="the day (default today in --timezone)"
    )

    report = command("report", "daily balances of a date range as a table")
    report.add_argument("--from", dest="from_date", type=arguments.iso_date, required=True)
    report.add_argument("--to", dest="to_date", type=arguments.iso_date, required=True)

    audit = command("audit", "an admin's view of a service's audit trail, and its check")
    audit.add_argument(
        "action",
        choices=("list", "verify"),
        help="list: one page of records; verify: recompute the whole hash chain "
        f"(exit {CHAIN_BROKEN} if it was altered)",
    )
    audit.add_argument(
        "--service",
        choices=("lancamentos", "consolidado", "fiscal"),
        default="lancamentos",
        help="whose trail: lancamentos' entries, consolidado's rebuilds, or fiscal's "
        "processed documents (default %(default)s); --merchant '*' for operations on "
        "every merchant",
    )
    audit.add_argument(
        "--after",
        type=arguments.non_negative_int,
        default=0,
        metavar="POSITION",
        help="list: records after this position (default 0, the start)",
    )
    audit.add_argument(
        "--limit",
        type=arguments.non_negative_int,
        default=100,
        metavar="N",
        help="list: at most N records, up to 1000 (default %(default)s)",
    )

    _add_fiscal(commands, global_flags)

    commands.add_parser(
        "health",
        help="each service's gRPC health: exit 0 only if both are SERVING",
        parents=[global_flags],
    )

    token = commands.add_parser(
        "token",
        help="print a JWT signed with the local dev key (created if missing)",
        description="Mints a token for `make run`'s stack. Use it as "
        "`export CAIXA_TOKEN=$(caixa token --merchant m1 --scope 'lancamentos:write "
        "lancamentos:read consolidado:read')`.",
    )
    token.add_argument(
        "--merchant",
        dest="merchants",
        action="append",
        required=True,
        help="a merchant the token may act for; repeat for more; '*' for every merchant",
    )
    token.add_argument(
        "--scope",
        required=True,
        help="space-separated: lancamentos:write lancamentos:read consolidado:read "
        "fiscal:write fiscal:read admin",
    )
    token.add_argument(
        "--ttl", type=arguments.duration_seconds, default=3600.0, help="lifetime, e.g. 30m, 1h"
    )
    token.add_argument("--subject", default="dev-user", help="the token's sub (default dev-user)")

    _add_trace(commands)
    return parser


def _add_trace(commands: argparse._SubParsersAction[Any]) -> None:
    trace = commands.add_parser(
        "trace",
        help="show a request's trace through the local stack",
        description="Reads the trace receiver `make run` starts. Every gateway answer "
        "names its trace in the x-trace-id header; `caixa trace ID` draws it, "
        "`caixa trace --last` the newest, `caixa trace` lists the newest traces.",
    )
    which = trace.add_mutually_exclusive_group()
    which.add_argument("trace_id", nargs="?", metavar="TRACE_ID", help="32 hex digits")
    which.add_argument("--last", action="store_true", help="draw the newest trace")
    trace.add_argument(
        "--limit", type=arguments.trace_limit, default=20, help="traces to list (default 20)"
    )
    trace.add_argument(
        "--url",
        help=f"the receiver's query URL (default ${traces.TRACE_URL_ENV} or "
        f"{traces.DEFAULT_TRACE_URL})",
    )


FISCAL_DESCRIPTION = f"""\
NF-e and NFC-e XML files (nfeProc, NFe, or a cancellation's procEventoNFe)
checked, read and booked by the fiscal service: one row per file, in the order
given. validate and summary send several files on one stream (its deadline:
--timeout per file); process books each file in turn (idempotent on the access
key: rerunning books nothing twice). A file that cannot be read, or holds no
NF-e, is a row saying so. Exit {DOCUMENTS_FAILED} when any file is invalid, has no summary,
is rejected or cannot be read. Tokens need fiscal:write (fiscal:read for get).
"""


def _add_fiscal(commands: argparse._SubParsersAction[Any], global_flags: Parser) -> None:
    fiscal = commands.add_parser(
        "fiscal",
        help="validate, summarize and book NF-e XML files",
        description=FISCAL_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[global_flags],
    )
    actions = fiscal.add_subparsers(dest="fiscal_command", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text, parents=[global_flags]
        )
        return sub

    files_help = "NF-e XML files"
    validate = action("validate", "the verdict on each file: SEFAZ's schema and rules, signature")
    validate.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    summary = action("summary", "what each invoice says: parties, vNF, installments, protocol")
    summary.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    process = action(
        "process",
        "book each authorized invoice as the merchant's lancamentos, "
        "or reverse them for a cancellation",
    )
    process.add_argument("--merchant", required=True, help="the merchant id")
    process.add_argument(
        "--document",
        type=arguments.cnpj_or_cpf,
        metavar="CNPJ",
        help="the merchant's CNPJ (or CPF), which says whether it sold or bought "
        "(default: the one fiscal has on record for the merchant)",
    )
    process.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    get = action("get", "show one processed document, its status and its entries")
    get.add_argument("--merchant", required=True, help="the merchant id")
    get.add_argument("access_key", metavar="ACCESS_KEY", help="the 44-character access key")
    register = action(
        "register", "record the merchant's CNPJ (or CPF), which process then uses (scope admin)"
    )
    register.add_argument("--merchant", required=True, help="the merchant id")
    register.add_argument(
        "--document", type=arguments.cnpj_or_cpf, metavar="CNPJ", required=True, help="its CNPJ"
    )
