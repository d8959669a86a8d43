"""schemathesis against the OpenAPI document the gateway serves at /openapi.json
(openapi/caixa.openapi.json, read from the checkout), through the gateway with a valid
token, in front of the real services: no answer is a 5xx, and every answer matches
the document (status code, content type, headers, body schema).

Bounded for CI: a fixed seed and a cap of examples per operation. The run's report
(its case count and any failure) is printed and kept in the test's folder.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.auth import Issuer
from tests.support.paths import REPO_ROOT
from tests.support.stack import StackFactory
from tooling.devstack.auth import gateway_jwt_sets

pytestmark = pytest.mark.slow

OPENAPI = REPO_ROOT / "openapi" / "caixa.openapi.json"
# The gate: no server error, no answer the document does not describe.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
MAX_EXAMPLES = 40
SEED = 20261203


async def _schemathesis(url: str, token: str, report: Path) -> tuple[int, str]:
    """Run in the report's folder: schemathesis keeps a cache where it runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(OPENAPI),
        f"--url={url}",
        f"--header=Authorization: Bearer {token}",
        f"--checks={','.join(CHECKS)}",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--phases=examples,coverage,fuzzing",
        "--request-timeout=10",
        "--report=ndjson",
        f"--report-ndjson-path={report}",
        "--no-color",
        cwd=report.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def _events(report: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in report.read_text().splitlines() if line.strip()]


async def test_the_rest_surface_holds_its_document_under_fuzzing(
    fault_stack: StackFactory, tmp_path: Path
) -> None:
    state = tmp_path / ".devstack"
    issuer = Issuer.create(state / "auth")
    # Every merchant, every scope: the fuzzer is to reach the handlers, not the 403s.
    token = issuer.token()
    async with fault_stack(gateway_jwt_sets(state)) as stack:
        report = tmp_path / "schemathesis.ndjson"
        status, output = await _schemathesis(stack.rest_url, token, report)
        print(output[-4000:])
        statuses = await stack.gateway_stats("downstream_rq_5xx")
    assert status == 0, output[-6000:]
    assert "Test cases:" in output, output[-2000:]
    # The gateway's own count: no 5xx left it during the run.
    assert statuses.get("http.gateway.downstream_rq_5xx", 0) == 0, statuses
    assert _events(report), "schemathesis wrote no events"
