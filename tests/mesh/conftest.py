"""Fixtures for the mesh policy tests: the real values files, and unsafe variants of them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest

from mesh.methods import MethodShape, load_method_shapes
from mesh.policy import MeshPolicy
from mesh.values import Values, apply_set, load_values, policy_from_values
from tests.support.paths import DESCRIPTOR, VALUES, VALUES_LOCAL


@pytest.fixture(scope="session")
def base_values() -> Values:
    return load_values([VALUES, VALUES_LOCAL])


@pytest.fixture(scope="session")
def policy(base_values: Values) -> MeshPolicy:
    return policy_from_values(base_values)


@pytest.fixture(scope="session")
def descriptor() -> Path:
    if not DESCRIPTOR.exists():
        pytest.fail(f"{DESCRIPTOR} is missing: run `make proto` first")
    return DESCRIPTOR


@pytest.fixture(scope="session")
def shapes(descriptor: Path) -> dict[str, MethodShape]:
    return load_method_shapes(descriptor)


@pytest.fixture
def values_with(base_values: Values) -> Callable[..., Values]:
    """The default values with Helm-style `--set` overrides applied."""

    def make(*sets: str) -> Values:
        values: Values = copy.deepcopy(base_values)
        for assignment in sets:
            values = apply_set(values, assignment)
        return values

    return make
