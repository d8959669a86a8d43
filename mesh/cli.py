"""`caixa-mesh`: lint, explain and render the mesh policy of an environment.

    caixa-mesh lint    -f helm/caixa/values.yaml [-f values-local.yaml] [--set k=v]
    caixa-mesh explain -f ... [--service consolidado]
    caixa-mesh render envoy -f ... --out DIR
    caixa-mesh render istio [-f ...] [--chart helm/caixa] [--namespace caixa] [--release caixa]
    caixa-mesh render --istio -f ...   (the same)
    caixa-mesh failover switchover|failover --from SITE ... --to SITE ... [--execute]

Exit status: 0 clean, 1 findings or invalid values, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import helm_python as helm
import yaml

from mesh import failover
from mesh.chart import render_chart
from mesh.explain import explain
from mesh.lint import lint
from mesh.methods import MethodShape, load_method_shapes
from mesh.policy import MeshPolicy, NoLocalTopology
from mesh.render import render_local_mesh
from mesh.render.rest_fields import rest_fields_source
from mesh.values import (
    PolicyError,
    deep_merge,
    load_values,
    policy_from_values,
    read_values,
    replica_counts,
)

OK, FINDINGS, USAGE = 0, 1, 2
TRAFFIC_KINDS = ("DestinationRule", "VirtualService")


def _values_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "-f",
        "--values",
        dest="files",
        action="append",
        default=[],
        type=Path,
        required=required,
        metavar="FILE",
        help="Helm values file; repeat to overlay, later files win (like helm -f)",
    )
    add_set_option(parser)


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """`--set PATH=VALUE` (repeatable, into `sets`), Helm's override of one value."""
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override one value, e.g. mesh.localTopology.gateway.port=18080",
    )


def _descriptor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--descriptor",
        type=Path,
        help="FileDescriptorSet of the protos (default: mesh.localTopology.descriptor, "
        "else build/caixa.pb)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="caixa-mesh", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    lint_parser = commands.add_parser("lint", help="reject unsafe policy combinations")
    _values_arguments(lint_parser)
    _descriptor_argument(lint_parser)

    explain_parser = commands.add_parser("explain", help="the effective policy per route class")
    _values_arguments(explain_parser)
    explain_parser.add_argument("--service", choices=["lancamentos", "consolidado", "fiscal"])

    render = commands.add_parser("render", help="Envoy configs or Istio resources")
    targets = render.add_subparsers(dest="target", required=True)
    envoy = targets.add_parser("envoy", help="bootstrap JSON for every local Envoy")
    _values_arguments(envoy)
    _descriptor_argument(envoy)
    envoy.add_argument("--out", type=Path, required=True, help="directory to write into")
    envoy.add_argument(
        "--openapi",
        type=Path,
        default=Path("openapi/caixa.openapi.json"),
        help="document the gateway serves at /openapi.json (skipped if missing)",
    )
    check = targets.add_parser(
        "rest-check", help="the gateway's REST field check (Lua), as the chart embeds it"
    )
    _values_arguments(check)
    _descriptor_argument(check)
    check.add_argument("--out", type=Path, required=True, help="the .lua file to write")
    istio = targets.add_parser(
        "istio", help="the chart's DestinationRules and VirtualServices, as YAML"
    )
    _values_arguments(istio, required=False)
    istio.add_argument(
        "--chart",
        type=Path,
        default=Path("helm/caixa"),
        help="the Helm chart (default: %(default)s)",
    )
    istio.add_argument("--namespace", default="caixa", help="the release's namespace")
    istio.add_argument("--release", default="caixa", help="the Helm release name")
    return parser


# Where `make proto` writes it; values-local.yaml names the same file for the local mesh.
DEFAULT_DESCRIPTOR = Path("build/caixa.pb")


def _descriptor(args: argparse.Namespace, policy: MeshPolicy) -> Path:
    if args.descriptor:
        return Path(args.descriptor)
    topology = policy.local_topology
    return Path(topology.descriptor) if topology else DEFAULT_DESCRIPTOR


def _shapes(path: Path) -> dict[str, MethodShape] | None:
    if not path.exists():
        print(f"note: {path} not found (`make proto`); method names not checked", file=sys.stderr)
        return None
    return load_method_shapes(path)


def run_lint(args: argparse.Namespace) -> int:
    values = load_values(args.files, args.sets)
    policy = policy_from_values(values)
    findings = lint(policy, replica_counts(values, policy), _shapes(_descriptor(args, policy)))
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} finding(s)", file=sys.stderr)
        return FINDINGS
    print("policy OK")
    return OK


def run_explain(args: argparse.Namespace) -> int:
    values = load_values(args.files, args.sets)
    policy = policy_from_values(values)
    print(explain(policy, replica_counts(values, policy), args.service), end="")
    return OK


def run_render_envoy(args: argparse.Namespace) -> int:
    policy = policy_from_values(load_values(args.files, args.sets))
    descriptor = _descriptor(args, policy)
    if not descriptor.exists():
        print(f"{descriptor} not found; run `make proto` first", file=sys.stderr)
        return FINDINGS
    openapi = args.openapi if args.openapi.exists() else None
    for path in render_local_mesh(policy, descriptor, args.out, openapi):
        print(path)
    return OK


def run_render_rest_check(args: argparse.Namespace) -> int:
    policy = policy_from_values(load_values(args.files, args.sets))
    descriptor = _descriptor(args, policy)
    if not descriptor.exists():
        print(f"{descriptor} not found; run `make proto` first", file=sys.stderr)
        return FINDINGS
    args.out.write_text(rest_fields_source(descriptor, policy.gateway.public_services))
    print(args.out)
    return OK


def run_render_istio(args: argparse.Namespace) -> int:
    """The chart is the one Istio renderer: this prints its traffic objects."""
    # The mesh policy is checked first, for the messages lint and explain give.
    chart_defaults = read_values(args.chart / "values.yaml")
    policy_from_values(deep_merge(chart_defaults, load_values(args.files, args.sets)))
    try:
        rendered = render_chart(
            args.chart, args.files, args.sets, release=args.release, namespace=args.namespace
        )
    except (helm.HelmValuesError, helm.HelmRenderError) as error:
        print(error, file=sys.stderr)
        return FINDINGS
    documents = [o for o in rendered if o["kind"] in TRAFFIC_KINDS]
    if not documents:
        print("istio.enabled is false in these values: no Istio objects", file=sys.stderr)
        return FINDINGS
    print(yaml.safe_dump_all(documents, sort_keys=False), end="")
    return OK


def _aliases(argv: Sequence[str]) -> list[str]:
    """`render --istio ...` is `render istio ...`."""
    args = list(argv)
    if args[:1] == ["render"] and "--istio" in args:
        args.remove("--istio")
        args.insert(1, "istio")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["failover"]:
        return failover.main(given[1:])
    args = build_parser().parse_args(_aliases(given))
    if args.command == "render":
        run = {
            "envoy": run_render_envoy,
            "rest-check": run_render_rest_check,
            "istio": run_render_istio,
        }[args.target]
    else:
        run = {"lint": run_lint, "explain": run_explain}[args.command]
    try:
        return run(args)
    except PolicyError as error:
        for path, message in error.problems:
            print(f"{path}: {message}")
        return FINDINGS
    except NoLocalTopology as error:
        print(error, file=sys.stderr)
        return FINDINGS
    except FileNotFoundError as error:
        print(f"{error.filename}: no such file", file=sys.stderr)
        return USAGE


if __name__ == "__main__":
    sys.exit(main())
