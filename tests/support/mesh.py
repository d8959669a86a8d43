"""Mesh policies as a cluster gets them, rendered for the local Envoys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mesh.policy import MeshPolicy
from mesh.values import load_values, policy_from_values, read_values
from tests.support.paths import MESH_SOURCES


def on_local_ports(files: Sequence[Path]) -> MeshPolicy:
    """The policy of `files` with values-local.yaml's ports (its `localTopology`) and
    none of its policy overrides, so a local render shows what the cluster's does."""
    values = load_values(files)
    local = read_values(MESH_SOURCES.values[1])["mesh"]["localTopology"]
    values["mesh"]["localTopology"] = local
    return policy_from_values(values)
