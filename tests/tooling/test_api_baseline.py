"""`make buflint` holds the protos to their v1 baseline: `buf breaking` passes on
today's protos and fails on a copy with a wire-breaking edit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

BUF = Path(sys.executable).parent / "buf"
BASELINE = REPO_ROOT / "protos" / "v1-baseline.json"


def breaking(workspace: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), "breaking", "--against", str(BASELINE)],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    if not (REPO_ROOT / "third_party" / "googleapis").exists():
        pytest.fail("third_party/googleapis is missing: run `make proto` first")
    shutil.copy(REPO_ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(REPO_ROOT / "protos", tmp_path / "protos")
    shutil.copytree(REPO_ROOT / "third_party", tmp_path / "third_party")
    return tmp_path


def test_todays_protos_keep_the_baseline(workspace: Path) -> None:
    result = breaking(workspace)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_renumbered_field_breaks_it(workspace: Path) -> None:
    proto = workspace / "protos" / "lancamentos" / "v1" / "lancamentos.proto"
    text = proto.read_text(encoding="utf-8")
    edited = text.replace(
        "int64 amount_cents = 3 [(google.api.field_behavior) = REQUIRED];",
        "int64 amount_cents = 30 [(google.api.field_behavior) = REQUIRED];",
    )
    assert edited != text
    proto.write_text(edited, encoding="utf-8")
    result = breaking(workspace)
    assert result.returncode != 0
    assert "CreateLancamentoRequest" in result.stdout + result.stderr
