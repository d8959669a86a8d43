"""Every Istio object the chart renders is valid against Istio's own CRD schema, for each
topology and each toggle, and says what the design needs (mTLS, egress, exposure)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from helm_python.errors import HelmRenderError, HelmValuesError

from mesh.chart import Rendered
from mesh.lint import lint
from mesh.methods import load_method_shapes
from mesh.values import load_values, policy_from_values, replica_counts
from tests.support.chart import TOPOLOGIES, istio_objects, render_chart, render_with
from tests.support.istio_crds import object_errors
from tests.support.paths import CHART_DIR, DESCRIPTOR

CHART_VALUES = CHART_DIR / "values.yaml"
VALUES = load_values([CHART_VALUES])

ISTIO_KINDS = {
    "AuthorizationPolicy",
    "DestinationRule",
    "EnvoyFilter",
    "Gateway",
    "PeerAuthentication",
    "RequestAuthentication",
    "Sidecar",
    "VirtualService",
}


def test_every_istio_object_is_strictly_valid(rendered: Rendered) -> None:
    objects = istio_objects(rendered)
    # ServiceEntries appear only for databases outside Kubernetes (the cloud's replica).
    assert {o["kind"] for o in objects} - {"ServiceEntry"} == ISTIO_KINDS
    assert [e for o in objects for e in object_errors(o)] == []


TOGGLES = {
    "multicluster.exposeServices": (True, False),
    "lancamentos.enabled": (True, False),
    "dispatcher.enabled": (True, False),
    "fiscal.enabled": (True, False),
}


@pytest.mark.parametrize(
    "combination",
    list(itertools.product(*TOGGLES.values())),
    ids=lambda c: "-".join(f"{k.split('.')[0]}={v}" for k, v in zip(TOGGLES, c, strict=True)),
)
def test_toggle_matrix_stays_valid(combination: tuple[bool, ...], tmp_path: Path) -> None:
    overlay: dict[str, dict[str, object]] = {}
    for key, value in zip(TOGGLES, combination, strict=True):
        section, field = key.split(".")
        overlay.setdefault(section, {})[field] = value
    overlay["istio"] = {
        "externalServices": [{"name": "pg", "hosts": ["pg.db.example.internal"], "port": 5432}],
        "authorization": {"reconcilePrincipals": ["cluster.local/ns/ops/sa/reconciler"]},
    }
    # The remote east-west gateway the sidecars may reach (the chart demands one).
    overlay["networkPolicy"] = {"eastWestPeers": [{"ipBlock": {"cidr": "203.0.113.20/32"}}]}
    rendered = render_with("default", overlay, tmp_path)
    objects = istio_objects(rendered)
    assert [e for o in objects for e in object_errors(o)] == []
    sidecars = rendered.names("Sidecar")
    for key, enabled in zip(TOGGLES, combination, strict=True):
        component = key.split(".")[0]
        if key.endswith(".enabled"):
            assert (f"caixa-{component}" in sidecars) == enabled
            assert (f"caixa-{component}" in rendered.names("Deployment")) == enabled
    assert ("caixa-cross-network-gateway" in rendered.names("Gateway")) == combination[0]
    # The database of the overlay, and the users issuer every service fetches keys from.
    assert rendered.names("ServiceEntry") == {"caixa-pg", "caixa-identity-provider"}
    assert [e for o in rendered.of_kind("ServiceEntry") for e in object_errors(o)] == []


def test_a_typo_is_rejected(renders: dict[str, Rendered]) -> None:
    dr = renders["default"].get("DestinationRule", "caixa-consolidado")
    detection = dr["spec"]["trafficPolicy"]["outlierDetection"]
    typo = {**dr, "spec": {**dr["spec"], "trafficPolicy": {"outlierDetection": detection}}}
    typo["spec"]["trafficPolicy"]["outlierDetection"] = {
        "consecutive5xxError": 5,  # missing "s"
        **{k: v for k, v in detection.items() if k != "consecutive5xxErrors"},
    }
    assert object_errors(typo) == [
        "DestinationRule/caixa-consolidado: "
        "spec.trafficPolicy.outlierDetection.consecutive5xxError: not in the schema"
    ]
    bad_enum = {**dr, "spec": {"host": "x", "trafficPolicy": {"tls": {"mode": "STRICT"}}}}
    assert object_errors(bad_enum) != []


def test_istio_disabled_renders_none() -> None:
    rendered = render_chart(sets=["istio.enabled=false"])
    assert istio_objects(rendered) == []


def test_mtls_strict_with_plain_text_metrics(rendered: Rendered) -> None:
    # One PeerAuthentication, on this release's pods: no namespace-wide `default`.
    assert rendered.names("PeerAuthentication") == {"caixa-mtls"}
    mtls = rendered.get("PeerAuthentication", "caixa-mtls")
    assert mtls["metadata"]["namespace"] == "caixa"
    metrics = mtls["spec"]
    assert metrics["mtls"] == {"mode": "STRICT"}
    # Istio's CEL rule (not evaluated by the schema check): portLevelMtls needs a selector.
    assert metrics["selector"]["matchLabels"]
    assert metrics["portLevelMtls"] == {"9464": {"mode": "PERMISSIVE"}}


def test_sidecars_limit_egress_to_what_each_workload_calls(renders: dict[str, Rendered]) -> None:
    sidecars = {o["metadata"]["name"]: o["spec"] for o in renders["default"].of_kind("Sidecar")}
    hosts = {
        name.removeprefix("caixa-"): spec["egress"][0]["hosts"] for name, spec in sidecars.items()
    }
    # The defaults: PostgreSQL and Redis in namespaces of their own.
    database = "postgres/postgres.postgres.svc.cluster.local"
    issuer = "./auth.example.com"  # every service fetches the users' issuer's keys
    assert hosts == {
        "lancamentos": [database, issuer],
        "dispatcher": ["./consolidado.caixa.svc.cluster.local", database, issuer],
        "consolidado": [
            "./lancamentos.caixa.svc.cluster.local",
            database,
            "redis/redis.redis.svc.cluster.local",
            issuer,
        ],
        # Booking in lancamentos, its own database; never consolidado or Redis.
        "fiscal": ["./lancamentos.caixa.svc.cluster.local", database, issuer],
    }
    for spec in sidecars.values():
        assert spec["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    # The cloud runs no write path, so only consolidado's sidecar.
    assert renders["cloud"].names("Sidecar") == {"caixa-consolidado"}


def test_sidecars_add_the_cnpg_services(renders: dict[str, Rendered], tmp_path: Path) -> None:
    onprem_values = load_values([CHART_VALUES, *TOPOLOGIES["onprem"]])
    for component, database in (
        ("lancamentos", "lancamentos"),
        ("consolidado", "consolidado"),
        ("fiscal", "fiscal"),
    ):
        # values-onprem.yaml names no database host: only the chart can add it.
        assert onprem_values["istio"]["egress"][f"{database}Database"]["hosts"] == []
        hosts = renders["onprem"].get("Sidecar", f"caixa-{component}")["spec"]["egress"][0]["hosts"]
        assert f"./caixa-{database}-pg-rw.caixa.svc.cluster.local" in hosts
        assert f"caixa-{database}-pg" in renders["onprem"].names("Cluster")
    # Named in the values too, the host still appears once.
    named = "./caixa-lancamentos-pg-rw.caixa.svc.cluster.local"
    overlay = {"istio": {"egress": {"lancamentosDatabase": {"hosts": [named]}}}}
    rendered = render_with("onprem", overlay, tmp_path)
    hosts = rendered.get("Sidecar", "caixa-lancamentos")["spec"]["egress"][0]["hosts"]
    assert hosts.count(named) == 1


def test_east_west_exposure_per_cluster(renders: dict[str, Rendered]) -> None:
    assert "caixa-cross-network-gateway" not in renders["default"].names("Gateway")
    for topology, network in (("cloud", "network-cloud"), ("onprem", "network-onprem")):
        gateway = renders[topology].get("Gateway", "caixa-cross-network-gateway")
        assert gateway["metadata"]["annotations"]["caixa.io/network"] == network
        [server] = gateway["spec"]["servers"]
        assert server["port"] == {"number": 15443, "name": "tls", "protocol": "TLS"}
        assert server["tls"] == {"mode": "AUTO_PASSTHROUGH"}
        assert server["hosts"] == [
            "consolidado.caixa.svc.cluster.local",
            "fiscal.caixa.svc.cluster.local",
            "lancamentos.caixa.svc.cluster.local",
        ]
        assert gateway["spec"]["selector"] == {"istio": "eastwestgateway"}


def test_locality_failover_between_the_two_clusters(renders: dict[str, Rendered]) -> None:
    def setting(topology: str) -> object:
        spec = renders[topology].get("DestinationRule", "caixa-consolidado")["spec"]
        return spec["trafficPolicy"].get("loadBalancer", {}).get("localityLbSetting")

    # One rule in every cluster (tests/helm/test_load_spread.py checks what it does).
    by_region = {"enabled": True, "failoverPriority": ["topology.kubernetes.io/region"]}
    assert setting("default") == setting("cloud") == setting("onprem") == by_region
    for topology in TOPOLOGIES:
        # Istio fails over only with outlier detection.
        spec = renders[topology].get("DestinationRule", "caixa-consolidado")["spec"]
        assert "outlierDetection" in spec["trafficPolicy"]
        # The cap counts the remote endpoints too: anything below 100 could leave the
        # last failing local replica un-ejected, and traffic local.
        assert spec["trafficPolicy"]["outlierDetection"]["maxEjectionPercent"] == 100


def test_jwt_at_the_gateway_and_again_at_the_workloads(rendered: Rendered) -> None:
    rule = {
        "issuer": "https://auth.example.com/",
        "jwksUri": "https://auth.example.com/.well-known/jwks.json",
        "audiences": ["caixa"],
    }
    authn = rendered.get("RequestAuthentication", "caixa-caixa-jwt")
    assert authn["metadata"]["namespace"] == "istio-ingress"
    assert authn["spec"]["selector"] == {"matchLabels": {"istio": "ingressgateway"}}
    # Forwarded, so that the workloads can validate it too; the merchants claim
    # copied for the per-merchant rate limit (tests/helm/test_merchant_rate_limit.py).
    claim = [{"header": "x-caixa-jwt-merchants", "claim": "merchants"}]
    assert authn["spec"]["jwtRules"] == [
        {**rule, "forwardOriginalToken": True, "outputClaimToHeaders": claim}
    ]
    workloads = rendered.get("RequestAuthentication", "caixa-workload-jwt")
    assert workloads["metadata"]["namespace"] == "caixa"
    # Kept for the service, which checks it again; and the workloads' own tokens,
    # which Envoy would otherwise refuse as of an unknown issuer.
    users, own = workloads["spec"]["jwtRules"]
    assert users == {**rule, "forwardOriginalToken": True}
    assert own == {
        "issuer": VALUES["auth"]["workloads"]["issuer"],
        "jwks": VALUES["auth"]["workloads"]["jwks"],
        "audiences": ["caixa-workloads"],
        "forwardOriginalToken": True,
    }
    selector = workloads["spec"]["selector"]["matchLabels"]
    for deployment in rendered.of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
    with pytest.raises(HelmRenderError, match="forwardOriginalToken must be true"):
        render_chart(sets=["istio.jwt.forwardOriginalToken=false"])


def test_values_schema_mesh_part_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tooling.chart.values_schema", "--chart", str(CHART_DIR), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_istio_value_is_rejected() -> None:
    with pytest.raises(HelmValuesError, match="credentialNam"):
        render_chart(sets=["istio.gateway.credentialNam=x"])


def test_each_topology_lints_clean(topology: str) -> None:
    values = load_values([CHART_VALUES, *TOPOLOGIES[topology]])
    policy = policy_from_values(values)
    shapes = load_method_shapes(DESCRIPTOR)
    assert lint(policy, replica_counts(values, policy), shapes) == []


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_selectors_pick_the_rendered_pods(rendered: Rendered) -> None:
    """A Sidecar that selects nothing leaves its workload on the full registry and
    ALLOW_ANY, and of two that select one workload Istio applies either: so each pod is
    selected by exactly one. The plain-text metrics port must be open on every pod."""
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in rendered.of_kind("Deployment")
    }
    assert pods
    metrics = rendered.get("PeerAuthentication", "caixa-mtls")["spec"]["selector"]
    for name, labels in pods.items():
        sidecars = [
            s["metadata"]["name"]
            for s in rendered.of_kind("Sidecar")
            if _selects(s["spec"]["workloadSelector"]["labels"], labels)
        ]
        assert len(sidecars) == 1, (name, sidecars)
        assert _selects(metrics["matchLabels"], labels), name
