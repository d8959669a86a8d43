"""Load spreads across replicas and zones (issue 11 §5).

Istio turns on locality load balancing wherever a DestinationRule sets outlier
detection, and by default a caller's own zone is its first priority: with a replica per
zone, each zone's whole traffic lands on one pod. The chart's DestinationRules rank by
region instead, so every zone of a region shares the load and the other region comes
next; the priorities below are pilot's own (tests/support/istio_pilot.py follows its
loadbalancer.go). Replicas spread over nodes strictly, and two dispatchers share the
outbox (SKIP LOCKED; tests/services/test_outbox_delivery.py delivers with two).
"""

from __future__ import annotations

from typing import Any

import pytest

from mesh.chart import Rendered
from tests.support.chart import TOPOLOGIES, render_chart
from tests.support.istio_pilot import REGION, ZONE, pilot_priorities

HOSTNAME = "kubernetes.io/hostname"


def _at(region: str, zone: str) -> dict[str, str]:
    return {REGION: region, ZONE: zone}


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render_chart(TOPOLOGIES[request.param])


def _locality_settings(rendered: Rendered) -> dict[str, dict[str, Any]]:
    found = {}
    for rule in rendered.of_kind("DestinationRule"):
        policy = rule["spec"]["trafficPolicy"]
        # Without outlier detection pilot applies no locality priorities at all.
        assert policy["outlierDetection"]["consecutiveGatewayErrors"] > 0
        found[rule["metadata"]["name"]] = policy["loadBalancer"]["localityLbSetting"]
    assert set(found) == {"caixa-lancamentos", "caixa-consolidado", "caixa-fiscal"}
    return found


def test_every_zone_of_the_callers_region_shares_the_load(rendered: Rendered) -> None:
    caller = _at("sa-east-1", "sa-east-1a")
    replicas = [_at("sa-east-1", "sa-east-1a"), _at("sa-east-1", "sa-east-1b")]
    # Istio's default: each caller keeps to its own zone's replica.
    assert pilot_priorities(None, caller, replicas) == [0, 1]
    for name, setting in _locality_settings(rendered).items():
        assert pilot_priorities(setting, caller, replicas) == [0, 0], name


def test_the_other_region_is_the_next_priority(rendered: Rendered) -> None:
    for caller_region, other in (("sa-east-1", "br-sp-onprem"), ("br-sp-onprem", "sa-east-1")):
        caller = _at(caller_region, "z1")
        replicas = [_at(caller_region, "z1"), _at(caller_region, "z2"), _at(other, "z9")]
        for name, setting in _locality_settings(rendered).items():
            assert pilot_priorities(setting, caller, replicas) == [0, 0, 1], name


def test_replicas_spread_over_nodes_strictly_and_zones_where_there_are_any(
    rendered: Rendered,
) -> None:
    deployments = list(rendered.of_kind("Deployment"))
    assert deployments
    for deployment in deployments:
        constraints = {
            c["topologyKey"]: c
            for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        }
        name = deployment["metadata"]["name"]
        assert constraints[HOSTNAME]["whenUnsatisfiable"] == "DoNotSchedule", name
        assert constraints[ZONE]["whenUnsatisfiable"] == "ScheduleAnyway", name
        for constraint in constraints.values():
            # Nodes the pods can't run on (tainted) must not count as empty domains.
            assert constraint["nodeTaintsPolicy"] == "Honor", name
            assert constraint["maxSkew"] == 1, name


def test_two_dispatchers_share_the_outbox() -> None:
    rendered = render_chart(TOPOLOGIES["onprem"])
    assert rendered.get("Deployment", "caixa-dispatcher")["spec"]["replicas"] == 2
    budget = rendered.get("PodDisruptionBudget", "caixa-dispatcher")["spec"]
    assert budget["maxUnavailable"] == 1
