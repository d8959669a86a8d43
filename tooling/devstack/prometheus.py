"""A local Prometheus for `make run`, when one is installed (Debian's `prometheus`
package): it scrapes every service's /metrics and every Envoy's own stats, so
the metrics the alerts read can be watched and queried on one machine.

The two-command set-up does not depend on it: without the binary, the banner
says how to get one and where each process serves its metrics anyway.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tooling.stack.plan import StackPlan

SCRAPE_INTERVAL = "5s"


def binary() -> str | None:
    return shutil.which("prometheus")


def scrape_config(plan: StackPlan) -> dict[str, Any]:
    """Prometheus' configuration: one job for the services, one for the Envoys,
    each target labelled with the process's name as the devstack knows it."""
    services = [
        {"targets": [s.metrics_address], "labels": {"process": s.name, "service": s.service}}
        for s in plan.services
        if s.metrics_address is not None
    ]
    envoys = [
        {
            "targets": [f"{plan.lancamentos.host}:{e.admin_port}"],
            "labels": {"process": e.name},
        }
        for e in plan.envoys
    ]
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {"job_name": "caixa", "static_configs": services},
            {
                "job_name": "envoy",
                "metrics_path": "/stats/prometheus",
                "static_configs": envoys,
            },
        ],
    }


def argv(plan: StackPlan, state_dir: Path, prometheus: str) -> list[str]:
    """Writes the configuration under `state_dir`; the command that serves it."""
    assert plan.prometheus_port is not None
    folder = state_dir / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(plan), sort_keys=False), encoding="utf-8")
    return [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address={plan.lancamentos.host}:{plan.prometheus_port}",
    ]
