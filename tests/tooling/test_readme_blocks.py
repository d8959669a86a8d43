"""Every shell and Python block of the README's "Using it" runs as printed against
a running stack (`make run`, here on free ports: the blocks' default ports and
database names are swapped for this stack's before they run, and the
operations commands find it by CAIXA_STACK_DIR)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.devstack import READY, Devstack, running_devstack
from tests.support.paths import REPO_ROOT

# The token the README's "Tokens" block exports: merchant loja-1, a user's scopes.
README_SCOPES = "lancamentos:write lancamentos:read consolidado:read fiscal:write fiscal:read"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def using_it_blocks() -> list[tuple[str, str, str]]:
    """(section, language, code) of each block under '## Using it'."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    part = readme.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for section in re.split(r"\n### ", part)[1:]:
        title = section.splitlines()[0]
        blocks += [(title, lang, code) for lang, code in BLOCK.findall(section)]
    return blocks


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str, redis_url: str
) -> Iterator[Devstack]:
    with running_devstack(tmp_path_factory.mktemp("readme"), pg_admin_url, redis_url) as running:
        running.output.wait_for(READY, within=120)
        yield running


def for_this_stack(code: str, stack: Devstack, pg_admin_url: str, redis_url: str) -> str:
    plan = stack.plan
    pg = urlsplit(pg_admin_url)
    prefix = stack.argv[stack.argv.index("--database-prefix") + 1]
    swaps = {
        "localhost:8080": f"127.0.0.1:{plan.gateway.listen_port}",
        "127.0.0.1:50051": plan.lancamentos.address,
        "127.0.0.1:50052": plan.consolidado[0].address,
        "127.0.0.1:5432": f"{pg.hostname}:{pg.port}",
        "redis://127.0.0.1:6379/0": redis_url,
        "caixa_consolidado": f"{prefix}_consolidado",
        "caixa_lancamentos": f"{prefix}_lancamentos",
    }
    for default, ours in swaps.items():
        code = code.replace(default, ours)
    return code


BLOCKS = using_it_blocks()


def test_the_readme_has_blocks_to_run() -> None:
    assert {title for title, _, _ in BLOCKS} >= {
        "Tokens",
        "The `caixa` CLI",
        "The typed client",
        "REST/JSON",
        "Fiscal documents (NF-e, NFC-e)",
        "Mesh policy",
        "Operations",
    }


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BLOCKS)])
def test_a_readme_block_runs_as_printed(
    stack: Devstack, pg_admin_url: str, redis_url: str, block: tuple[str, str, str]
) -> None:
    title, language, code = block
    code = for_this_stack(code, stack, pg_admin_url, redis_url)
    venv_bin = str(Path(sys.executable).parent)
    gateway = f"127.0.0.1:{stack.plan.gateway.listen_port}"
    # The venv activated, the CLI's default target (localhost:8080) moved, and
    # the operations commands pointed at this stack: they run from the checkout,
    # whose own .devstack (a developer's `make run`) is not this one.
    env = {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        "CAIXA_LANCAMENTOS_TARGET": gateway,
        "CAIXA_CONSOLIDADO_TARGET": gateway,
        "CAIXA_FISCAL_TARGET": gateway,
        "CAIXA_STACK_DIR": str(stack.state_dir),
        # As after the README's `export CAIXA_TOKEN=$(caixa token ...)`.
        "CAIXA_TOKEN": stack.token(("loja-1",), README_SCOPES),
    }
    for name in ("DATABASE_URL", "REDIS_URL", "LANCAMENTOS_TARGET", "CONSOLIDADO_TARGET"):
        env.pop(name, None)
    argv = (
        ["bash", "-euo", "pipefail", "-c", code]
        if language == "sh"
        else [sys.executable, "-c", code]
    )
    result = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, (
        f"{title}:\n{code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
