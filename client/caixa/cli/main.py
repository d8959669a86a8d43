"""Entry point of the `caixa` command (see `caixa.cli.exit_codes` for its statuses)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from caixa.cli import traces, views
from caixa.cli.audit import ChainBroken
from caixa.cli.commands import COMMANDS
from caixa.cli.connections import Connections
from caixa.cli.exit_codes import (
    CHAIN_BROKEN,
    DOCUMENTS_FAILED,
    INTERRUPTED,
    OK,
    REQUEST_REJECTED,
    SERVICE_FAILED,
    exit_code_for,
)
from caixa.cli.fiscal import DocumentsFailed
from caixa.cli.health import health
from caixa.cli.parser import build_parser
from caixa.client import CaixaError


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "token":
        return _token(args)
    if args.command == "trace":
        return _trace(args)
    if args.command == "health":
        text, status = health(args)
        print(text)
        return status
    run = COMMANDS[args.command]
    status = OK
    try:
        with Connections(
            args.lancamentos_target,
            args.consolidado_target,
            args.timeout,
            args.token,
            fiscal_target=args.fiscal_target,
        ) as conn:
            output = run(args, conn)
    except ChainBroken as broken:
        print(broken)
        return CHAIN_BROKEN
    except DocumentsFailed as failed:
        # Every file's row, as on success; the status says not all passed.
        output, status = failed.output, DOCUMENTS_FAILED
    except CaixaError as error:
        # A server's answer, not a bug in the CLI: no traceback.
        notes = list(getattr(error, "__notes__", []))
        if args.json:
            print(views.error_json(error, notes), file=sys.stderr)
        else:
            print("\n".join([*views.error_lines(error), *notes]), file=sys.stderr)
        return exit_code_for(error.code)
    except KeyboardInterrupt:
        return INTERRUPTED
    try:
        print(output)
        sys.stdout.flush()
    except BrokenPipeError:
        # `caixa list … | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


def _token(args: argparse.Namespace) -> int:
    """Local: signs with the dev key, calls no service."""
    try:
        from caixa.cli.dev_tokens import dev_token  # noqa: PLC0415 - an optional extra
    except ImportError as missing:
        print(
            f"caixa token needs {missing.name}: pip install 'caixa-client[tokens]'",
            file=sys.stderr,
        )
        return REQUEST_REJECTED
    print(dev_token(args.merchants, args.scope, args.ttl, args.subject))
    return OK


def _trace(args: argparse.Namespace) -> int:
    """Local: asks the stack's trace receiver, calls no service."""
    base = args.url or traces.default_trace_url()
    try:
        if args.trace_id or args.last:
            print(traces.show(base, args.trace_id or traces.last_id(base)))
        else:
            print(traces.recent(base, args.limit))
    except traces.TraceLookupError as error:
        print(f"caixa trace: {error}", file=sys.stderr)
        return REQUEST_REJECTED if error.rejected else SERVICE_FAILED
    return OK


if __name__ == "__main__":
    sys.exit(main())
