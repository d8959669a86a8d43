"""Renders of the chart by the real Helm engine, shared by the chart tests.

Each topology is rendered once per session: Helm's engine is fast, but the chart is
rendered for many assertions.
"""

from __future__ import annotations

import pytest

from mesh.chart import Rendered
from tests.support.chart import TOPOLOGIES, render_chart


@pytest.fixture(scope="session")
def renders() -> dict[str, Rendered]:
    return {name: render_chart(files) for name, files in TOPOLOGIES.items()}


@pytest.fixture(scope="session", params=sorted(TOPOLOGIES))
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def rendered(renders: dict[str, Rendered], topology: str) -> Rendered:
    """One topology's render; tests using it run once per topology."""
    return renders[topology]
