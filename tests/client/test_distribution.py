"""The typed client is its own distribution: `pip install ./client` into a clean
venv brings the client, the CLI and the stubs, and none of the services'
dependencies."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

from caixa.cli import money
from services.domain import rules
from tests.support.paths import REPO_ROOT

SERVICE_ONLY = {"sqlalchemy", "asyncpg", "redis", "alembic", "uvloop", "pydantic", "grpcio-status"}
# typing-extensions comes with grpcio itself; grpcio-health-checking (gRPC's own health
# stubs, for `caixa health`) needs only grpcio and protobuf.
ALLOWED = {
    "caixa-client",
    "grpcio",
    "protobuf",
    "googleapis-common-protos",
    "typing-extensions",
    "grpcio-health-checking",
}


def test_the_cli_checks_the_same_amount_limit_as_the_services() -> None:
    assert money.MAX_AMOUNT_CENTS == rules.MAX_AMOUNT_CENTS


@pytest.mark.slow
def test_client_installs_alone_into_a_clean_venv(tmp_path: Path) -> None:
    if not (REPO_ROOT / "client" / "stubs" / "lancamentos").is_dir():
        pytest.fail("client/stubs is missing: run `make proto`")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "./client"],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    installed = names - {"pip", "setuptools"}
    assert not installed & SERVICE_ONLY, installed
    assert installed <= ALLOWED, installed - ALLOWED
    # The clients, the stubs and the CLI work from the clean venv, outside the checkout.
    probe = (
        "from caixa.client import CaixaError, ConsolidadoClient, FiscalClient, LancamentosClient\n"
        "from lancamentos.v1 import lancamentos_pb2_grpc\n"
        "from consolidado.v1 import consolidado_pb2_grpc\n"
        "from fiscal.v1 import fiscal_pb2_grpc\n"
        "import caixa.cli.fiscal\n"
        "import caixa.client, sys\n"
        "assert 'site-packages' in caixa.client.__file__, caixa.client.__file__\n"
        "for name in ('services', 'sqlalchemy', 'tooling', 'mesh'):\n"
        "    assert name not in sys.modules, name\n"
    )
    subprocess.run([python, "-c", probe], cwd=tmp_path, check=True, timeout=60)
    cli = subprocess.run(
        [env_dir / "bin" / "caixa", "--help"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert "balance" in cli.stdout
    # Dev tokens are an extra (PyJWT, cryptography): without it, one clear line.
    token = subprocess.run(
        [env_dir / "bin" / "caixa", "token", "--merchant", "m1", "--scope", "admin"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
    )
    assert token.returncode == 2, token.stderr
    assert "pip install 'caixa-client[tokens]'" in token.stderr
    assert "Traceback" not in token.stderr
