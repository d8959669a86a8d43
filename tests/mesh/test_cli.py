"""`caixa-mesh` end to end: exit codes and output formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mesh.cli import main
from tests.support.paths import DESCRIPTOR, VALUES, VALUES_LOCAL

FILES = ["-f", str(VALUES), "-f", str(VALUES_LOCAL), "--descriptor", str(DESCRIPTOR)]
UNSAFE = Path(__file__).parent / "unsafe"
CHART = VALUES.parent


def test_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", *FILES]) == 0
    assert capsys.readouterr().out == "policy OK\n"


def test_lint_findings_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", *FILES, "-f", str(UNSAFE / "retry-capacity-without-budget.yaml")])
    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith("mesh.upstreams.consolidado.connectionPool.maxRetries: maxRetries 512")
    assert "(fix: set retryBudget (percent at most 25), or lower maxRetries to at most 128" in out


def test_schema_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", *FILES, "--set", "mesh.upstreams.consolidado.timeout=2"])
    assert code == 1
    assert "mesh.upstreams.consolidado.timeout: a duration is a string" in capsys.readouterr().out


def test_explain_one_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", *FILES[:4], "--service", "lancamentos"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lancamentos (Istio host 'lancamentos', 1 replica(s))")
    assert "consolidado (" not in out


def test_explain_counts_the_replicas_of_the_values_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Without values-local.yaml there is no local topology: the chart's count stands.
    assert main(["explain", "-f", str(VALUES), "--service", "lancamentos"]) == 0
    assert capsys.readouterr().out.startswith("lancamentos (Istio host 'lancamentos', 2 replica")


def test_a_local_render_without_the_local_topology_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["render", "envoy", "-f", str(VALUES), "--descriptor", str(DESCRIPTOR)]
    assert main([*args, "--out", str(tmp_path)]) == 1
    assert "mesh.localTopology is not set" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["render", "istio"], ["render", "--istio"]])
def test_render_istio_prints_the_charts_objects(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["-f", str(VALUES), "--chart", str(CHART), "--namespace", "ns1"]
    assert main([*command, *args]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in documents]
    assert kinds == [
        ("VirtualService", "caixa-gateway"),
        ("DestinationRule", "caixa-consolidado"),
        ("VirtualService", "caixa-consolidado"),
        ("DestinationRule", "caixa-fiscal"),
        ("VirtualService", "caixa-fiscal"),
        ("DestinationRule", "caixa-lancamentos"),
        ("VirtualService", "caixa-lancamentos"),
    ]
    assert all(d["apiVersion"] == "networking.istio.io/v1" for d in documents)
    assert {d["metadata"]["namespace"] for d in documents} == {"ns1"}
    # The gateway VirtualService serves the chart's istio.gateway.hosts.
    assert documents[0]["spec"]["hosts"] == ["caixa.example.com"]


def test_render_istio_says_when_istio_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--chart", str(CHART), "--set", "istio.enabled=false"]
    assert main(["render", "istio", *args]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "istio.enabled is false" in captured.err


def test_render_istio_names_a_bad_policy_value(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--chart", str(CHART), "--set", "mesh.upstreams.consolidado.timeout=2"]
    assert main(["render", "istio", *args]) == 1
    assert "mesh.upstreams.consolidado.timeout: a duration is a string" in capsys.readouterr().out


def test_render_envoy_with_set_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "render",
            "envoy",
            *FILES,
            "--set",
            "mesh.localTopology.gateway.port=18080",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    written = capsys.readouterr().out.split()
    assert [Path(p).name for p in written] == [
        "gateway.json",
        "egress-dispatcher.json",
        "egress-fiscal.json",
        "inbound-lancamentos-0.json",
        "inbound-consolidado-0.json",
        "inbound-consolidado-1.json",
        "inbound-fiscal-0.json",
        "inbound-fiscal-1.json",
    ]
    gateway = json.loads((tmp_path / "gateway.json").read_text())
    listener = gateway["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"]["port_value"] == 18080


def test_missing_values_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "-f", "/nonexistent/values.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err
