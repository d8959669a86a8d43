"""Flags of the operations commands that say which stack they act on: each from
its flag, else its environment variable, else the running local stack."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from services.platform import local_stack
from services.platform.settings import S, ServiceSettings, settings_or_exit


@dataclass(frozen=True)
class StackFlag:
    """A setting of an operations command that says which stack it acts on."""

    setting: str  # the field, e.g. "database_url": flag --database-url, env DATABASE_URL
    help: str
    needed: bool = True  # False: with no value anywhere, the field's default

    @property
    def variable(self) -> str:
        return self.setting.upper()

    @property
    def usage(self) -> str:
        return f"--{self.setting.replace('_', '-')} (env {self.variable})"


def add_stack_flags(parser: argparse.ArgumentParser, flags: Sequence[StackFlag]) -> None:
    for flag in flags:
        parser.add_argument(
            f"--{flag.setting.replace('_', '-')}",
            dest=flag.setting,
            help=f"{flag.help} (env {flag.variable})",
        )


def stack_settings(
    cls: type[S],
    prog: str,
    role: local_stack.Role,
    args: argparse.Namespace,
    flags: Sequence[StackFlag],
) -> S:
    """`cls` for an operations command: each of `flags` from its flag, else its
    environment variable, else the running local stack (local_stack.discover).
    A needed one with none of them stops the command with one line, exit 2:
    the field's default (the `postgres` database) would be the wrong stack."""
    settings = settings_or_exit(cls, prog)
    values = {f.setting: getattr(args, f.setting) for f in flags if getattr(args, f.setting, None)}
    unset = [f for f in flags if f.setting not in values and not _in_environment(settings, f)]
    # Only a needed setting left unset sends it looking: in a cluster, where
    # flags or env give those, no file is ever read.
    if any(f.needed for f in unset):
        values |= _from_local_stack(prog, role, unset, partly=len(unset) < len(flags))
    return settings.model_copy(update=values)


def _in_environment(settings: ServiceSettings, flag: StackFlag) -> bool:
    # pydantic-settings counts a variable it read as set; an empty one is no value.
    return flag.setting in settings.model_fields_set and bool(getattr(settings, flag.setting))


def _from_local_stack(
    prog: str, role: local_stack.Role, unset: list[StackFlag], *, partly: bool
) -> dict[str, str]:
    """What the running local stack says of `unset`; says so on stderr, and
    stops the command (exit 2) if a needed one is left without a value."""
    needed = [flag for flag in unset if flag.needed]
    try:
        search = local_stack.discover()
    except local_stack.MalformedStackFile as error:
        _stop(prog, f"{error}; remove it, or pass {_usage(needed or unset)}")
    stack = search.stack
    found = stack.settings_of(role) if stack is not None else {}
    taken = {flag.setting: found[flag.variable] for flag in unset if found.get(flag.variable)}
    if missing := [flag for flag in needed if flag.setting not in taken]:
        names = ", ".join(flag.variable for flag in missing)
        unsaid = f"{names} {'is' if len(missing) == 1 else 'are'} not set"
        if stack is None:
            _stop(
                prog,
                f"no running Caixa stack found ({search.looked}) and {unsaid}; "
                f"start one with make run, or pass {_usage(missing)}",
            )
        _stop(prog, f"the stack of {stack.state_dir} names no {names}; pass {_usage(missing)}")
    if stack is not None and taken:
        # Named when mixed with given ones: a flag for one stack and the rest
        # from the local one is allowed, but should not go unnoticed.
        mixed = partly
        which = f" for {', '.join(name.upper() for name in taken)}" if mixed else ""
        print(
            f"{prog}: using the local stack of {stack.state_dir} "
            f"(launcher pid {stack.launcher_pid}){which}",
            file=sys.stderr,
            flush=True,
        )
    return taken


def _usage(flags: list[StackFlag]) -> str:
    return " and ".join(flag.usage for flag in flags)


def _stop(prog: str, message: str) -> NoReturn:
    print(f"{prog}: {message}", file=sys.stderr)
    sys.exit(2)
