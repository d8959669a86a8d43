"""Long-running child processes: free ports, own session, readiness, graceful stop.

Every child runs in its own session so a Ctrl-C typed in the terminal reaches
only the launcher, which then stops the children in order (services before
the databases they use).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class StartupError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


@dataclass(frozen=True)
class RunAs:
    """An unprivileged identity to drop to (PostgreSQL refuses to run as root)."""

    user: str
    uid: int
    gid: int


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs; a zombie waiting for init to reap it does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rpartition(")")[2].split()[:1] != ["Z"]


def process_cmdline(pid: int) -> str:
    """The command line of a process ("" when unknown, e.g. without /proc)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def stop_leftover(pid_file: Path, marker: str, sig: signal.Signals, grace: float = 10.0) -> None:
    """Stops a server a previous, killed launcher left running on the same data.

    Only a live process whose command line contains `marker` is touched, so a
    recycled pid never hits an unrelated process.
    """
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if pid <= 0 or not pid_alive(pid) or marker not in process_cmdline(pid):
        return
    log.warning("stopping pid %d, left running by an earlier launcher (%s)", pid, pid_file)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class ServerProcess:
    """A child process whose stdout and stderr are appended to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        run_as: RunAs | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.stop_signal = stop_signal
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            self._log_offset = log_file.tell()
            self.process: subprocess.Popen[bytes] = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
                user=None if run_as is None else run_as.uid,
                group=None if run_as is None else run_as.gid,
                extra_groups=None if run_as is None else [],
            )
        self.pid = self.process.pid

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} pid={self.pid}>"

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def tail(self, lines: int = 40) -> str:
        """The last lines this process wrote to its log."""
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(self._log_offset)
                text = log_file.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> StartupError:
        return StartupError(
            f"{self.name} {what} (exit code {self.returncode}); "
            f"last lines of {self.log_path}:\n{self.tail()}"
        )

    def wait_ready(
        self,
        ready: Callable[[], bool],
        *,
        timeout: float,
        interrupted: Callable[[], bool] = lambda: False,
        interval: float = 0.1,
    ) -> None:
        """Polls `ready` until it holds; raises StartupError if the process dies
        or `timeout` passes. Returns early, not ready, when `interrupted()`."""
        deadline = time.monotonic() + timeout
        while not interrupted():
            if not self.alive():
                raise self.failure("exited during startup")
            if ready():
                return
            if time.monotonic() > deadline:
                raise self.failure(f"was not ready within {timeout:.0f}s")
            time.sleep(interval)

    def signal_stop(self) -> None:
        """Asks the process to stop with its `stop_signal` (the main process only:
        PostgreSQL's postmaster shuts its backends down itself)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self.stop_signal)

    def kill(self) -> None:
        if self.alive():
            log.warning("%s did not stop in time: killing its process group", self.name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def wait_exit(self, deadline: float, hurry: Callable[[], bool] = lambda: False) -> bool:
        """Waits for the process to exit until `deadline` (monotonic) or `hurry()`."""
        while self.alive() and time.monotonic() < deadline and not hurry():
            time.sleep(0.05)
        return not self.alive()

    def stop(self, grace: float = 10.0) -> None:
        """Stop signal, `grace` seconds, then SIGKILL. Idempotent."""
        self.signal_stop()
        if not self.wait_exit(time.monotonic() + grace):
            self.kill()


PORT_ATTEMPTS = 3


def start_on_free_port(
    launch: Callable[[int], tuple[str, ServerProcess]],
    ready: Callable[[str], bool],
    *,
    timeout: float,
) -> tuple[str, ServerProcess]:
    """Starts a server on a port picked free, and picks again if another process
    took it between the pick and the bind. `launch(port)` returns (url, process)."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        url, server = launch(port)
        try:
            server.wait_ready(functools.partial(ready, url), timeout=timeout)
        except StartupError:
            server.stop(grace=5.0)
            if "already in use" in server.tail() and attempt < PORT_ATTEMPTS:
                log.info("port %d was taken meanwhile; retrying on another", port)
                time.sleep(0.1)
                continue
            raise
        return url, server
    raise AssertionError("unreachable")
