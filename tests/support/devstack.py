"""A devstack (`make run`) in its own process, on free ports and its own state
folder and databases, for tests that drive it as a user does."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from caixa.cli.dev_tokens import dev_key, mint
from tests.support.auth import EVERY_SCOPE
from tests.support.paths import MESH_SOURCES, REPO_ROOT
from tooling.devstack.infra import drop_database
from tooling.devstack.supervisor import Supervisor
from tooling.stack.plan import StackPlan, free_port_sets

READY = "Caixa is running"


class Output:
    """The devstack's output, read in the background so the pipe never fills."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._queue.put(line)

    def wait_for(self, text: str, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.lines.append(line)
            if text in line:
                return
        pytest.fail(f"no {text!r} within {within}s:\n{self.text}")

    @property
    def text(self) -> str:
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return "".join(self.lines)


@dataclass
class Devstack:
    plan: StackPlan
    process: subprocess.Popen[str]
    output: Output
    argv: list[str]  # the launch, whose --repo and --state-dir the control commands reuse
    state_dir: Path  # `<folder>/.devstack`, as `make run` in a checkout at <folder>

    def token(self, merchants: tuple[str, ...] = ("*",), scope: str = " ".join(EVERY_SCOPE)) -> str:
        """A token of this stack's dev key, as `caixa token` mints it."""
        return mint(
            dev_key(self.state_dir / "auth"),
            subject="tester",
            merchants=merchants,
            scopes=scope.split(),
            ttl_seconds=3600,
        )

    def control(self, action: str, name: str) -> subprocess.CompletedProcess[str]:
        """`caixa-devstack ACTION NAME` against this stack."""
        return subprocess.run(
            [*self.argv[:7], action, name],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )


SEARCHED = (str(Path(sys.executable).parent), "/usr/bin", "/bin")


@contextlib.contextmanager
def running_devstack(
    tmp_path: Path, pg_admin_url: str, redis_url: str, *, path_first: Path | None = None
) -> Iterator[Devstack]:
    """`path_first`: a folder searched before the others on PATH (a fake binary)."""
    sets = free_port_sets(MESH_SOURCES)
    plan = StackPlan.render(MESH_SOURCES, sets)
    prefix = f"devstack_{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, "-m", "tooling.devstack", "--repo", str(REPO_ROOT)]
    state_dir = tmp_path / ".devstack"
    argv += ["--state-dir", str(state_dir), "--database-prefix", prefix]
    argv += [arg for assignment in sets for arg in ("--set", assignment)]
    # Started from the folder holding its state, as `make run` from a checkout:
    # the banner's operations commands find the stack from there.
    process = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env={
            "PATH": ":".join([*([str(path_first)] if path_first else []), *SEARCHED]),
            "DATABASE_URL": pg_admin_url,
            "REDIS_URL": redis_url,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        yield Devstack(plan, process, output, argv, state_dir)
    finally:
        # A clean stop: its children have sessions of their own, so a SIGKILL
        # of the launcher alone would leave them running (and loading the machine).
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        # Whatever it left behind (a crash, the kill above): as the next `make run` would.
        Supervisor(state_dir / "logs").stop_leftovers()
        for service in ("lancamentos", "consolidado"):
            drop_database(pg_admin_url, f"{prefix}_{service}")
