"""The operations commands find the running local stack (`make run`) by its
`.devstack/stack.json`: in `$CAIXA_STACK_DIR`, else here or in a parent folder,
and only while its launcher lives. A flag beats its environment variable, which
beats the stack; with neither, and no stack, they stop with one line (exit 2)
instead of acting on the default `postgres` database.

A malformed stack file is an error naming it, not ignored: the devstack writes
it atomically, so a bad one is another version's or damage, and skipping it
would act on another stack or report "none found" beside the file."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc
from sqlalchemy import text

from services.consolidado.main import STACK_FLAGS
from services.consolidado.settings import ConsolidadoSettings
from services.platform.local_stack import (
    STACK_DIR_ENV,
    MalformedStackFile,
    Role,
    discover,
    remove_stack,
    write_stack,
)
from services.platform.stack_flags import add_stack_flags, stack_settings
from tests.support.lancamentos import create_request
from tests.support.services import Mesh

SCRIPTS = Path(sys.executable).parent
DAY = "2026-04-07"
CONSOLIDADO = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/from_the_stack",
    "LANCAMENTOS_TARGET": "127.0.0.1:6001",
    "REDIS_URL": "redis://127.0.0.1:6379/9",
}
SERVICES: dict[Role, dict[str, str]] = {
    "consolidado": CONSOLIDADO,
    "lancamentos": {"DATABASE_URL": "postgresql://l/db"},
}


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_written_file_is_found_from_a_folder_below(tmp_path: Path) -> None:
    state = tmp_path / ".devstack"
    path = write_stack(state, SERVICES)
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)

    found = discover({}, below).stack

    assert found is not None
    assert (found.state_dir, found.launcher_pid) == (state, os.getpid())
    assert found.settings_of("consolidado") == CONSOLIDADO
    # It may hold a database password: the owner's only.
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in state.iterdir()) == ["stack.json"]


def test_the_nearest_live_stack_wins(tmp_path: Path) -> None:
    write_stack(tmp_path / ".devstack", SERVICES)
    inner = tmp_path / "checkout"
    write_stack(inner / ".devstack", {"lancamentos": {"DATABASE_URL": "postgresql://inner/db"}})

    found = discover({}, inner).stack

    assert found is not None and found.state_dir == inner / ".devstack"


def test_the_environment_variable_names_the_folder_and_nothing_else_is_searched(
    tmp_path: Path,
) -> None:
    write_stack(tmp_path / ".devstack", SERVICES)
    elsewhere = tmp_path / "elsewhere"
    write_stack(elsewhere, {"lancamentos": {"DATABASE_URL": "postgresql://elsewhere/db"}})

    found = discover({STACK_DIR_ENV: str(elsewhere)}, tmp_path).stack
    assert found is not None and found.state_dir == elsewhere

    empty = tmp_path / "empty"
    empty.mkdir()
    search = discover({STACK_DIR_ENV: str(empty)}, tmp_path)
    assert search.stack is None
    assert STACK_DIR_ENV in search.looked and str(empty) in search.looked


def test_a_stack_whose_launcher_is_gone_is_ignored(tmp_path: Path) -> None:
    inner = tmp_path / "checkout"
    write_stack(inner / ".devstack", SERVICES, pid=dead_pid())

    search = discover({}, inner)

    assert search.stack is None
    assert "stale" in search.looked and str(inner / ".devstack") in search.looked
    # Ignored as if absent: a live one further up is found.
    write_stack(tmp_path / ".devstack", SERVICES)
    found = discover({}, inner).stack
    assert found is not None and found.state_dir == tmp_path / ".devstack"


def test_removing_it_leaves_nothing_to_find(tmp_path: Path) -> None:
    write_stack(tmp_path / ".devstack", SERVICES)
    remove_stack(tmp_path / ".devstack")
    remove_stack(tmp_path / ".devstack")  # already gone: fine
    assert discover({}, tmp_path).stack is None


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        json.dumps({"version": 1, "services": {}}),
        json.dumps({"version": 99, "launcher_pid": 1, "services": {}}),
        json.dumps({"version": 1, "launcher_pid": "1", "services": {}}),
        json.dumps({"version": 1, "launcher_pid": 1, "services": {"consolidado": {"X": 1}}}),
    ],
)
def test_a_malformed_stack_file_is_an_error_naming_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / ".devstack" / "stack.json"
    path.parent.mkdir()
    path.write_text(content, encoding="utf-8")

    with pytest.raises(MalformedStackFile) as raised:
        discover({}, tmp_path)

    assert str(path) in str(raised.value)


def test_a_flag_beats_its_variable_which_beats_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_stack(tmp_path / ".devstack", SERVICES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STACK_DIR_ENV, raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LANCAMENTOS_TARGET", "127.0.0.1:7002")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/2")
    parser = argparse.ArgumentParser()
    add_stack_flags(parser, STACK_FLAGS)
    args = parser.parse_args(["--redis-url", "redis://127.0.0.1:6379/3"])

    settings = stack_settings(ConsolidadoSettings, "prog", "consolidado", args, STACK_FLAGS)

    assert settings.database_url == CONSOLIDADO["DATABASE_URL"]  # the stack's
    assert settings.lancamentos_target == "127.0.0.1:7002"  # the variable's
    assert settings.redis_url == "redis://127.0.0.1:6379/3"  # the flag's
    assert capsys.readouterr().err.strip() == (
        f"prog: using the local stack of {tmp_path / '.devstack'} "
        f"(launcher pid {os.getpid()}) for DATABASE_URL"
    )


def test_everything_given_needs_no_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not even a malformed stack file is read when nothing is left to find.
    (tmp_path / ".devstack").mkdir()
    (tmp_path / ".devstack" / "stack.json").write_text("{not json", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name, value in CONSOLIDADO.items():
        monkeypatch.setenv(name, value.replace("127.0.0.1", "10.0.0.1"))

    parser = argparse.ArgumentParser()
    add_stack_flags(parser, STACK_FLAGS)
    settings = stack_settings(
        ConsolidadoSettings, "prog", "consolidado", parser.parse_args([]), STACK_FLAGS
    )

    assert settings.lancamentos_target == "10.0.0.1:6001"
    assert capsys.readouterr().err == ""


# The real console scripts, as an operator runs them: no DATABASE_URL anywhere.


def run(script: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / script), *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_commands_act_on_the_stack_they_find(mesh: Mesh, tmp_path: Path) -> None:
    # No dispatcher: the entry stays in lancamentos' outbox, where it is parked
    # by hand, so both commands have something only these databases hold.
    await mesh.add_lancamentos(serve=True, dispatch=False)
    merchant = f"found-{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(mesh.lancamentos_address) as channel:
        stub = lpb_grpc.LancamentosServiceStub(channel)
        await stub.CreateLancamento(create_request(merchant_id=merchant, value_date=DAY))
    async with mesh.lancamentos[0].engine.begin() as conn:
        await conn.execute(
            text("UPDATE outbox SET parked_at = now(), parked_reason = 'refused in a test'")
        )
    state = tmp_path / ".devstack"
    write_stack(
        state,
        {
            "lancamentos": {"DATABASE_URL": mesh.lancamentos_db},
            "consolidado": {
                "DATABASE_URL": mesh.consolidado_db,
                "LANCAMENTOS_TARGET": mesh.lancamentos_address,
                "REDIS_URL": mesh.redis_url,
            },
        },
    )
    below = tmp_path / "some" / "folder"
    below.mkdir(parents=True)
    using = f"using the local stack of {state} (launcher pid {os.getpid()})"

    # In a thread: the services under test share this event loop.
    reconcile = await asyncio.to_thread(
        run, "caixa-consolidado", "reconcile", "--merchant", merchant, "--from", DAY, "--to", DAY,
        cwd=below,
    )  # fmt: skip
    assert reconcile.returncode == 1, reconcile.stderr  # drift: consolidado has none of it
    assert "lancamentos: +1050 -0 (1)" in reconcile.stdout
    assert "1 of them parked" in reconcile.stdout
    assert reconcile.stderr.strip() == f"caixa-consolidado: {using}"

    parked = await asyncio.to_thread(run, "caixa-lancamentos", "parked", cwd=below)
    assert parked.returncode == 0, parked.stderr
    assert merchant in parked.stdout and "refused in a test" in parked.stdout
    assert parked.stderr.strip() == f"caixa-lancamentos: {using}"


RECONCILE = ["reconcile", "--merchant", "m1", "--from", DAY, "--to", DAY]


@pytest.mark.parametrize(
    ("script", "args", "flags"),
    [
        ("caixa-consolidado", RECONCILE, "--database-url (env DATABASE_URL)"),
        ("caixa-consolidado", ["rebuild"], "--lancamentos-target (env LANCAMENTOS_TARGET)"),
        ("caixa-lancamentos", ["parked"], "--database-url (env DATABASE_URL)"),
    ],
)
def test_without_a_stack_or_settings_they_stop_with_one_line(
    tmp_path: Path, script: str, args: list[str], flags: str
) -> None:
    result = run(script, *args, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"{script}: no running Caixa stack found ")
    assert "no .devstack/stack.json here or above" in line
    assert "make run" in line and flags in line


def test_a_stale_stack_or_an_empty_stack_dir_is_said_so(tmp_path: Path) -> None:
    write_stack(tmp_path / ".devstack", SERVICES, pid=dead_pid())
    stale = run("caixa-lancamentos", "parked", cwd=tmp_path)
    assert stale.returncode == 2 and "Traceback" not in stale.stderr
    assert "stale" in stale.stderr and len(stale.stderr.strip().splitlines()) == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    named = run("caixa-lancamentos", "parked", cwd=tmp_path, **{STACK_DIR_ENV: str(empty)})
    assert named.returncode == 2 and f"{STACK_DIR_ENV}={empty}" in named.stderr


def test_a_malformed_stack_file_stops_them_with_one_line(tmp_path: Path) -> None:
    (tmp_path / ".devstack").mkdir()
    (tmp_path / ".devstack" / "stack.json").write_text("{not json", encoding="utf-8")

    result = run("caixa-consolidado", *RECONCILE, cwd=tmp_path)

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(tmp_path / ".devstack" / "stack.json") in result.stderr


def test_parked_takes_a_database_flag_and_an_unreachable_one_is_exit_3(tmp_path: Path) -> None:
    result = run(
        "caixa-lancamentos", "parked", "--database-url", "postgresql://nobody@127.0.0.1:1/none",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unavailable" in result.stderr
