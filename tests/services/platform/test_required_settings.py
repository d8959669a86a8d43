"""Settings a service cannot start without. A malformed value, such as an unknown
time zone, stops start-up with one line naming the variable; so does a missing
peer target (values-local.yaml and the chart set them; they have no default)."""

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
        # No stack to discover, even when a developer's `make run` is up here.
        env={
            **clean,
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "CAIXA_STACK_DIR": "/nonexistent/caixa-stack",
            **env,
        },
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


@pytest.mark.parametrize("module", ["services.lancamentos", "services.consolidado"])
def test_an_unknown_business_time_zone_stops_start_up_with_its_name(module: str) -> None:
    result = run(
        module,
        "serve",
        BUSINESS_TIMEZONE="Mars/Olympus_Mons",
        LANCAMENTOS_TARGET="x:1",
        CONSOLIDADO_TARGET="x:1",
    )
    assert result.returncode == 2, result.stderr
    assert "BUSINESS_TIMEZONE" in result.stderr and "Mars/Olympus_Mons" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_setting_is_a_one_line_error() -> None:
    result = run("services.lancamentos", "migrate", GRPC_PORT="not-a-port")
    assert result.returncode == 2, result.stderr
    assert "GRPC_PORT" in result.stderr and "Traceback" not in result.stderr
