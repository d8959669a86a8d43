"""Every workload the chart renders meets the restricted Pod Security Standard, sets
requests and limits, and pins its image."""

from __future__ import annotations

import copy

import pytest
from helm_python.errors import HelmError

from mesh.chart import Object, Rendered
from tests.support.chart import render_chart
from tests.support.istio_injection import injected
from tests.support.pod_security import image_problems, pod_specs, security_problems

WORKLOAD_KINDS = ("Deployment", "Job")
# Every optional part switched on, so no workload escapes the checks.
EVERYTHING = (
    "cnpg.enabled=true",
    "cnpg.apiServerPeers[0].ipBlock.cidr=192.0.2.10/32",
    "cnpg.objectStorePeers[0].ipBlock.cidr=192.0.2.50/32",
    "migrations.enabled=true",
    "networkPolicy.enabled=true",
)


@pytest.fixture(scope="module")
def everything() -> Rendered:
    return render_chart(sets=EVERYTHING)


def test_every_workload_is_restricted(rendered: Rendered) -> None:
    specs = dict(pod_specs(rendered))
    assert specs, "no workload rendered"
    assert {name: security_problems(pod) for name, pod in specs.items()} == {
        name: [] for name in specs
    }


def test_every_workload_is_restricted_with_every_feature_on(everything: Rendered) -> None:
    specs = dict(pod_specs(everything))
    assert {name.split("/")[0] for name in specs} == set(WORKLOAD_KINDS)
    assert {name: security_problems(pod) for name, pod in specs.items()} == {
        name: [] for name in specs
    }


def test_the_checks_catch_a_weakened_pod(everything: Rendered) -> None:
    _, pod = next(pod_specs(everything))
    weak = copy.deepcopy(pod)
    weak["securityContext"] = {"runAsUser": 0}
    weak["initContainers"] = [{"name": "init", "image": "busybox"}]
    del weak["containers"][0]["securityContext"]["capabilities"]
    del weak["containers"][0]["resources"]["limits"]
    problems = security_problems(weak)
    for expected in (
        "pod: seccompProfile",
        "init: runAsNonRoot",
        "init: runs as uid 0",
        "init: allowPrivilegeEscalation",
        "init: root filesystem",
        "init: image 'busybox' has no tag",
        "capabilities are not all dropped",
        "no cpu limits",
        "no memory limits",
    ):
        assert any(expected in p for p in problems), (expected, problems)


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("ghcr.io/caixa/caixa:0.1.0", True),
        ("ghcr.io/caixa/caixa@sha256:" + "a" * 64, True),
        ("ghcr.io/caixa/caixa:latest", False),
        ("ghcr.io/caixa/caixa", False),
        ("registry:5000/caixa", False),
    ],
)
def test_image_pinning(image: str, ok: bool) -> None:
    assert (image_problems(image) == []) is ok


def test_service_accounts_do_not_mount_api_tokens(everything: Rendered) -> None:
    # No Caixa process talks to the Kubernetes API; Istio mounts its own token.
    accounts: list[Object] = everything.of_kind("ServiceAccount")
    assert accounts
    assert all(a["automountServiceAccountToken"] is False for a in accounts)
    for name, pod in pod_specs(everything):
        assert pod["automountServiceAccountToken"] is False, name


def test_restricted_holds_once_injected_only_with_istio_cni(rendered: Rendered) -> None:
    """The chart's claim, checked on the pods Istio admits: with istio-cni (required by
    the install docs) the injected init container and proxy are restricted too, with
    bounds of their own (istio.proxyResources); without it, istio-init runs as root with
    NET_ADMIN/NET_RAW, which even baseline refuses."""
    templates = {
        d["metadata"]["name"]: d["spec"]["template"] for d in rendered.of_kind("Deployment")
    }
    assert templates
    for name, template in templates.items():
        assert security_problems(injected(template, cni=True)) == [], name
        without = security_problems(injected(template, cni=False))
        assert "istio-init: runs as uid 0 (or an unset uid)" in without, name
        assert "istio-init: adds capabilities ['NET_ADMIN', 'NET_RAW']" in without, name


def test_the_sidecars_bounds_are_the_charts_annotations(rendered: Rendered) -> None:
    template = rendered.get("Deployment", "caixa-consolidado")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/proxyCPULimit"] == "1"
    assert annotations["sidecar.istio.io/proxyMemoryLimit"] == "256Mi"
    bare = {**template, "metadata": {**template["metadata"], "annotations": {}}}
    # Without them the injector gives the proxy no bounds of its own.
    assert "istio-proxy: no cpu limits" in security_problems(injected(bare, cni=True))


def test_images_by_digest_where_one_is_known() -> None:
    notes = "caixa/templates/NOTES.txt"
    assert "pinned by tag only" in render_chart().manifests[notes]
    digest = "sha256:" + "a" * 64
    pinned = render_chart(sets=[f"image.digest={digest}"])
    assert "pinned by tag only" not in pinned.manifests[notes]
    for _, pod in pod_specs(pinned):
        for c in pod["containers"]:
            assert c["image"] == f"ghcr.io/caixa/caixa@{digest}"
    # PostgreSQL: the operator's pinned default, or a digest; never a bare tag.
    with pytest.raises(HelmError, match="imageName"):
        render_chart(sets=[*EVERYTHING, "cnpg.imageName=ghcr.io/cloudnative-pg/postgresql:17"])
    image = f"ghcr.io/cloudnative-pg/postgresql:17.6@{digest}"
    rendered = render_chart(sets=[*EVERYTHING, f"cnpg.imageName={image}"])
    assert {c["spec"]["imageName"] for c in rendered.of_kind("Cluster")} == {image}
