"""Runs the devstack's processes, restarts the ones that die, and stops them in order.

Like a kubelet: a process that exits while it should run is started again,
after a backoff that doubles (1 s up to 10 s), and the others keep serving. One
that crash-loops (5 restarts within 60 s) stops everything, naming it and
showing its last log lines. Processes adopted from elsewhere (the embedded
databases) are not restarted: their exit stops everything.

Processes belong to tiers: the databases (tier 0), the services (tier 1), and
whatever later fronts them (Envoy: a higher tier). Stopping goes from the
highest tier down; a tier's processes stop together: stop signal, a grace
period, then SIGKILL. A second Ctrl-C/SIGTERM cuts the grace period short.

While watching, it serves `control` requests: stop, start or kill one process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tooling.devstack import control
from tooling.devstack.processes import ServerProcess, stop_leftover

log = logging.getLogger(__name__)

INFRA_TIER = 0
SERVICE_TIER = 1
DUPLICATE_SIGNAL_SECONDS = 1.0


@dataclass(frozen=True)
class RestartPolicy:
    """The backoff doubles from `first` to `most`; `restarts` within `window`
    seconds is a crash loop."""

    first: float = 1.0
    most: float = 10.0
    restarts: int = 5
    window: float = 60.0


class StopRequested(Exception):
    """Ctrl-C, SIGTERM or SIGHUP arrived: unwind and stop everything."""


class ChildExited(RuntimeError):
    """A supervised process exited while it should have been running."""


@dataclass
class _Child:
    process: ServerProcess
    tier: int
    ready: Callable[[], bool] | None
    # How to start it again; None for an adopted process, which is not restarted.
    env: Mapping[str, str] | None = None
    held: bool = False  # stopped on request: not restarted until started
    restart_at: float | None = None
    restarts: deque[float] = field(default_factory=deque)


class Supervisor:
    def __init__(
        self, log_dir: Path, *, grace: float = 15.0, restart: RestartPolicy = RestartPolicy()
    ) -> None:
        self.log_dir = log_dir
        self.grace = grace
        self.restart = restart
        self._children: list[_Child] = []
        self._stop_requested = False
        self._stopping = False
        self._hurry = False
        self._signalled_at = 0.0

    @property
    def processes(self) -> list[ServerProcess]:
        return [child.process for child in self._children]

    # -- signals -------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self._stop_requested or self._stopping:
            # A signal to the process group (`kill -TERM -PGID`, or make and this
            # launcher both getting Ctrl-C) arrives twice at once: one request.
            if now - self._signalled_at < DUPLICATE_SIGNAL_SECONDS:
                return
            self._hurry = True
            print("\nstopping now: killing what is left", file=sys.stderr, flush=True)
        else:
            self._stop_requested = True
            self._signalled_at = now
            name = signal.Signals(signum).name
            print(f"\n{name}: stopping (again to kill)", file=sys.stderr, flush=True)

    def request_stop(self) -> None:
        self._stop_requested = True

    def check(self) -> None:
        """Raises StopRequested once a stop was asked for."""
        if self._stop_requested:
            raise StopRequested

    # -- starting ------------------------------------------------------------

    def stop_leftovers(self) -> None:
        """Stops what a previous launcher, killed before it could clean up, left
        running: every `<log_dir>/<name>.pid` names a pid and its command line."""
        for pid_file in sorted(self.log_dir.glob("*.pid")):
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 2:
                stop_leftover(pid_file, lines[1], signal.SIGTERM, self.grace)
            pid_file.unlink(missing_ok=True)

    def adopt(self, process: ServerProcess, *, tier: int = INFRA_TIER) -> None:
        """Supervises a process started elsewhere (e.g. an embedded database)."""
        self._children.append(_Child(process, tier, None))

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        ready: Callable[[], bool] | None = None,
        tier: int = SERVICE_TIER,
    ) -> ServerProcess:
        """Starts a long-running process logging to `<log_dir>/<name>.log`;
        `ready` is polled by `wait_ready`."""
        self.check()
        process = ServerProcess(name, argv, log_path=self.log_dir / f"{name}.log", env=env)
        self._children.append(_Child(process, tier, ready, env=env))
        self._pid_file(name).write_text(f"{process.pid}\n{' '.join(process.argv)}\n")
        log.info("started %s (pid %d)", name, process.pid)
        return process

    def _respawn(self, child: _Child) -> None:
        old = child.process
        assert child.env is not None
        child.process = ServerProcess(old.name, old.argv, log_path=old.log_path, env=child.env)
        child.restart_at = None
        self._pid_file(old.name).write_text(f"{child.process.pid}\n{' '.join(old.argv)}\n")

    def run(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], timeout: float
    ) -> None:
        """Runs a command to completion (e.g. migrations); StartupError if it fails."""
        self.check()
        process = ServerProcess(name, argv, log_path=self.log_dir / f"{name}.log", env=env)
        deadline = time.monotonic() + timeout
        while process.alive():
            if self._stop_requested or time.monotonic() > deadline:
                process.stop(self.grace)
                self.check()
                raise process.failure(f"did not finish within {timeout:.0f}s")
            time.sleep(0.05)
        if process.returncode != 0:
            raise process.failure("failed")
        log.info("%s done", name)

    def wait_ready(self, timeout: float) -> None:
        """Waits until every started process's `ready` holds."""
        pending = [child for child in self._children if child.ready is not None]
        deadline = time.monotonic() + timeout
        while pending:
            self.check()
            for child in list(pending):
                if not child.process.alive():
                    raise child.process.failure("exited during startup")
                if child.ready is not None and child.ready():
                    log.info("%s is ready", child.process.name)
                    pending.remove(child)
            if pending and time.monotonic() > deadline:
                raise pending[0].process.failure(f"was not ready within {timeout:.0f}s")
            time.sleep(0.2)

    # -- running and stopping ------------------------------------------------

    def watch(self, interval: float = 0.5, *, control_dir: Path | None = None) -> None:
        """Blocks until a stop is requested, restarting what dies and serving
        requests in `control_dir`; ChildExited if a process crash-loops (or an
        adopted one exits)."""
        while not self._stop_requested:
            if control_dir is not None:
                for request in control.pending(control_dir):
                    request.answer(self._serve(request))
            now = time.monotonic()
            for child in self._children:
                if child.held or child.process.alive():
                    continue
                if child.restart_at is None:
                    self._schedule_restart(child, now)
                elif now >= child.restart_at:
                    self._respawn(child)
                    log.info("restarted %s (pid %d)", child.process.name, child.process.pid)
            time.sleep(interval)

    def _schedule_restart(self, child: _Child, now: float) -> None:
        process = child.process
        if child.env is None:
            raise ChildExited(str(process.failure("exited unexpectedly")))
        policy = self.restart
        while child.restarts and now - child.restarts[0] > policy.window:
            child.restarts.popleft()
        if len(child.restarts) >= policy.restarts:
            raise ChildExited(
                str(
                    process.failure(
                        f"crash-looped: {len(child.restarts)} restarts within {policy.window:.0f} s"
                    )
                )
            )
        delay = min(policy.first * 2 ** len(child.restarts), policy.most)
        child.restarts.append(now)
        child.restart_at = now + delay
        log.warning(
            "%s exited (code %s); restarting it in %.1f s, the others keep serving",
            process.name,
            process.returncode,
            delay,
        )

    def _serve(self, request: control.Request) -> str:
        found = [c for c in self._children if c.process.name == request.name]
        if not found:
            names = ", ".join(c.process.name for c in self._children)
            return f"error: no process {request.name!r}; the stack runs {names}"
        child = found[0]
        if child.env is None:
            return f"error: {request.name} is not the supervisor's to {request.action}"
        if request.action == "kill":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGKILL)
            return f"killed {request.name} (SIGKILL); it restarts after its backoff"
        if request.action == "stop":
            child.held = True
            child.process.stop(self.grace)
            return f"stopped {request.name}; `start {request.name}` brings it back"
        if child.process.alive():
            child.held = False
            return f"{request.name} is already running (pid {child.process.pid})"
        child.held = False
        child.restarts.clear()
        self._respawn(child)
        return f"started {request.name} (pid {child.process.pid})"

    def stop_child(self, name: str) -> None:
        """Stops `name` and forgets it: an optional process that would not start."""
        for child in [c for c in self._children if c.process.name == name]:
            self._children.remove(child)
            child.process.stop(self.grace)

    def stop(self) -> None:
        """Stops every process, highest tier first. Idempotent."""
        self._stopping = True
        for tier in sorted({child.tier for child in self._children}, reverse=True):
            group = [child.process for child in reversed(self._children) if child.tier == tier]
            for process in group:
                if process.alive():
                    log.info("stopping %s (pid %d)", process.name, process.pid)
                process.signal_stop()
            deadline = time.monotonic() + self.grace
            for process in group:
                if not process.wait_exit(deadline, hurry=lambda: self._hurry):
                    process.kill()
                self._pid_file(process.name).unlink(missing_ok=True)

    def _pid_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.pid"
