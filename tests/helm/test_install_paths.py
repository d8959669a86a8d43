"""Migrations work on every install path (issue 11 §7).

They are a plain Job, not a Helm hook: a `post-install` hook never runs under
`helm install --wait` (Helm waits for pods that wait for the schema first), and Argo CD
runs `pre-upgrade` hooks as PreSync, before the first sync has made a CNPG database.
The Job is one more resource of the release, named after its spec and the revision:

- `helm install` (with or without `--wait`, `--wait-for-jobs`): it starts with the rest
  and waits for the database; the services stay unready until the schema is theirs;
- `helm upgrade`: every revision a new Job, the old one pruned;
- Argo CD (`helm template`, always revision 1): a new Job for a new image or setting, and
  a re-sync of the same render changes nothing.
"""

from __future__ import annotations

import pytest

from mesh.chart import Rendered
from tests.support.chart import TOPOLOGIES, render_chart

HOOK = "helm.sh/hook"


def _job_names(rendered: Rendered) -> set[str]:
    return rendered.names("Job")


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("revision", [1, 2])
def test_nothing_but_helm_test_is_a_hook(topology: str, revision: int) -> None:
    rendered = render_chart(TOPOLOGIES[topology], revision=revision)
    hooks = {
        (o["kind"], o["metadata"]["name"]): o["metadata"]["annotations"][HOOK]
        for o in rendered
        if HOOK in o["metadata"].get("annotations", {})
    }
    assert set(hooks.values()) <= {"test"}, hooks


def test_first_install_with_cnpg_runs_the_migrations_with_the_release() -> None:
    rendered = render_chart(TOPOLOGIES["onprem"], revision=1)
    jobs = list(rendered.of_kind("Job"))
    assert {j["metadata"]["labels"]["caixa.io/database"] for j in jobs} == {
        "lancamentos",
        "consolidado",
        "fiscal",
    }
    for job in jobs:
        [container] = job["spec"]["template"]["spec"]["containers"]
        wait = {e["name"]: e.get("value") for e in container["env"]}["MIGRATE_WAIT_SECONDS"]
        # It outlasts the database's creation by the same release, within its deadline.
        assert int(wait) < job["spec"]["activeDeadlineSeconds"]
    # No pod serves before the schema: readiness is the gRPC health the schema gates.
    for deployment in rendered.of_kind("Deployment"):
        [app] = deployment["spec"]["template"]["spec"]["containers"]
        assert "grpc" in app["readinessProbe"], deployment["metadata"]["name"]


def test_a_resync_of_the_same_render_changes_no_job() -> None:
    assert _job_names(render_chart()) == _job_names(render_chart())


def test_a_new_image_makes_new_jobs_even_at_argo_cds_constant_revision() -> None:
    before = _job_names(render_chart(sets=["image.tag=1.0.0"]))
    after = _job_names(render_chart(sets=["image.tag=1.0.1"]))
    assert before.isdisjoint(after)
    # So does any change to what the Job runs (a Job's pod template is immutable).
    assert _job_names(render_chart(sets=["migrations.backoffLimit=5"])).isdisjoint(before)


def test_every_helm_upgrade_makes_new_jobs() -> None:
    first, second = (_job_names(render_chart(revision=r)) for r in (1, 2))
    assert first.isdisjoint(second)
    assert all(len(name) <= 63 for name in first | second)


def test_long_release_names_still_give_valid_job_names() -> None:
    rendered = render_chart(release="a" * 40 + "-caixa", revision=12345)
    for name in _job_names(rendered):
        assert len(name) <= 63 and not name.endswith("-"), name
