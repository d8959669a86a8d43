"""Request bodies for native load generators: gRPC length-prefixed frames."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from google.protobuf.message import Message


def frame(message: Message) -> bytes:
    """One gRPC message: uncompressed flag, big-endian length, payload."""
    payload = message.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def write_body(path: Path, messages: Iterable[Message]) -> Path:
    """A request body; several messages make one client-streaming call."""
    path.write_bytes(b"".join(frame(m) for m in messages))
    return path
