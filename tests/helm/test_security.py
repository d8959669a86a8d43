"""Every workload the chart renders meets the restricted Pod Security Standard, sets
requests and limits, and pins its image."""

from __future__ import annotations

import copy

import pytest

from mesh.chart import Object, Rendered
from tests.support.chart import render_chart
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
