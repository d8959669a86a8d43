"""`caixa-consolidado reconcile` and `rebuild` as an operator runs them: a stack
they cannot reach is one line and exit 3 (never 1, which means drift, and never
a traceback), flags name the stack to use, and rebuild says what it will do."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import Mesh

SCRIPT = str(Path(sys.executable).parent / "caixa-consolidado")
UNREACHABLE_DB = "postgresql://nobody@127.0.0.1:1/none"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=120, check=False, env={}
    )


@pytest.mark.parametrize(
    "command",
    [
        ["reconcile", "--merchant", "m1", "--from", "2026-03-01", "--to", "2026-03-02"],
        ["rebuild", "--merchant", "m1"],
    ],
)
def test_an_unreachable_stack_is_one_line_and_exit_3(command: list[str]) -> None:
    result = run(*command, "--database-url", UNREACHABLE_DB, "--lancamentos-target", "127.0.0.1:1")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "unavailable" in result.stderr or "unreachable" in result.stderr


async def test_the_flags_name_the_stack_and_rebuild_says_what_it_does(
    mesh: Mesh, lancamentos_stub: object
) -> None:
    flags = [
        "--database-url",
        mesh.consolidado_db,
        "--lancamentos-target",
        mesh.lancamentos_address,
    ]
    flags += ["--redis-url", mesh.redis_url]
    # In a thread: the services under test share this event loop.
    reconcile = await asyncio.to_thread(
        run, "reconcile", "--merchant", "ops", "--from", "2026-03-01", "--to", "2026-03-02", *flags
    )
    assert reconcile.returncode == 0, reconcile.stderr
    assert "0 drifting" in reconcile.stdout
    rebuild = await asyncio.to_thread(run, "rebuild", "--merchant", "ops", *flags)
    assert rebuild.returncode == 0, rebuild.stderr
    assert "rebuilding merchant ops" in rebuild.stdout
    assert "until the swap" in rebuild.stdout
