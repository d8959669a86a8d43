"""Helm values files → the mesh policy, merged exactly like `helm -f a.yaml -f b.yaml`.

Mappings merge key by key, later files win; lists and scalars are replaced whole, and an
explicit `null` deletes the key (Helm's rule too). `--set a.b[0].c=v` works like Helm's.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mesh.policy import MeshPolicy

Values = dict[str, Any]

_SET_STEP = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


class PolicyError(Exception):
    """Values that do not fit the schema: every problem, each with its path."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{path}: {message}" for path, message in problems))


def deep_merge(
    base: Mapping[str, Any], override: Mapping[str, Any], *, delete_nulls: bool = True
) -> Values:
    """Mappings merge key by key, everything else replaces. A `null` deletes the key, as
    Helm's coalescing with the chart defaults does; with delete_nulls=False it is kept, as
    Helm's merge of the user's own files does (so it can still delete a default later)."""
    merged: Values = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None and delete_nulls:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value, delete_nulls=delete_nulls)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_values(path: Path) -> Values:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise PolicyError([(str(path), "a values file must be a mapping at the top")])
    return loaded


def apply_set(values: Values, assignment: str) -> Values:
    """One Helm-style `--set path=value`; the value is parsed as a YAML scalar."""
    path, sep, raw = assignment.partition("=")
    if not sep or not path:
        raise PolicyError([(assignment, "--set wants path=value, e.g. mesh.x.y=5")])
    value = yaml.safe_load(raw) if raw else ""
    steps: list[str | int] = []
    for part in path.split("."):
        match = _SET_STEP.fullmatch(part)
        if match is None:
            raise PolicyError([(assignment, f"cannot read {part!r} as a key or key[index]")])
        steps.append(match.group(1))
        steps += [int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))]
    result = copy.deepcopy(values)
    node: Any = result
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        if following is None:
            if isinstance(step, int):  # `list[2]=x` grows the list, as Helm's --set does
                node.extend([None] * (step + 1 - len(node)))
            node[step] = value
        elif isinstance(step, str):
            node = node.setdefault(step, [] if isinstance(following, int) else {})
        else:
            while len(node) <= step:
                node.append({})
            node = node[step]
    return result


def load_values(files: Iterable[Path], sets: Iterable[str] = ()) -> Values:
    values: Values = {}
    for path in files:
        values = deep_merge(values, read_values(path))
    for assignment in sets:
        values = apply_set(values, assignment)
    return values


def policy_from_values(values: Mapping[str, Any]) -> MeshPolicy:
    if "mesh" not in values:
        raise PolicyError([("mesh", "no `mesh:` key in the values")])
    try:
        return MeshPolicy.model_validate(values["mesh"])
    except ValidationError as error:
        raise PolicyError(
            [(dotted(["mesh", *problem["loc"]]), problem["msg"]) for problem in error.errors()]
        ) from None


def load_policy(files: Iterable[Path], sets: Iterable[str] = ()) -> MeshPolicy:
    return policy_from_values(load_values(files, sets))


def replica_counts(values: Mapping[str, Any], policy: MeshPolicy) -> dict[str, int]:
    """How many replicas each upstream has at least: the local topology, and the chart's
    `<service>.replicaCount` / `<service>.autoscaling.minReplicas` when the values set them.
    The smallest wins, since that is where ejecting every host is easiest."""
    counts: dict[str, int] = {}
    for name in policy.upstreams:
        candidates: list[int] = []
        topology = policy.local_topology
        local = topology.services.get(name) if topology else None
        if local is not None:
            candidates.append(len(local.replicas))
        chart = values.get(name)
        if isinstance(chart, Mapping):
            if isinstance(chart.get("replicaCount"), int):
                candidates.append(chart["replicaCount"])
            autoscaling = chart.get("autoscaling")
            if (
                isinstance(autoscaling, Mapping)
                and autoscaling.get("enabled")
                and isinstance(autoscaling.get("minReplicas"), int)
            ):
                candidates.append(autoscaling["minReplicas"])
        if candidates:
            counts[name] = min(candidates)
    return counts


def dotted(path: Iterable[str | int]) -> str:
    """["mesh", "upstreams", "x", "services", 0] → "mesh.upstreams.x.services[0]"."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text
