"""Generate Python stubs, type stubs and the transcoder descriptor set from protos/.

Run by `make proto`; tests/tooling/test_protos.py runs it into a temporary directory and
fails when the installed stubs differ from what the protos produce now.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import resources
from pathlib import Path

import google.api
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
# google/api/*.proto that our protos import; buf needs them as a local module
# because no remote registry is reachable.
GOOGLE_API_PROTOS = ("annotations.proto", "http.proto", "field_behavior.proto", "httpbody.proto")


def _include_dirs() -> list[Path]:
    well_known = Path(str(resources.files("grpc_tools") / "_proto"))
    googleapis_root = Path(next(iter(google.api.__path__))).parent.parent
    return [PROTO_ROOT, well_known, googleapis_root]


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))


def _protoc(args: list[str], extra_files: tuple[str, ...] = ()) -> None:
    includes = [f"-I{d}" for d in _include_dirs()]
    code = protoc.main(["grpc_tools.protoc", *includes, *args, *proto_files(), *extra_files])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def generate_stubs(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plugin = shutil.which("protoc-gen-mypy_grpc", path=str(Path(sys.executable).parent))
    if plugin is None:
        raise SystemExit("protoc-gen-mypy_grpc not found; install the dev extras")
    _protoc(
        [
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            f"--plugin=protoc-gen-mypy_grpc={plugin}",
            f"--mypy_grpc_out={out}",
        ]
    )
    for package_dir in {out / Path(f).parent for f in proto_files()}:
        for directory in (package_dir, package_dir.parent):
            (directory / "__init__.py").touch()
            (directory / "py.typed").touch()


# The transcoder prints error details only for types in its descriptor set;
# without these, an INVALID_ARGUMENT with field violations reaches REST
# clients as an empty body.
ERROR_DETAIL_PROTOS = ("google/rpc/error_details.proto",)


def generate_descriptor(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _protoc(
        [f"--descriptor_set_out={path}", "--include_imports", "--include_source_info"],
        extra_files=ERROR_DETAIL_PROTOS,
    )


def copy_third_party(dest: Path) -> None:
    googleapis_root = _include_dirs()[2]
    target = dest / "google" / "api"
    target.mkdir(parents=True, exist_ok=True)
    for name in GOOGLE_API_PROTOS:
        shutil.copyfile(googleapis_root / "google" / "api" / name, target / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="stub output directory")
    parser.add_argument("--descriptor", type=Path, help="FileDescriptorSet output path")
    parser.add_argument("--third-party", type=Path, help="where to copy google/api protos")
    args = parser.parse_args()
    generate_stubs(args.out)
    if args.descriptor:
        generate_descriptor(args.descriptor)
    if args.third_party:
        copy_third_party(args.third_party)


if __name__ == "__main__":
    main()
