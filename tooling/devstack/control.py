"""Asking a running devstack to stop, start or kill one of its processes.

`caixa-devstack stop consolidado-50052` writes a request file into the stack's
control folder; the supervisor, which polls it while it watches, acts and
answers with a `.done` file holding one line. Files, not a socket: nothing to
bind, and a stale request of a dead stack is harmless."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

ACTIONS = ("stop", "start", "kill")


@dataclass(frozen=True)
class Request:
    name: str
    action: str
    path: Path

    def answer(self, message: str) -> None:
        self.path.with_name(self.path.name + ".done").write_text(message + "\n")
        self.path.unlink(missing_ok=True)


def pending(control_dir: Path) -> list[Request]:
    requests = []
    for path in sorted(control_dir.glob("*.request")):
        name, _, action = path.name.removesuffix(".request").rpartition(".")
        requests.append(Request(name, action, path))
    return requests


def send(control_dir: Path, name: str, action: str, *, timeout: float = 60.0) -> str:
    """Asks, waits for the answer; TimeoutError if no supervisor answers."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    control_dir.mkdir(parents=True, exist_ok=True)
    request = control_dir / f"{name}.{action}.request"
    done = control_dir / f"{request.name}.done"
    done.unlink(missing_ok=True)
    request.write_text("")
    deadline = time.monotonic() + timeout
    while not done.exists():
        if time.monotonic() > deadline:
            request.unlink(missing_ok=True)
            raise TimeoutError(f"no running devstack answered in {control_dir}")
        time.sleep(0.1)
    answer = done.read_text().strip()
    done.unlink(missing_ok=True)
    return answer
