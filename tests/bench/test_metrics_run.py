"""The scripted incident of bench/metrics_run.py at toy size, on a real make run
stack: the documented metrics move as they should while consolidado is down
and when an entry is refused, and lancamentos keeps answering throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT


@pytest.mark.slow
def test_the_metrics_follow_the_incident(tmp_path: Path, pg_admin_url: str, redis_url: str) -> None:
    out, svg = tmp_path / "run.json", tmp_path / "run.svg"
    command = [sys.executable, "-m", "bench.metrics_run", "--seconds", "20", "--rate", "30"]
    done = subprocess.run(
        [*command, "--out", str(out), "--svg", str(svg)],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": pg_admin_url, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    # Every create acknowledged, consolidado down or not.
    assert set(report["client_outcomes"]) == {"OK"}
    t, s = report["t"], report["series"]
    when = {e["event"]: e["t"] for e in report["events"]}
    down = [
        i for i, at in enumerate(t) if when["consolidado stop"] + 1 < at < when["consolidado start"]
    ]
    assert down, report["events"]
    backlog = [s["outbox_backlog"][i] or 0 for i in down]
    assert backlog[-1] > backlog[0] > 0  # it grows while nobody takes it
    age = [s["outbox_oldest_age_seconds"][i] or 0 for i in down]
    assert age[-1] > age[0]
    assert all(s["creates_per_second"][i] for i in down)  # lancamentos keeps booking
    back = [s["outbox_backlog"][i] for i, at in enumerate(t) if at > when["consolidado start"] + 2]
    # Drained once consolidado is back (after the dispatcher's backoff, up to 5 s).
    assert back and min(back) <= 2
    assert max(v for v in s["consolidation_lag_p99_seconds"] if v is not None) >= 1
    assert s["outbox_parked"][-1] == 1  # the refused entry, parked
    drawn = svg.read_text()
    assert drawn.startswith("<svg") and drawn.count("<polyline") >= 6
