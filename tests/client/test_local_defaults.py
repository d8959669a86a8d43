"""The client installs without the chart, so it keeps its own copy of the local
gateway's address; values-local.yaml is where that port is set, and this holds them equal."""

from __future__ import annotations

from urllib.parse import urlsplit

from caixa.client.service_config import CONSOLIDADO_SERVICE, FISCAL_SERVICE, LANCAMENTOS_SERVICE
from caixa.client.targets import (
    DEFAULT_CONSOLIDADO_TARGET,
    DEFAULT_FISCAL_TARGET,
    DEFAULT_LANCAMENTOS_TARGET,
)
from mesh.values import load_policy
from tests.support.paths import MESH_SOURCES


def test_the_default_targets_are_the_local_gateway() -> None:
    policy = load_policy(MESH_SOURCES.values)
    gateway = policy.topology.gateway.port
    # The gateway serves every service a client defaults to it for.
    assert {LANCAMENTOS_SERVICE, CONSOLIDADO_SERVICE, FISCAL_SERVICE} <= set(
        policy.gateway.public_services
    )
    for target in (DEFAULT_LANCAMENTOS_TARGET, DEFAULT_CONSOLIDADO_TARGET, DEFAULT_FISCAL_TARGET):
        parts = urlsplit(f"//{target}")
        assert (parts.hostname, parts.port) == ("localhost", gateway), target
