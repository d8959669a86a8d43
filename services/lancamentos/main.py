"""`python -m services.lancamentos serve|dispatch|migrate`."""

from __future__ import annotations

import argparse
import logging
import sys

from services.lancamentos.app import MIGRATIONS, LancamentosApp
from services.lancamentos.settings import LancamentosSettings
from services.platform import runtime
from services.platform.grpc_server import wait_for_termination_signal
from services.platform.logging import configure_logging
from services.platform.migrations import migrate_command
from services.platform.settings import MissingSetting, settings_or_exit

log = logging.getLogger("services.lancamentos")


async def _run(settings: LancamentosSettings, *, serve: bool, dispatch: bool) -> None:
    app = LancamentosApp(settings, serve=serve, dispatch=dispatch)
    await app.start()
    log.info("lancamentos serving", extra={"address": app.server.address})
    try:
        await wait_for_termination_signal()
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="caixa-lancamentos", description=__doc__)
    parser.add_argument("command", choices=["serve", "dispatch", "migrate"])
    args = parser.parse_args()
    settings = settings_or_exit(LancamentosSettings, parser.prog)
    configure_logging(settings.log_level)
    dispatches = args.command == "dispatch" or (args.command == "serve" and settings.run_dispatcher)
    try:
        if dispatches:
            settings.require("consolidado_target")
    except MissingSetting as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    if args.command == "migrate":
        sys.exit(
            migrate_command(
                "lancamentos", MIGRATIONS, settings.database_url, settings.migrate_wait_seconds
            )
        )
    elif args.command == "serve":
        runtime.run(_run(settings, serve=True, dispatch=settings.run_dispatcher))
    else:
        runtime.run(_run(settings, serve=False, dispatch=True))


if __name__ == "__main__":
    main()
