"""Every object the chart renders is the release's own: two releases (in two namespaces
sharing one ingress gateway's) never name the same object, and no policy takes a name or
a scope that belongs to the platform (a namespace-wide PeerAuthentication `default`, an
AuthorizationPolicy `deny-all` over every workload of the namespace)."""

from __future__ import annotations

import pytest

from mesh.chart import Object, Rendered
from tests.support.chart import TOPOLOGIES, render_chart

# Istio policies without a selector govern every workload in their namespace.
SCOPED_KINDS = ("PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication")
PLATFORM_NAMES = {"default", "deny-all", "allow-nothing", "caixa-jwt"}
# Off by default, and they add objects in the gateway's namespace.
OPTIONAL = [
    "tracing.istioProvider=otel",
    "tracing.otlpEndpoint=http://otel.o11y:4317",
    "networkPolicy.tracing.peers[0].namespaceSelector.matchLabels.name=o11y",
]


def _identity(o: Object, namespace: str) -> tuple[str, str, str]:
    return (o["kind"], o["metadata"].get("namespace", namespace), o["metadata"]["name"])


def _identities(rendered: Rendered, namespace: str) -> set[tuple[str, str, str]]:
    return {_identity(o, namespace) for o in rendered}


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("second_release", ["caixa", "ledger"])
def test_two_releases_in_two_namespaces_name_nothing_alike(
    topology: str, second_release: str
) -> None:
    files = TOPOLOGIES[topology]
    first = _identities(render_chart(files, OPTIONAL, release="caixa", namespace="prod"), "prod")
    second = _identities(
        render_chart(files, OPTIONAL, release=second_release, namespace="staging"), "staging"
    )
    # The ingress gateway's namespace is shared, so this is where they could meet.
    shared = {i[0] for i in first if i[1] == "istio-ingress"}
    assert {"EnvoyFilter", "RequestAuthentication", "Telemetry"} <= shared
    assert first & second == set()


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_policies_select_the_release_pods_and_take_no_platform_name(topology: str) -> None:
    rendered = render_chart(TOPOLOGIES[topology], release="ledger", namespace="money")
    policies = [o for o in rendered if o["kind"] in SCOPED_KINDS]
    assert policies
    for policy in policies:
        name = policy["metadata"]["name"]
        assert name not in PLATFORM_NAMES
        assert name.startswith("ledger-"), name
        labels = (policy.get("spec") or {}).get("selector", {}).get("matchLabels", {})
        assert labels, f"{policy['kind']}/{name} has no selector: it governs the namespace"
        if policy["metadata"].get("namespace", "money") == "money":
            assert labels.get("app.kubernetes.io/instance") == "ledger", name
