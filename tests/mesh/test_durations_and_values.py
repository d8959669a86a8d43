"""Durations as written in values files, and Helm's merge rules for values files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.durations import Duration
from mesh.values import apply_set, deep_merge, load_values


@pytest.mark.parametrize(
    ("text", "millis", "envoy", "canonical"),
    [
        ("250ms", 250, "0.250s", "250ms"),
        ("5s", 5000, "5s", "5s"),
        ("1.5s", 1500, "1.500s", "1500ms"),
        ("1m30s", 90_000, "90s", "90s"),
        ("0s", 0, "0s", "0s"),
    ],
)
def test_duration_forms(text: str, millis: int, envoy: str, canonical: str) -> None:
    duration = Duration.parse(text)
    assert duration.millis == millis
    assert duration.envoy() == envoy
    # A parsed duration prints as written: the chart passes values through to Istio
    # untouched, and `caixa-mesh render istio` must print the same string.
    assert str(duration) == text
    assert duration == Duration(millis)
    assert str(Duration(millis)) == canonical


def test_deep_merge_like_helm() -> None:
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "x": 1}
    over = {"a": {"c": [3], "d": {"f": 2}}, "x": None}
    assert deep_merge(base, over) == {"a": {"b": 1, "c": [3], "d": {"e": 1, "f": 2}}}


def test_set_paths_with_indices() -> None:
    values = {"mesh": {"list": [{"a": 1}]}}
    assert apply_set(values, "mesh.list[0].a=2") == {"mesh": {"list": [{"a": 2}]}}
    assert apply_set(values, "mesh.new.key=5s") == {
        "mesh": {"list": [{"a": 1}], "new": {"key": "5s"}}
    }
    # A scalar at an index of a list that is new, or too short, as Helm's --set.
    assert apply_set(values, "mesh.names[0]=caixa") == {
        "mesh": {"list": [{"a": 1}], "names": ["caixa"]}
    }
    assert apply_set({"l": ["a"]}, "l[2]=c") == {"l": ["a", None, "c"]}


def test_later_files_win(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text("mesh:\n  x: 1\n  y: 1\n")
    second.write_text("mesh:\n  y: 2\n")
    assert load_values([first, second]) == {"mesh": {"x": 1, "y": 2}}
