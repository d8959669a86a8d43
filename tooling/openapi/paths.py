"""`google.api.http` rules as OpenAPI path items and operations.

The transcoder binds path variables first, then the body (`*` takes every other
field), and reads any field left unbound from the query string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.api import field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from tooling.openapi import comments, errors
from tooling.openapi.descriptors import Message, ProtoIndex, Service, field_behaviors, http_rule
from tooling.openapi.schemas import Schema, SchemaBuilder

# `{field}` or `{field=pattern}`; OpenAPI has no patterns, so only the name is kept.
_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")
_OPENAPI_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})
_Field = descriptor_pb2.FieldDescriptorProto


@dataclass(frozen=True)
class Binding:
    """One HTTP mapping of an RPC: the rule itself or one of its additional bindings."""

    method: str
    template: str
    body: str
    response_body: str

    @property
    def path(self) -> str:
        return _VARIABLE.sub(r"{\1}", self.template)

    @property
    def variables(self) -> list[str]:
        return _VARIABLE.findall(self.template)


def bindings(rule: http_pb2.HttpRule) -> list[Binding]:
    found = [_binding(rule)]
    found.extend(_binding(extra) for extra in rule.additional_bindings)
    return found


def _binding(rule: http_pb2.HttpRule) -> Binding:
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        raise ValueError("http rule without a pattern")
    if pattern == "custom":
        method, template = rule.custom.kind.lower(), rule.custom.path
    else:
        method, template = pattern, getattr(rule, pattern)
    if method not in _OPENAPI_METHODS:
        raise ValueError(f"HTTP method {method!r} cannot be described in OpenAPI")
    return Binding(method, template, rule.body, rule.response_body)


class OperationBuilder:
    """Builds the operations of a service's annotated RPCs."""

    def __init__(self, index: ProtoIndex, schemas: SchemaBuilder) -> None:
        self._index = index
        self._schemas = schemas

    def operations(self, service: Service) -> list[tuple[Binding, Schema]]:
        found: list[tuple[Binding, Schema]] = []
        for i, method in enumerate(service.proto.method):
            rule = http_rule(method)
            if rule is None:  # gRPC only: the gateway does not route it
                continue
            for n, binding in enumerate(bindings(rule)):
                operation = self._operation(service, i, binding)
                if n:  # additional bindings need operation ids of their own
                    operation["operationId"] = f"{method.name}{n + 1}"
                found.append((binding, operation))
        return found

    def _operation(self, service: Service, index: int, binding: Binding) -> Schema:
        method = service.proto.method[index]
        request = self._index.message(method.input_type)
        operation: Schema = {
            "operationId": method.name,
            "tags": [service.full_name],
            "parameters": self._parameters(request, binding),
            "responses": {
                "200": self._success(method, binding),
                **errors.error_responses(mutates=binding.method != "get"),
            },
        }
        if comment := self._index.method_comment(service, index):
            operation["summary"] = comments.summary(comment)
            operation["description"] = comment
        if binding.body:
            operation["requestBody"] = self._request_body(request, binding)
        return operation

    def _parameters(self, request: Message, binding: Binding) -> list[Schema]:
        parameters = [self._path_parameter(request, name) for name in binding.variables]
        if binding.body == "*":
            return parameters
        bound = {name.split(".")[0] for name in binding.variables} | {binding.body}
        for i, field in enumerate(request.proto.field):
            if field.name in bound or field.type in (_Field.TYPE_MESSAGE, _Field.TYPE_GROUP):
                continue  # query strings carry only scalars and enums here
            parameters.append(
                self._parameter(
                    field.name,
                    "query",
                    self._schemas.value_schema(field),
                    self._index.field_comment(request, i),
                    required=field_behavior_pb2.REQUIRED in field_behaviors(field),
                )
            )
        return parameters

    def _path_parameter(self, request: Message, name: str) -> Schema:
        # A variable may name a nested field (`{parent.id}`); walk down to it.
        message, field_index = request, -1
        for depth, part in enumerate(name.split(".")):
            if depth:
                message = self._index.message(message.proto.field[field_index].type_name)
            field_index = _field_index(message, part)
        field = message.proto.field[field_index]
        return self._parameter(
            name,
            "path",
            self._schemas.value_schema(field),
            self._index.field_comment(message, field_index),
            required=True,
        )

    @staticmethod
    def _parameter(
        name: str, location: str, schema: Schema, description: str, *, required: bool
    ) -> Schema:
        parameter: Schema = {"name": name, "in": location, "required": required, "schema": schema}
        if description:
            parameter["description"] = description
        return parameter

    def _request_body(self, request: Message, binding: Binding) -> Schema:
        if binding.body == "*":
            omit = frozenset(name for name in binding.variables if "." not in name)
            schema = self._schemas.object_schema(request, omit=omit)
        else:
            field = request.proto.field[_field_index(request, binding.body)]
            if field.type_name.lstrip(".") == RAW_BODY:
                # The body is the document itself, passed through untouched.
                raw: Schema = {"schema": {"type": "string", "format": "binary"}}
                return {"required": True, "content": dict.fromkeys(RAW_MEDIA_TYPES, raw)}
            schema = self._schemas.value_schema(field)
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def _success(self, method: descriptor_pb2.MethodDescriptorProto, binding: Binding) -> Schema:
        response = self._index.message(method.output_type)
        if binding.response_body:
            field = response.proto.field[_field_index(response, binding.response_body)]
            schema = self._schemas.value_schema(field)
        else:
            schema = self._schemas.message_ref(response.full_name)
        if method.server_streaming:  # the transcoder sends a stream as one JSON array
            schema = {"type": "array", "items": schema}
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}


# A body bound to a google.api.HttpBody field is the raw request body: fiscal's XML.
RAW_BODY = "google.api.HttpBody"
RAW_MEDIA_TYPES = ("application/xml", "text/xml")


def _field_index(message: Message, name: str) -> int:
    for i, field in enumerate(message.proto.field):
        if field.name == name:
            return i
    raise ValueError(f"{message.full_name} has no field {name!r}")
