"""`helm test`'s Pod (helm/caixa/templates/tests/smoke.yaml), its script run as the
chart renders it, against real services that verify tokens: it passes with a token
for its merchant, and fails, naming why, with none or with another merchant's."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from services.consolidado.app import ConsolidadoApp
from services.lancamentos.app import LancamentosApp
from tests.support.auth import Issuer
from tests.support.chart import render_chart

MERCHANT = "loja-smoke"
READS = ["lancamentos:read", "consolidado:read"]


def _smoke_pod() -> dict[str, Any]:
    rendered = render_chart(sets=[f"helmTest.merchant={MERCHANT}"])
    [pod] = rendered.of_kind("Pod")
    return pod


async def _run_pod_script(
    lancamentos: LancamentosApp, consolidado: ConsolidadoApp, token: str | None
) -> tuple[int, str]:
    """The container's command and env as rendered, but for the targets (the chart's
    Service names) and the token (the chart's Secret) this machine has instead."""
    [container] = _smoke_pod()["spec"]["containers"]
    assert lancamentos.server is not None and consolidado.server is not None
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    assert set(env) == {
        "CAIXA_LANCAMENTOS_TARGET",
        "CAIXA_CONSOLIDADO_TARGET",
        "CAIXA_TEST_MERCHANT",
        "CAIXA_TOKEN",
    }
    env |= {
        "CAIXA_LANCAMENTOS_TARGET": lancamentos.server.address,
        "CAIXA_CONSOLIDADO_TARGET": consolidado.server.address,
        "CAIXA_TOKEN": token or "",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    process = await asyncio.create_subprocess_exec(
        *container["command"],
        *container["args"],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


def test_the_pod_is_a_test_hook_that_cleans_up_after_success() -> None:
    pod = _smoke_pod()
    annotations = pod["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "test"
    # Kept after a run, so that `helm test --logs` can read it; replaced by the next.
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert pod["spec"]["restartPolicy"] == "Never"
    [container] = pod["spec"]["containers"]
    token = next(e for e in container["env"] if e["name"] == "CAIXA_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "caixa-helm-test-token", "key": "token"}
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "helm-test"
    assert render_chart(sets=["helmTest.enabled=false"]).of_kind("Pod") == []


async def test_with_a_token_for_its_merchant_it_passes(
    issuer: Issuer, lancamentos: LancamentosApp, consolidado: ConsolidadoApp
) -> None:
    status, output = await _run_pod_script(
        lancamentos, consolidado, issuer.token([MERCHANT], READS)
    )
    assert status == 0, output
    assert output.count("SERVING") == 2, output
    assert MERCHANT in output, output


async def test_without_a_good_token_it_fails_and_says_why(
    issuer: Issuer, lancamentos: LancamentosApp, consolidado: ConsolidadoApp
) -> None:
    status, output = await _run_pod_script(lancamentos, consolidado, None)
    assert status == 2 and "UNAUTHENTICATED" in output, output
    other = issuer.token(["another-shop"], READS)
    status, output = await _run_pod_script(lancamentos, consolidado, other)
    assert status == 2 and "PERMISSION_DENIED" in output, output
