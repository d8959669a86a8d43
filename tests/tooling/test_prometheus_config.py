"""The Prometheus configuration `make run` writes: every service's /metrics and
every Envoy's stats, as promtool reads it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import MESH_SOURCES
from tooling.devstack import prometheus
from tooling.stack.plan import StackPlan


def test_it_scrapes_every_service_and_every_envoy(tmp_path: Path) -> None:
    plan = StackPlan.render(MESH_SOURCES)
    config = prometheus.scrape_config(plan)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = {c["labels"]["process"]: c["targets"] for c in jobs["caixa"]["static_configs"]}
    assert services == {
        "lancamentos": ["127.0.0.1:15251"],
        "consolidado-50052": ["127.0.0.1:15252"],
        "consolidado-50053": ["127.0.0.1:15253"],
        "fiscal-50054": ["127.0.0.1:15254"],
        "fiscal-50055": ["127.0.0.1:15255"],
    }
    assert jobs["envoy"]["metrics_path"] == "/stats/prometheus"
    envoys = {c["labels"]["process"]: c["targets"] for c in jobs["envoy"]["static_configs"]}
    assert envoys == {e.name: [f"127.0.0.1:{e.admin_port}"] for e in plan.envoys}
    argv = prometheus.argv(plan, tmp_path, "prometheus")
    assert "--web.listen-address=127.0.0.1:9090" in argv
    written = tmp_path / "prometheus" / "prometheus.yml"
    assert f"--config.file={written}" in argv
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CAIXA_REQUIRE_PROMTOOL"):
            pytest.fail("promtool missing (apt-get install prometheus)")
        pytest.skip("promtool missing (apt-get install prometheus)")
    checked = subprocess.run(
        [promtool, "check", "config", str(written)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
