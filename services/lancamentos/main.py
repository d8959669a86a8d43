"""`python -m services.lancamentos serve|dispatch|migrate|parked`."""

from __future__ import annotations

import argparse
import logging
import sys

from services.lancamentos import admin
from services.lancamentos.app import MIGRATIONS, LancamentosApp
from services.lancamentos.settings import LancamentosSettings
from services.platform import runtime
from services.platform.grpc_server import wait_for_termination_signal
from services.platform.logging import configure_logging
from services.platform.migrations import migrate_command
from services.platform.outages import is_dependency_outage
from services.platform.settings import MissingSetting, settings_or_exit
from services.platform.stack_flags import StackFlag, add_stack_flags, stack_settings

log = logging.getLogger("services.lancamentos")

# Which stack `parked` acts on: flag, else variable, else the running local stack.
STACK_FLAGS = (StackFlag("database_url", "lancamentos' database"),)


async def _run(settings: LancamentosSettings, *, serve: bool, dispatch: bool) -> None:
    app = LancamentosApp(settings, serve=serve, dispatch=dispatch)
    await app.start()
    role = "serving" if serve else "dispatching"
    log.info(f"lancamentos {role}", extra={"address": app.server.address})
    try:
        await wait_for_termination_signal()
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="caixa-lancamentos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the gRPC service (and dispatch, unless told not to)")
    commands.add_parser("dispatch", help="deliver the outbox to consolidado only")
    commands.add_parser("migrate", help="upgrade the database schema")
    parked = commands.add_parser(
        "parked", help="list the entries consolidado refused for good, or queue them again"
    )
    retry = parked.add_mutually_exclusive_group()
    retry.add_argument("--retry-all", action="store_true", help="queue every parked entry again")
    retry.add_argument(
        "--retry", type=int, nargs="+", metavar="OUTBOX_ID", help="queue these parked entries again"
    )
    parked.add_argument("--json", action="store_true", help="list as JSON")
    add_stack_flags(parked, STACK_FLAGS)
    args = parser.parse_args()
    if args.command == "parked":
        settings = stack_settings(
            LancamentosSettings, parser.prog, "lancamentos", args, STACK_FLAGS
        )
    else:
        settings = settings_or_exit(LancamentosSettings, parser.prog)
    configure_logging(settings.log_level)
    dispatches = args.command == "dispatch" or (args.command == "serve" and settings.run_dispatcher)
    try:
        if dispatches:
            settings.require("consolidado_target")
    except MissingSetting as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    if args.command == "parked":
        retry_ids = [] if args.retry_all else args.retry
        try:
            sys.exit(admin.run(settings, retry_ids, as_json=args.json))
        except Exception as error:
            if not is_dependency_outage(error):
                raise
            # As reconcile and rebuild: one line and 3, never a traceback.
            first = (str(error).splitlines() or [type(error).__name__])[0][:200]
            parser.exit(3, f"parked failed: a dependency is unavailable ({first})\n")
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
