"""Istio's CRD schemas (schemas/istio-crds.yaml, a vendored copy) as a strict validator.

Objects are checked against the `openAPIV3Schema` of their apiVersion, and any property
the schema does not declare is an error: what Kubernetes does under strict field
validation. CEL rules (`x-kubernetes-validations`, e.g. "only one of failover or
failoverPriority") are not evaluated; the policy model and the linter cover the ones the
chart could break.
"""

from __future__ import annotations

import functools
from typing import Any

import yaml

from tests.support.paths import REPO_ROOT

CRDS = REPO_ROOT / "schemas" / "istio-crds.yaml"

Schema = dict[str, Any]


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Schema]:
    """(apiVersion, kind) → the whole object's openAPIV3Schema."""
    schemas: dict[tuple[str, str], Schema] = {}
    for crd in yaml.safe_load_all(CRDS.read_text(encoding="utf-8")):
        if not crd:
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def spec_schema(kind: str, api_version: str = "networking.istio.io/v1") -> Schema:
    schema: Schema = crd_schemas()[(api_version, kind)]["properties"]["spec"]
    return schema


def strict_errors(schema: Schema, value: Any, path: str = "spec") -> list[str]:
    """The subset of OpenAPI v3 Istio's CRDs use, with unknown properties as errors."""
    if value is None and schema.get("nullable"):
        return []
    if schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, int | str) else [f"{path}: int or string"]
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        errors = []
        properties = schema.get("properties")
        for key, item in value.items():
            if properties is not None and key in properties:
                errors += strict_errors(properties[key], item, f"{path}.{key}")
            elif "additionalProperties" in schema:
                errors += strict_errors(schema["additionalProperties"], item, f"{path}.{key}")
            elif properties is not None:
                errors.append(f"{path}.{key}: not in the schema")
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: required")
        return errors
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        return [
            e
            for i, v in enumerate(value)
            for e in strict_errors(schema["items"], v, f"{path}[{i}]")
        ]
    checks = {"string": str, "boolean": bool, "integer": int, "number": int | float}
    if kind in checks and (
        not isinstance(value, checks[kind]) or (kind == "integer" and isinstance(value, bool))
    ):
        return [f"{path}: not a {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not one of {schema['enum']}"]
    if "maximum" in schema and value > schema["maximum"]:
        return [f"{path}: above {schema['maximum']}"]
    if "minimum" in schema and value < schema["minimum"]:
        return [f"{path}: below {schema['minimum']}"]
    return []


def object_errors(obj: dict[str, Any]) -> list[str]:
    """A whole rendered object (apiVersion, kind, metadata, spec) against its CRD."""
    key = (obj["apiVersion"], obj["kind"])
    schema = crd_schemas().get(key)
    if schema is None:
        return [f"{key}: no such Istio CRD version"]
    name = obj.get("metadata", {}).get("name")
    errors = [
        f"{obj['kind']}/{name}: {e}"
        for e in strict_errors(schema["properties"]["spec"], obj.get("spec", {}))
    ]
    extra = set(obj) - {"apiVersion", "kind", "metadata", "spec"}
    errors += [f"{obj['kind']}/{name}: unknown top-level field {k}" for k in sorted(extra)]
    return errors
