"""Every combination of the chart's feature toggles renders, validates, and renders
exactly the objects its toggles ask for."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml

from mesh.chart import Rendered
from tests.support.chart import render_chart
from tests.support.kubernetes import kubernetes_errors
from tests.support.paths import CHART_DIR
from tests.support.pod_security import pod_specs, security_problems

DIGEST = "sha256:" + "ab" * 32
VALUES: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
# The workloads with an autoscaler, and the databases with a migration Job.
SCALED = ("lancamentos", "consolidado", "fiscal")

# toggle → its two settings (--set form). Istio's toggle is there only if the chart has it.
TOGGLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "networkPolicy": (("networkPolicy.enabled=true",), ("networkPolicy.enabled=false",)),
    "autoscaling": (
        tuple(f"{c}.autoscaling.enabled=true" for c in SCALED),
        tuple(f"{c}.autoscaling.enabled=false" for c in SCALED),
    ),
    # With NetworkPolicies on, CNPG needs the API server's and the object store's addresses.
    "cnpg": (
        (
            "cnpg.enabled=true",
            "cnpg.apiServerPeers[0].ipBlock.cidr=192.0.2.10/32",
            "cnpg.objectStorePeers[0].ipBlock.cidr=192.0.2.50/32",
        ),
        ("cnpg.enabled=false",),
    ),
    "migrations": (("migrations.enabled=true",), ("migrations.enabled=false",)),
    "digest": ((f"image.digest={DIGEST}",), ("image.digest=",)),
}
if "enabled" in VALUES.get("istio", {}):
    TOGGLES["istio"] = (("istio.enabled=true",), ("istio.enabled=false",))

COMBINATIONS = [
    dict(zip(TOGGLES, flags, strict=True))
    for flags in itertools.product((True, False), repeat=len(TOGGLES))
]


def combination_id(flags: dict[str, bool]) -> str:
    return ",".join(f"{'+' if on else '-'}{name}" for name, on in flags.items())


@pytest.mark.parametrize("flags", COMBINATIONS, ids=combination_id)
def test_combination(flags: dict[str, bool]) -> None:
    sets = [s for name, on in flags.items() for s in TOGGLES[name][0 if on else 1]]
    rendered = render_chart(sets=sets)

    assert kubernetes_errors(rendered) == []
    assert {n: security_problems(p) for n, p in pod_specs(rendered)} == {
        n: [] for n, _ in pod_specs(rendered)
    }
    assert_toggles_took_effect(rendered, flags)


def assert_toggles_took_effect(rendered: Rendered, flags: dict[str, bool]) -> None:
    policies = rendered.names("NetworkPolicy")
    assert ("caixa-default-deny" in policies) is flags["networkPolicy"]
    assert bool(policies) is flags["networkPolicy"]

    assert bool(rendered.of_kind("HorizontalPodAutoscaler")) is flags["autoscaling"]
    for component in SCALED:
        spec = rendered.get("Deployment", f"caixa-{component}")["spec"]
        assert ("replicas" in spec) is not flags["autoscaling"]

    assert bool(rendered.of_kind("Cluster")) is flags["cnpg"]
    assert bool(rendered.of_kind("ScheduledBackup")) is flags["cnpg"]
    assert bool(rendered.of_kind("ObjectStore")) is flags["cnpg"]
    if flags["cnpg"] and flags["networkPolicy"]:
        assert "caixa-postgres" in policies

    assert bool(rendered.of_kind("Job")) is flags["migrations"]
    if flags["networkPolicy"]:
        for database in SCALED:
            assert (f"caixa-migrations-{database}" in policies) is flags["migrations"]

    images = {
        c["image"]
        for _, pod in pod_specs(rendered)
        for c in pod.get("initContainers", []) + pod["containers"]
    }
    repository = VALUES["image"]["repository"]
    expected = (
        f"{repository}@{DIGEST}" if flags["digest"] else (f"{repository}:{VALUES['image']['tag']}")
    )
    assert images == {expected}

    if "istio" in flags:
        istio = [o for o in rendered if o["apiVersion"].split("/")[0].endswith(".istio.io")]
        assert bool(istio) is flags["istio"]
