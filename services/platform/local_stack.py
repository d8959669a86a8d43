"""`.devstack/stack.json`: how the operations commands find the running local
stack (`make run`) without flags.

The devstack writes it once the stack is up and removes it when the stack
stops. It names the launcher's pid and, per service role, the settings that
role's operations commands need, by environment variable name:

    {"version": 1, "launcher_pid": 123,
     "services": {"consolidado": {"DATABASE_URL": "...", ...}, "lancamentos": {...}}}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeGuard

Role = Literal["lancamentos", "consolidado"]

STACK_FILE = "stack.json"
STATE_DIR_NAME = ".devstack"
STACK_DIR_ENV = "CAIXA_STACK_DIR"
VERSION = 1


class MalformedStackFile(ValueError):
    """A stack file that cannot be read as this version's."""


@dataclass(frozen=True)
class LocalStack:
    state_dir: Path
    launcher_pid: int
    services: Mapping[str, Mapping[str, str]]

    def settings_of(self, role: Role) -> Mapping[str, str]:
        return self.services.get(role, {})


@dataclass(frozen=True)
class Search:
    stack: LocalStack | None
    looked: str  # where it looked, for a "none found" message


def write_stack(
    state_dir: Path, services: Mapping[Role, Mapping[str, str]], *, pid: int | None = None
) -> Path:
    """Writes the stack file of `state_dir` for launcher `pid` (default: this process)."""
    path = state_dir / STACK_FILE
    document = {
        "version": VERSION,
        "launcher_pid": os.getpid() if pid is None else pid,
        "services": {role: dict(settings) for role, settings in services.items()},
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    # Written aside then renamed over it, so a reader never sees half a file;
    # owner-only, since a database URL may hold a password.
    partial = path.with_name(f".{STACK_FILE}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        json.dump(document, out, indent=2)
        out.write("\n")
    os.replace(partial, path)
    return path


def remove_stack(state_dir: Path) -> None:
    (state_dir / STACK_FILE).unlink(missing_ok=True)


def discover(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Search:
    """The live stack in `$CAIXA_STACK_DIR` if set (nowhere else: it was chosen),
    else the nearest one in `./.devstack` of `cwd` or a parent. A file whose
    launcher is gone is stale (a killed launcher leaves it) and skipped."""
    environ = os.environ if environ is None else environ
    here = cwd or Path.cwd()
    named = environ.get(STACK_DIR_ENV)
    if named:
        stack = _read(here / named / STACK_FILE)
        if stack is None:
            return Search(None, f"none in {STACK_DIR_ENV}={named}")
        if not _alive(stack.launcher_pid):
            return Search(None, f"{STACK_DIR_ENV}={named}: {_stale(stack)}")
        return Search(stack, named)
    stale: list[str] = []
    start = here.resolve()
    for folder in (start, *start.parents):
        stack = _read(folder / STATE_DIR_NAME / STACK_FILE)
        if stack is not None and _alive(stack.launcher_pid):
            return Search(stack, str(stack.state_dir))
        if stack is not None:
            stale.append(f"{stack.state_dir}: {_stale(stack)}")
    looked = f"no {STATE_DIR_NAME}/{STACK_FILE} here or above"
    return Search(None, "; ".join([looked, *stale]))


def _stale(stack: LocalStack) -> str:
    return f"a stale {STACK_FILE}, launcher pid {stack.launcher_pid} is gone"


def _alive(pid: int) -> bool:
    # Signal 0 only checks. Not the launcher's flock: a reader holding it even
    # for a moment would make a launcher starting then refuse to run.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process, but alive
        return True
    return True


def _read(path: Path) -> LocalStack | None:
    """The stack file at `path`; None when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise MalformedStackFile(f"cannot read {path} ({error.strerror})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedStackFile(f"{path} is not JSON ({error})") from None
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise MalformedStackFile(f"{path} is not a version-{VERSION} Caixa stack file")
    pid, services = document.get("launcher_pid"), document.get("services")
    # Not bool (an int in Python), nor <= 0: os.kill(0, 0) would signal our own group.
    if type(pid) is not int or pid <= 0 or not _is_services(services):
        raise MalformedStackFile(f"{path} has no valid launcher_pid and services")
    return LocalStack(path.parent, pid, services)


def _is_services(value: object) -> TypeGuard[dict[str, dict[str, str]]]:
    return isinstance(value, dict) and all(
        isinstance(settings, dict) and all(isinstance(v, str) for v in settings.values())
        for settings in value.values()
    )
