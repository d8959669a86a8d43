"""The descriptor set indexed by full type name, with each element's doc comment.

Works on the raw `FileDescriptorProto`s because only they keep `SourceCodeInfo`,
where the comments live, addressed by paths of field numbers of descriptor.proto.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Imported for their side effect too: the extensions must be registered before the
# descriptor set is parsed, or the options would keep them as unknown fields.
from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from tooling.openapi import comments

# Field numbers of descriptor.proto that make up SourceCodeInfo paths.
_FILE_MESSAGE = 4
_FILE_ENUM = 5
_FILE_SERVICE = 6
_MESSAGE_FIELD = 2
_MESSAGE_NESTED = 3
_MESSAGE_ENUM = 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

SourcePath = tuple[int, ...]


@dataclass(frozen=True)
class Message:
    full_name: str
    proto: descriptor_pb2.DescriptorProto
    file: str
    path: SourcePath


@dataclass(frozen=True)
class Enum:
    full_name: str
    proto: descriptor_pb2.EnumDescriptorProto
    file: str
    path: SourcePath


@dataclass(frozen=True)
class Service:
    full_name: str
    proto: descriptor_pb2.ServiceDescriptorProto
    file: str
    path: SourcePath


class ProtoIndex:
    """Messages, enums and services of a FileDescriptorSet, and their comments."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, Enum] = {}
        self.services: dict[str, Service] = {}
        self._comments: dict[tuple[str, SourcePath], str] = {}
        for file in files.file:
            self._add_file(file)

    def _add_file(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        prefix = f"{file.package}." if file.package else ""
        for location in file.source_code_info.location:
            if location.leading_comments:
                self._comments[(file.name, tuple(location.path))] = comments.clean(
                    location.leading_comments
                )
        for i, message in enumerate(file.message_type):
            self._add_message(file.name, prefix, message, (_FILE_MESSAGE, i))
        for i, enum in enumerate(file.enum_type):
            name = prefix + enum.name
            self.enums[name] = Enum(name, enum, file.name, (_FILE_ENUM, i))
        for i, service in enumerate(file.service):
            name = prefix + service.name
            self.services[name] = Service(name, service, file.name, (_FILE_SERVICE, i))

    def _add_message(
        self, file: str, prefix: str, message: descriptor_pb2.DescriptorProto, path: SourcePath
    ) -> None:
        name = prefix + message.name
        self.messages[name] = Message(name, message, file, path)
        for i, nested in enumerate(message.nested_type):
            self._add_message(file, f"{name}.", nested, (*path, _MESSAGE_NESTED, i))
        for i, enum in enumerate(message.enum_type):
            enum_name = f"{name}.{enum.name}"
            self.enums[enum_name] = Enum(enum_name, enum, file, (*path, _MESSAGE_ENUM, i))

    def message(self, type_name: str) -> Message:
        """A message by full name; a field's `type_name` (leading dot) works too."""
        return self.messages[type_name.lstrip(".")]

    def enum(self, type_name: str) -> Enum:
        return self.enums[type_name.lstrip(".")]

    def comment(self, element: Message | Enum | Service) -> str:
        return self._comments.get((element.file, element.path), "")

    def field_comment(self, message: Message, index: int) -> str:
        return self._comments.get((message.file, (*message.path, _MESSAGE_FIELD, index)), "")

    def value_comment(self, enum: Enum, index: int) -> str:
        return self._comments.get((enum.file, (*enum.path, _ENUM_VALUE, index)), "")

    def method_comment(self, service: Service, index: int) -> str:
        return self._comments.get((service.file, (*service.path, _SERVICE_METHOD, index)), "")


def load(path: Path) -> ProtoIndex:
    return ProtoIndex(descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()))


def field_behaviors(field: descriptor_pb2.FieldDescriptorProto) -> frozenset[int]:
    return frozenset(field.options.Extensions[field_behavior_pb2.field_behavior])


def http_rule(method: descriptor_pb2.MethodDescriptorProto) -> http_pb2.HttpRule | None:
    if not method.options.HasExtension(annotations_pb2.http):
        return None
    return method.options.Extensions[annotations_pb2.http]
