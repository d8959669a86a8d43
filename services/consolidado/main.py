"""`python -m services.consolidado serve|migrate|rebuild|reconcile`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from google.protobuf import json_format

from services.consolidado.app import MIGRATIONS, ConsolidadoApp
from services.consolidado.conversions import reconcile_response
from services.consolidado.drifts import ReconcileReport
from services.consolidado.rebuild import rebuild
from services.consolidado.requests import day_range
from services.consolidado.settings import ConsolidadoSettings
from services.domain.errors import DomainError, Unavailable
from services.platform import runtime
from services.platform.grpc_server import wait_for_termination_signal
from services.platform.logging import configure_logging
from services.platform.migrations import migrate_command
from services.platform.outages import is_dependency_outage
from services.platform.settings import MissingSetting, settings_or_exit
from services.platform.stack_flags import StackFlag, add_stack_flags, stack_settings

log = logging.getLogger("services.consolidado")

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_INVALID = 2
EXIT_UNAVAILABLE = 3

# Which stack reconcile and rebuild act on: flag, else variable, else the running
# local stack. Redis is optional to them: they neither read nor fill the cache.
STACK_FLAGS = (
    StackFlag("database_url", "consolidado's database"),
    StackFlag("lancamentos_target", "lancamentos' gRPC address"),
    StackFlag("redis_url", "the balance cache", needed=False),
    StackFlag("workload_token_file", "the identity token sent to lancamentos' feed", needed=False),
)


async def serve(settings: ConsolidadoSettings) -> None:
    app = ConsolidadoApp(settings)
    await app.start()
    assert app.server is not None
    log.info("consolidado serving", extra={"address": app.server.address})
    try:
        await wait_for_termination_signal()
    finally:
        await app.stop()


async def rebuild_command(settings: ConsolidadoSettings, merchant_id: str | None) -> int:
    whom = f"merchant {merchant_id}" if merchant_id else "every merchant"
    print(
        f"rebuilding {whom} from lancamentos' change feed ({settings.lancamentos_target}) "
        "into shadow tables; readers keep the current balances until the swap, which "
        "replaces them in one transaction",
        flush=True,
    )
    async with ConsolidadoApp(settings, serve=False) as app:
        try:
            report = await rebuild(
                app.engine,
                app.lancamentos,
                merchant_id=merchant_id,
                batch_size=settings.rebuild_batch_size,
            )
        except DomainError as error:
            print(f"rebuild failed: {error.message}", file=sys.stderr)
            return EXIT_UNAVAILABLE if isinstance(error, Unavailable) else EXIT_INVALID
    print(
        f"rebuilt {len(report.merchants)} merchant(s): {report.applied} entries applied, "
        f"{report.duplicates} duplicates"
    )
    return EXIT_OK


async def reconcile_command(
    settings: ConsolidadoSettings,
    merchant_id: str,
    from_date: str,
    to_date: str,
    *,
    as_json: bool = False,
) -> int:
    """The Reconcile RPC's code path; exit 1 when any day drifts."""
    async with ConsolidadoApp(settings, serve=False) as app:
        try:
            report = await app.reconciler.reconcile(day_range(merchant_id, from_date, to_date))
        except DomainError as error:
            print(f"reconcile failed: {error.message}", file=sys.stderr)
            return EXIT_UNAVAILABLE if isinstance(error, Unavailable) else EXIT_INVALID
    if as_json:
        # The RPC's response in the proto3 JSON mapping, as REST clients see it.
        as_dict = json_format.MessageToDict(
            reconcile_response(report),
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
        print(json.dumps(as_dict, indent=2))
    else:
        print(_describe(merchant_id, report))
    return EXIT_DRIFT if report.drifts else EXIT_OK


def _describe(merchant_id: str, report: ReconcileReport) -> str:
    lines = [
        f"{merchant_id}: {report.days_checked} days checked, {len(report.drifts)} drifting, "
        f"{report.undelivered_count} entries not delivered yet"
        + (f", {report.parked_count} of them parked" if report.parked_count else "")
    ]
    for d in report.drifts:
        lines.append(
            f"  {d.day}  lancamentos: +{d.expected.credits_cents} -{d.expected.debits_cents} "
            f"({d.expected.lancamentos_count})  consolidado: +{d.actual.credits_cents} "
            f"-{d.actual.debits_cents} ({d.actual.lancamentos_count})"
        )
    if report.parked_count:
        lines.append(
            "  parked entries were refused by consolidado and wait for an operator: "
            "see `caixa-lancamentos parked`, fix the cause, then retry them"
        )
    elif report.drifts and report.undelivered_count:
        lines.append("  undelivered entries may explain the drift: re-run after delivery")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="caixa-consolidado", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the gRPC services")
    commands.add_parser("migrate", help="upgrade the database schema")
    rebuild_parser = commands.add_parser(
        "rebuild",
        help="recompute the consolidated data from lancamentos' change feed; readers see "
        "the old balances until the rebuilt ones replace them in one transaction",
    )
    rebuild_parser.add_argument("--merchant", help="only this merchant (default: all)")
    add_stack_flags(rebuild_parser, STACK_FLAGS)
    reconcile_parser = commands.add_parser(
        "reconcile",
        help="compare with lancamentos' per-day sums; exit 1 on drift",
        epilog="exit codes: 0 no drift, 1 drift, 2 invalid arguments, 3 a dependency is down",
    )
    reconcile_parser.add_argument("--merchant", required=True)
    reconcile_parser.add_argument("--from", dest="from_date", required=True, help="YYYY-MM-DD")
    reconcile_parser.add_argument("--to", dest="to_date", required=True, help="YYYY-MM-DD")
    reconcile_parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_stack_flags(reconcile_parser, STACK_FLAGS)
    return parser


def _outage_exit(command: str, error: BaseException) -> int:
    """A stack the command cannot reach: one line, and the 'unavailable' status."""
    print(f"{command} failed: a dependency is unavailable ({_short(error)})", file=sys.stderr)
    return EXIT_UNAVAILABLE


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("reconcile", "rebuild"):
        settings = stack_settings(
            ConsolidadoSettings, parser.prog, "consolidado", args, STACK_FLAGS
        )
    else:
        settings = settings_or_exit(ConsolidadoSettings, parser.prog)
    configure_logging(settings.log_level)
    try:
        if args.command != "migrate":
            settings.require("lancamentos_target")
    except MissingSetting as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    if args.command == "migrate":
        sys.exit(
            migrate_command(
                "consolidado", MIGRATIONS, settings.database_url, settings.migrate_wait_seconds
            )
        )
    if args.command == "serve":
        runtime.run(serve(settings))
        return
    try:
        if args.command == "rebuild":
            code = asyncio.run(rebuild_command(settings, args.merchant))
        else:
            code = asyncio.run(
                reconcile_command(
                    settings, args.merchant, args.from_date, args.to_date, as_json=args.json
                )
            )
    except Exception as error:
        if not is_dependency_outage(error):
            raise
        code = _outage_exit(args.command, error)
    sys.exit(code)


if __name__ == "__main__":
    main()
