"""Uninstalling never deletes the ledger: every object that holds or schedules its data
carries helm.sh/resource-policy: keep, which makes Helm leave it on `helm uninstall`, on
an upgrade that no longer renders it (cnpg.enabled=false, a database dropped from
cnpg.databases) and on rollback. The volumes and the app Secrets are the Clusters'
(CloudNativePG owns them), so they stay with them."""

from __future__ import annotations

from pathlib import Path

from mesh.chart import Rendered
from tests.support.chart import render_with

DATA_KINDS = ("Cluster", "ScheduledBackup", "ObjectStore")
KEEP = {"helm.sh/resource-policy": "keep"}


def _data_objects(rendered: Rendered) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (o["kind"], o["metadata"]["name"], o["metadata"].get("annotations") or {})
        for o in rendered
        if o["kind"] in DATA_KINDS
    ]


def test_every_data_object_is_kept_by_default(renders: dict[str, Rendered]) -> None:
    # The on-prem topology runs CloudNativePG; the others keep no database of their own.
    onprem = _data_objects(renders["onprem"])
    assert {kind for kind, _, _ in onprem} == set(DATA_KINDS), onprem
    # A Cluster and a ScheduledBackup per database (lancamentos, consolidado, fiscal), one
    # ObjectStore.
    assert len(onprem) == 7
    for topology, rendered in renders.items():
        for kind, name, marks in _data_objects(rendered):
            assert marks.items() >= KEEP.items(), (topology, kind, name)


def test_the_chart_renders_nothing_else_that_holds_the_data(
    renders: dict[str, Rendered],
) -> None:
    """No PersistentVolumeClaim or database Secret of the chart's own, which Helm would
    delete regardless: CloudNativePG makes and owns them."""
    for rendered in renders.values():
        assert rendered.of_kind("PersistentVolumeClaim") == []
        assert [
            s for s in rendered.of_kind("Secret") if s["metadata"]["name"].endswith("-app")
        ] == []


def test_keep_can_be_turned_off_for_throwaway_clusters(tmp_path: Path) -> None:
    rendered = render_with("onprem", {"cnpg": {"keepOnUninstall": False}}, tmp_path)
    objects = _data_objects(rendered)
    assert objects
    assert all("helm.sh/resource-policy" not in marks for _, _, marks in objects)
