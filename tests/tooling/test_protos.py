"""The stubs and descriptor in use are exactly what the protos produce now."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from tests.support.paths import REPO_ROOT

GENERATED = REPO_ROOT / "client" / "stubs"
DESCRIPTOR = REPO_ROOT / "build" / "caixa.pb"


def _generate(tmp_path: Path) -> tuple[Path, Path]:
    out, descriptor = tmp_path / "gen", tmp_path / "caixa.pb"
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tooling" / "gen_protos.py"),
            "--out",
            str(out),
            "--descriptor",
            str(descriptor),
        ],
        check=True,
        capture_output=True,
    )
    return out, descriptor


def test_stubs_and_descriptor_are_fresh(tmp_path: Path) -> None:
    fresh, descriptor = _generate(tmp_path)
    fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert fresh_files, "generation produced nothing"
    stale = [
        str(rel)
        for rel in fresh_files
        if not (GENERATED / rel).exists() or not filecmp.cmp(fresh / rel, GENERATED / rel, False)
    ]
    assert not stale, f"stubs are stale, run `make proto`: {stale}"
    assert DESCRIPTOR.read_bytes() == descriptor.read_bytes(), "descriptor is stale"


def test_descriptor_holds_services_and_http_rules() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    by_name = {f.name: f for f in files.file}
    assert "google/api/http.proto" in by_name, "imports must be included"
    lanc = by_name["lancamentos/v1/lancamentos.proto"]
    (service,) = lanc.service
    create = next(m for m in service.method if m.name == "CreateLancamento")
    rule = create.options.Extensions[annotations_pb2.http]
    assert rule.post == "/v1/merchants/{merchant_id}/lancamentos"
    assert rule.body == "*"
