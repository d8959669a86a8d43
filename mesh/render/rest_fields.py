"""The gateway's REST field check: an Envoy Lua filter before the transcoder.

The transcoder drops JSON fields the request message lacks (the proto3 JSON mapping),
and names no field in its own errors. `rest_fields.lua` rejects those requests with
the services' error shape; this module gives it the schema of the public REST routes,
read from the descriptor set the transcoder loads, so both see the same contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# Imported for its side effect too: `google.api.http` must be registered before the
# descriptor set is parsed, or the options would keep it as an unknown field.
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from mesh.envoy_fields import JSON

LUA = "envoy.filters.http.lua"
LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
# Set on the requests this filter answers, so the gateway's local-reply mappers keep
# its JSON body rather than wrap it (see local_replies); a client's copy is removed.
REJECTED_HEADER = "x-caixa-rejected"
_Field = descriptor_pb2.FieldDescriptorProto
_KINDS = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in _Field.Type.items()
    if name not in ("TYPE_GROUP",)
}
_SIMPLE_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_LITERAL = re.compile(r"[A-Za-z0-9_\-./:]*")


@dataclass(frozen=True)
class RestRoute:
    """One HTTP binding of a public RPC."""

    method: str  # "GET", "POST", ...
    template: str
    body: str
    message: str  # the request message's full name

    @property
    def variables(self) -> list[str]:
        return _SIMPLE_VARIABLE.findall(self.template)

    @property
    def lua_pattern(self) -> str:
        """The template as an anchored Lua pattern capturing each variable."""
        pieces = _SIMPLE_VARIABLE.split(self.template)
        literals, pattern = pieces[::2], []
        for i, literal in enumerate(literals):
            if "{" in literal or "*" in literal or not _LITERAL.fullmatch(literal):
                raise ValueError(f"path template {self.template!r}: only {{field}} variables")
            pattern.append(re.sub(r"([.\-])", r"%\1", literal))
            if i < len(literals) - 1:
                pattern.append("([^/]+)")
        return "^" + "".join(pattern) + "$"


def _bindings(rule: http_pb2.HttpRule) -> list[http_pb2.HttpRule]:
    return [rule, *rule.additional_bindings]


# A body bound to a field of this type is the raw request body (an XML document),
# which the transcoder passes through untouched: there is no JSON to check.
RAW_BODY = "google.api.HttpBody"


def _route(rule: http_pb2.HttpRule, message: str, raw_bodies: set[str]) -> RestRoute:
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        raise ValueError(f"http rule of {message} without a pattern")
    if pattern == "custom":
        method, template = rule.custom.kind, rule.custom.path
    else:
        method, template = pattern, getattr(rule, pattern)
    if rule.body not in ("", "*", *raw_bodies):
        raise ValueError(
            f"{message}: body {rule.body!r}: only '*', none or a {RAW_BODY} field is checked"
        )
    return RestRoute(method.upper(), template, rule.body, message)


class _Index:
    def __init__(self, files: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.services: dict[str, descriptor_pb2.ServiceDescriptorProto] = {}
        for file in files.file:
            prefix = f"{file.package}." if file.package else ""
            for message in file.message_type:
                self._add(prefix, message)
            for enum in file.enum_type:
                self.enums[prefix + enum.name] = enum
            for service in file.service:
                self.services[prefix + service.name] = service

    def _add(self, prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = prefix + message.name
        self.messages[name] = message
        for nested in message.nested_type:
            self._add(f"{name}.", nested)
        for enum in message.enum_type:
            self.enums[f"{name}.{enum.name}"] = enum


def rest_routes(
    files: descriptor_pb2.FileDescriptorSet, services: Sequence[str]
) -> list[RestRoute]:
    index = _Index(files)
    routes: list[RestRoute] = []
    for service in services:
        for method in index.services[service].method:
            if method.options.HasExtension(annotations_pb2.http):
                rule = method.options.Extensions[annotations_pb2.http]
                message = method.input_type.lstrip(".")
                raw = {
                    field.name
                    for field in index.messages[message].field
                    if field.type_name.lstrip(".") == RAW_BODY
                }
                routes += [_route(binding, message, raw) for binding in _bindings(rule)]
    return routes


def rest_schema(files: descriptor_pb2.FileDescriptorSet, services: Sequence[str]) -> JSON:
    """The routes, and every message and enum their requests reach. Messages of
    google.protobuf (Timestamp, Struct, ...) are left out: the transcoder judges them."""
    index = _Index(files)
    routes = rest_routes(files, services)
    messages: dict[str, JSON] = {}
    enums: dict[str, JSON] = {}
    pending = [route.message for route in routes]
    while pending:
        name = pending.pop()
        if name in messages or name.startswith("google.protobuf."):
            continue
        fields: list[JSON] = []
        names: list[str] = []
        for field in index.messages[name].field:
            names.append(field.name)
            type_name = field.type_name.lstrip(".")
            kind = _KINDS[field.type]
            if kind == "message":
                pending.append(type_name)
            elif kind == "enum":
                enums[type_name] = {"values": [v.name for v in index.enums[type_name].value]}
            fields.append(
                {
                    "name": field.name,
                    "json": field.json_name or field.name,
                    "kind": kind,
                    "type": type_name,
                    "repeated": field.label == _Field.LABEL_REPEATED,
                }
            )
        messages[name] = {
            "name": name,
            "fields": fields,
            "listing": ", ".join(names),
        }
    return {
        "routes": [
            {
                "method": r.method,
                "pattern": r.lua_pattern,
                "variables": r.variables,
                "body": r.body,
                "message": r.message,
            }
            for r in routes
        ],
        "messages": messages,
        "enums": enums,
    }


def rest_fields_source(descriptor: Path, services: Sequence[str]) -> str:
    """The Lua filter's code: the schema as a JSON long string, then the checker."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    schema = json.dumps(rest_schema(files, services), sort_keys=True, ensure_ascii=True)
    level = "=" * next(n for n in range(1, 10) if f"]{'=' * n}]" not in schema)
    checker = resources.files("mesh.render").joinpath("rest_fields.lua").read_text()
    generated = "-- Generated by mesh.render.rest_fields from the descriptor set; do not edit.\n"
    return (
        f"{generated}local SCHEMA = [{level}[{schema}]{level}]\n"
        f'local REJECTED_HEADER = "{REJECTED_HEADER}"\n\n{checker}'
    )


def rest_fields_filter(source: str) -> JSON:
    return {
        "name": LUA,
        "typed_config": {"@type": LUA_TYPE, "default_source_code": {"inline_string": source}},
    }
