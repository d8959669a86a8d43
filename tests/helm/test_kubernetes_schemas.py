"""Every rendered Kubernetes object is valid for the Kubernetes version we target.

Built-in kinds go through kubernetes-validate's strict schemas (unknown fields are
errors). Istio kinds are checked against Istio's CRDs elsewhere. No PyPI package ships
CloudNativePG's CRD schemas, so CNPG objects are checked against the field names of
CNPG's v1 API reference (postgresql.cnpg.io/v1, CloudNativePG 1.26–1.31) and of the
Barman Cloud plugin's ObjectStore CRD (barmancloud.cnpg.io/v1), listed below.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest
import yaml
from helm_python.errors import HelmValuesError

from mesh.chart import Object, Rendered
from tests.support.chart import render_chart
from tests.support.istio_crds import object_errors
from tests.support.kubernetes import (
    BARMAN_API_VERSION,
    CNPG_API_VERSION,
    KUBERNETES_VERSION,
    OLDEST_KUBERNETES_VERSION,
    kubernetes_errors,
)
from tests.support.paths import CHART_DIR


def test_every_rendered_object_is_valid(rendered: Rendered) -> None:
    assert kubernetes_errors(rendered) == []
    assert ip_block_errors(rendered) == []


def test_valid_on_the_oldest_kubernetes_the_chart_accepts(rendered: Rendered) -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["kubeVersion"] == f">={OLDEST_KUBERNETES_VERSION}-0"
    assert kubernetes_errors(rendered, OLDEST_KUBERNETES_VERSION) == []


def ip_block_errors(objects: Iterable[Object]) -> list[str]:
    """The OpenAPI schema types an ipBlock's CIDRs as strings only: each must be a canonical
    network (no host bits, which the API server warns about from 1.33), and each `except`
    inside its `cidr`."""
    errors: list[str] = []
    for obj in objects:
        if obj["kind"] != "NetworkPolicy":
            continue
        spec = obj["spec"]
        rules = [*spec.get("ingress", []), *spec.get("egress", [])]
        for peer in (p for r in rules for p in r.get("from", r.get("to", []))):
            if "ipBlock" not in peer:
                continue
            where = f"NetworkPolicy/{obj['metadata']['name']}: {peer['ipBlock']}"
            try:
                network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                excepted = [ipaddress.ip_network(e) for e in peer["ipBlock"].get("except", [])]
            except ValueError as error:
                errors.append(f"{where}: {error}")
                continue
            if not all(
                e.network_address in network and e.broadcast_address in network for e in excepted
            ):
                errors.append(f"{where}: an except is outside the cidr")
    return errors


def test_ip_block_errors_are_found() -> None:
    def policy(ip_block: dict[str, Any]) -> Object:
        return {
            "kind": "NetworkPolicy",
            "metadata": {"name": "x"},
            "spec": {"egress": [{"to": [{"ipBlock": ip_block}]}]},
        }

    assert ip_block_errors([policy({"cidr": "192.0.2.0/24", "except": ["192.0.2.8/29"]})]) == []
    assert ip_block_errors([policy({"cidr": "192.0.2.10/24"})])  # host bits set
    assert ip_block_errors([policy({"cidr": "192.0.2.0/24", "except": ["198.51.100.0/29"]})])


def test_cnpg_objects_are_checked_against_the_field_list() -> None:
    rendered = render_chart(
        sets=[
            "cnpg.enabled=true",
            "cnpg.apiServerPeers[0].ipBlock.cidr=192.0.2.10/32",
            "cnpg.objectStorePeers[0].ipBlock.cidr=192.0.2.50/32",
        ]
    )
    cnpg = [o for o in rendered if o["apiVersion"] in (CNPG_API_VERSION, BARMAN_API_VERSION)]
    assert {o["kind"] for o in cnpg} == {"Cluster", "ScheduledBackup", "ObjectStore"}
    assert kubernetes_errors(cnpg) == []

    typo = copy.deepcopy(rendered.of_kind("ObjectStore")[0])
    typo["spec"]["configuration"]["destinationPth"] = "s3://x"
    assert any("destinationPth" in e for e in kubernetes_errors([typo]))

    plugin_typo = copy.deepcopy(rendered.of_kind("Cluster")[0])
    plugin_typo["spec"]["plugins"][0]["isWalArchiver"] = True
    assert any("isWalArchiver" in e for e in kubernetes_errors([plugin_typo]))

    bad_enum = copy.deepcopy(rendered.of_kind("Cluster")[0])
    bad_enum["spec"]["postgresql"]["synchronous"]["dataDurability"] = "always"
    assert any("'always'" in e for e in kubernetes_errors([bad_enum]))

    bad_retention = copy.deepcopy(rendered.of_kind("ObjectStore")[0])
    bad_retention["spec"]["retentionPolicy"] = "30 days"
    assert any("retentionPolicy" in e for e in kubernetes_errors([bad_retention]))

    five_fields = copy.deepcopy(rendered.of_kind("ScheduledBackup")[0])
    five_fields["spec"]["schedule"] = "0 2 * * *"
    assert any("six cron fields" in e for e in kubernetes_errors([five_fields]))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("spec", "replica"), 2, "replica"),  # unknown field (strict mode)
        (("spec", "replicas"), "two", "replicas"),  # wrong type
        (("spec", "template", "spec", "containers"), [{"image": "x"}], "name"),  # missing
    ],
)
def test_a_broken_object_is_rejected(
    renders: dict[str, Rendered], path: tuple[str, ...], value: Any, expected: str
) -> None:
    broken = copy.deepcopy(renders["default"].get("Deployment", "caixa-consolidado"))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = kubernetes_errors([broken])
    assert len(errors) == 1 and expected in errors[0], errors


def test_an_unknown_api_version_is_not_silently_skipped() -> None:
    obj: Object = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}}
    with pytest.raises(AssertionError, match="no schema known"):
        kubernetes_errors([obj])


def test_validation_uses_the_schemas_of_the_stated_version() -> None:
    # resource.k8s.io/v1 went GA in 1.34: the pinned version must decide the outcome.
    device_class: Object = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": "x"},
        "spec": {},
    }
    kubernetes_validate.validate(device_class, "1.34.0", strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(device_class, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("cidr", ["203.0.113.0", "vpn-gateway/32", "203.0.113.0/24 "])
def test_values_refuse_an_ip_block_that_is_no_cidr(cidr: str) -> None:
    with pytest.raises(HelmValuesError, match="/networkPolicy/eastWestPeers/0/ipBlock/cidr"):
        render_chart(sets=[f"networkPolicy.eastWestPeers[0].ipBlock.cidr={cidr}"])
    render_chart(sets=["networkPolicy.eastWestPeers[0].ipBlock.cidr=2001:db8::/64"])


def test_fiscals_objects_render_and_are_valid(renders: dict[str, Rendered]) -> None:
    """Everything the chart makes for fiscal on the write path, each kind checked strictly
    (Kubernetes', CloudNativePG's field lists, Istio's CRDs)."""
    onprem = renders["onprem"]
    fiscal = [o for o in onprem if "fiscal" in o["metadata"]["name"]]
    assert {o["kind"] for o in fiscal} == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Job",
        "NetworkPolicy",
        "Cluster",
        "ScheduledBackup",
        "Sidecar",
        "AuthorizationPolicy",
        "DestinationRule",
        "VirtualService",
    }
    assert kubernetes_errors(fiscal) == []
    istio = [o for o in fiscal if o["apiVersion"].split("/")[0].endswith(".istio.io")]
    assert len(istio) == 4
    assert [e for o in istio for e in object_errors(o)] == []
