"""The peers' targets have no default (values-local.yaml and the chart set them): a
command that needs one refuses to start without it, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tooling.devstack.processes import free_port


def run(module: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_TARGET")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**clean, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "args", "variable"),
    [
        ("services.lancamentos", ["dispatch"], "CONSOLIDADO_TARGET"),
        ("services.lancamentos", ["serve"], "CONSOLIDADO_TARGET"),
        ("services.consolidado", ["serve"], "LANCAMENTOS_TARGET"),
        (
            "services.consolidado",
            ["reconcile", "--merchant", "m1", "--from", "2026-03-01", "--to", "2026-03-02"],
            "LANCAMENTOS_TARGET",
        ),
    ],
)
def test_a_missing_target_is_a_clear_usage_error(
    module: str, args: list[str], variable: str
) -> None:
    result = run(module, *args)
    assert result.returncode == 2, result.stderr
    assert f"{variable} is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_needs_no_target() -> None:
    # It fails on the unreachable database instead, past the settings check.
    result = run("services.lancamentos", "migrate", MIGRATE_WAIT_SECONDS="0")
    assert result.returncode == 1 and "unreachable" in result.stderr
    assert "is not set" not in result.stderr


def test_serving_without_the_dispatcher_needs_no_consolidado_target() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_TARGET")}
    process = subprocess.Popen(
        [sys.executable, "-m", "services.lancamentos", "serve"],
        env={**clean, "RUN_DISPATCHER": "false", "GRPC_PORT": str(free_port())},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            assert "is not set" not in line
            if "lancamentos serving" in line:
                break
        assert process.poll() is None, "it should be serving"
    finally:
        process.terminate()
        process.wait(timeout=30)
