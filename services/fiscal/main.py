"""`python -m services.fiscal serve|dispatch|migrate`."""

from __future__ import annotations

import argparse
import logging
import sys

from services.fiscal.app import MIGRATIONS, FiscalApp
from services.fiscal.settings import FiscalSettings
from services.platform import runtime
from services.platform.grpc_server import wait_for_termination_signal
from services.platform.logging import configure_logging
from services.platform.migrations import migrate_command
from services.platform.settings import MissingSetting, settings_or_exit

log = logging.getLogger("services.fiscal")


async def _run(settings: FiscalSettings, *, serve: bool, dispatch: bool) -> None:
    app = FiscalApp(settings, serve=serve, dispatch=dispatch)
    await app.start()
    log.info(
        "fiscal serving" if serve else "fiscal dispatching", extra={"address": app.server.address}
    )
    try:
        await wait_for_termination_signal()
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="caixa-fiscal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the gRPC service (and dispatch, unless told not to)")
    commands.add_parser("dispatch", help="deliver the booked entries to lancamentos only")
    commands.add_parser("migrate", help="upgrade the database schema")
    args = parser.parse_args()
    settings = settings_or_exit(FiscalSettings, parser.prog)
    configure_logging(settings.log_level)
    dispatches = args.command == "dispatch" or (args.command == "serve" and settings.run_dispatcher)
    try:
        if dispatches:
            settings.require("lancamentos_target")
    except MissingSetting as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    if args.command == "migrate":
        sys.exit(
            migrate_command(
                "fiscal", MIGRATIONS, settings.database_url, settings.migrate_wait_seconds
            )
        )
    elif args.command == "serve":
        runtime.run(_run(settings, serve=True, dispatch=settings.run_dispatcher))
    else:
        runtime.run(_run(settings, serve=False, dispatch=True))


if __name__ == "__main__":
    main()
