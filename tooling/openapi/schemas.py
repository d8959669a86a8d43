"""Proto types as OpenAPI schemas, shaped like the transcoder prints them.

The gateway prints with `preserve_proto_field_names` (so properties are the proto
names) and `always_print_primitive_fields`; 64-bit integers are JSON strings and
enums are their value names, as the proto3 JSON mapping says.
"""

from __future__ import annotations

import copy
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

from tooling.openapi.descriptors import Enum, Message, ProtoIndex, field_behaviors

Schema = dict[str, Any]

COMPONENTS_PREFIX = "#/components/schemas/"

_Field = descriptor_pb2.FieldDescriptorProto
_INT32: Schema = {"type": "integer", "format": "int32"}
# uint32 does not fit int32; OpenAPI has no unsigned 32-bit format.
_UINT32: Schema = {"type": "integer", "format": "int64", "minimum": 0}
_INT64: Schema = {"type": "string", "format": "int64"}
_UINT64: Schema = {"type": "string", "format": "uint64"}

_SCALARS: dict[int, Schema] = {
    _Field.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _Field.TYPE_FLOAT: {"type": "number", "format": "float"},
    _Field.TYPE_INT32: _INT32,
    _Field.TYPE_SINT32: _INT32,
    _Field.TYPE_SFIXED32: _INT32,
    _Field.TYPE_UINT32: _UINT32,
    _Field.TYPE_FIXED32: _UINT32,
    _Field.TYPE_INT64: _INT64,
    _Field.TYPE_SINT64: _INT64,
    _Field.TYPE_SFIXED64: _INT64,
    _Field.TYPE_UINT64: _UINT64,
    _Field.TYPE_FIXED64: _UINT64,
    _Field.TYPE_BOOL: {"type": "boolean"},
    _Field.TYPE_STRING: {"type": "string"},
    _Field.TYPE_BYTES: {"type": "string", "format": "byte"},
}

ANY_SCHEMA: Schema = {
    "type": "object",
    "description": "A message of the type named by `@type`, with that type's fields.",
    "properties": {"@type": {"type": "string"}},
    "required": ["@type"],
    "additionalProperties": True,
}

# Well-known types have their own JSON forms and are inlined, not referenced.
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": ANY_SCHEMA,
    **{
        f"google.protobuf.{name}": {**scalar, "nullable": True}
        for name, scalar in {
            "DoubleValue": _SCALARS[_Field.TYPE_DOUBLE],
            "FloatValue": _SCALARS[_Field.TYPE_FLOAT],
            "Int64Value": _INT64,
            "UInt64Value": _UINT64,
            "Int32Value": _INT32,
            "UInt32Value": _UINT32,
            "BoolValue": _SCALARS[_Field.TYPE_BOOL],
            "StringValue": _SCALARS[_Field.TYPE_STRING],
            "BytesValue": _SCALARS[_Field.TYPE_BYTES],
        }.items()
    },
}


def ref(name: str) -> Schema:
    return {"$ref": COMPONENTS_PREFIX + name}


def annotate(schema: Schema, extra: Schema) -> Schema:
    """`schema` with `extra` keywords; OpenAPI 3.0 ignores siblings of `$ref`, hence allOf."""
    if not extra:
        return schema
    if "$ref" in schema:
        return {"allOf": [schema], **extra}
    return {**schema, **extra}


class SchemaBuilder:
    """Maps fields to schemas and collects every message and enum they reach."""

    def __init__(self, index: ProtoIndex) -> None:
        self._index = index
        self.components: dict[str, Schema] = {}

    def object_schema(self, message: Message, *, omit: frozenset[str] = frozenset()) -> Schema:
        """The JSON object of `message`, less the fields in `omit` (bound elsewhere)."""
        properties: Schema = {}
        required: list[str] = []
        for i, field in enumerate(message.proto.field):
            if field.name in omit:
                continue
            properties[field.name] = self.field_schema(message, i)
            if field_behavior_pb2.REQUIRED in field_behaviors(field):
                required.append(field.name)
        schema: Schema = {"type": "object", "properties": properties}
        if description := self._index.comment(message):
            schema["description"] = description
        if required:
            schema["required"] = required
        return schema

    def field_schema(self, message: Message, index: int) -> Schema:
        """A field's value schema with its description and field behavior."""
        field = message.proto.field[index]
        extra: Schema = {}
        if description := self._index.field_comment(message, index):
            extra["description"] = description
        behaviors = field_behaviors(field)
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            extra["readOnly"] = True
        if field_behavior_pb2.INPUT_ONLY in behaviors:
            extra["writeOnly"] = True
        return annotate(self.value_schema(field), extra)

    def value_schema(self, field: descriptor_pb2.FieldDescriptorProto) -> Schema:
        if field.type == _Field.TYPE_MESSAGE:
            entry = self._index.message(field.type_name)
            if entry.proto.options.map_entry:
                # Map keys are always JSON strings; the value is field 2 of the entry.
                return {
                    "type": "object",
                    "additionalProperties": self._single(entry.proto.field[1]),
                }
        item = self._single(field)
        if field.label == _Field.LABEL_REPEATED:
            return {"type": "array", "items": item}
        return item

    def _single(self, field: descriptor_pb2.FieldDescriptorProto) -> Schema:
        if field.type in (_Field.TYPE_MESSAGE, _Field.TYPE_GROUP):
            return self.message_ref(field.type_name)
        if field.type == _Field.TYPE_ENUM:
            return self.enum_ref(field.type_name)
        return copy.deepcopy(_SCALARS[field.type])

    def message_ref(self, type_name: str) -> Schema:
        full_name = type_name.lstrip(".")
        if full_name in _WELL_KNOWN:
            return copy.deepcopy(_WELL_KNOWN[full_name])
        if full_name not in self.components:
            self.components[full_name] = {}  # claimed first: recursive messages stop here
            self.components[full_name] = self.object_schema(self._index.message(full_name))
        return ref(full_name)

    def enum_ref(self, type_name: str) -> Schema:
        enum = self._index.enum(type_name)
        if enum.full_name not in self.components:
            self.components[enum.full_name] = self._enum_schema(enum)
        return ref(enum.full_name)

    def _enum_schema(self, enum: Enum) -> Schema:
        names = [value.name for value in enum.proto.value]
        # The values' own comments say what each name means; list them under the enum's.
        lines = [
            f"- `{value.name}`: {' '.join(comment.split())}"
            for i, value in enumerate(enum.proto.value)
            if (comment := self._index.value_comment(enum, i))
        ]
        description = "\n\n".join(
            part for part in (self._index.comment(enum), "\n".join(lines)) if part
        )
        schema: Schema = {"type": "string", "enum": names}
        if description:
            schema["description"] = description
        return schema
