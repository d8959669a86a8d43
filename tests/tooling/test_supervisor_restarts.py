"""The devstack's supervisor restarts like a kubelet: a dead child comes back
after a backoff while the others keep running, a crash loop stops everything
naming the culprit, and control requests stop, start and kill one child."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tooling.devstack import control
from tooling.devstack.supervisor import ChildExited, RestartPolicy, Supervisor

FAST = RestartPolicy(first=0.05, most=0.2, restarts=5, window=60)
SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]


def wait_until(condition: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


@dataclass
class Watching:
    """A supervisor to watch in `thread`; what `watch` raised lands in `raised`."""

    supervisor: Supervisor
    thread: threading.Thread
    raised: list[BaseException]
    control_dir: Path


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Watching]:
    supervisor = Supervisor(tmp_path / "logs", grace=2.0, restart=FAST)
    raised: list[BaseException] = []

    def watch() -> None:
        try:
            supervisor.watch(interval=0.05, control_dir=tmp_path / "control")
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=watch, daemon=True)
    yield Watching(supervisor, thread, raised, tmp_path / "control")
    supervisor.request_stop()
    thread.join(timeout=10)
    supervisor.stop()


def test_a_dead_child_is_restarted_and_the_others_keep_running(watching: Watching) -> None:
    supervisor, thread, raised = watching.supervisor, watching.thread, watching.raised
    victim = supervisor.start("victim", SLEEPER, env=dict(os.environ))
    bystander = supervisor.start("bystander", SLEEPER, env=dict(os.environ))
    thread.start()
    victim.kill()
    wait_until(
        lambda: supervisor.processes[0].pid != victim.pid and supervisor.processes[0].alive()
    )
    assert bystander.alive() and supervisor.processes[1] is bystander
    assert raised == []


def test_a_crash_loop_stops_the_watch_naming_the_process(watching: Watching) -> None:
    supervisor, thread, raised = watching.supervisor, watching.thread, watching.raised
    code = "import sys; print('bad config: no such table', flush=True); sys.exit(3)"
    supervisor.start("looper", [sys.executable, "-c", code], env=dict(os.environ))
    thread.start()
    thread.join(timeout=30)
    [error] = raised
    assert isinstance(error, ChildExited)
    assert "looper" in str(error) and "crash-looped: 5 restarts" in str(error)
    assert "bad config: no such table" in str(error)


def test_control_stops_starts_and_kills_one_process(watching: Watching) -> None:
    supervisor, thread, raised = watching.supervisor, watching.thread, watching.raised
    control_dir = watching.control_dir
    first = supervisor.start("svc", SLEEPER, env=dict(os.environ))
    thread.start()
    assert control.send(control_dir, "svc", "stop", timeout=10).startswith("stopped svc")
    time.sleep(0.5)  # several watch rounds: a stopped process is not restarted
    assert not supervisor.processes[0].alive() and not first.alive()
    assert control.send(control_dir, "svc", "start", timeout=10).startswith("started svc")
    second = supervisor.processes[0]
    assert second.alive() and second.pid != first.pid
    assert control.send(control_dir, "svc", "kill", timeout=10).startswith("killed svc")
    wait_until(
        lambda: supervisor.processes[0].pid != second.pid and supervisor.processes[0].alive()
    )
    answer = control.send(control_dir, "nope", "stop", timeout=10)
    assert answer.startswith("error: no process 'nope'") and "svc" in answer
    assert raised == []


def test_nobody_answering_is_a_timeout(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="no running devstack"):
        control.send(tmp_path, "svc", "stop", timeout=0.3)
