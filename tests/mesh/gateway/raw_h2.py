"""Just enough HTTP/2 to see the frames of one unary gRPC call: whether an error came back
trailers-only (one HEADERS frame that ends the stream) or as headers, data and trailers.

grpc-python hides that difference, and no h2 library is installed. The request's headers
are HPACK literals without indexing or Huffman coding, so nothing has to be decoded on the
way back: the frame types and flags say everything this module is asked.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, GOAWAY, CONTINUATION = 0x0, 0x1, 0x4, 0x6, 0x7, 0x9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
STREAM = 1


@dataclass(frozen=True)
class Frame:
    type: int
    flags: int
    stream: int
    payload: bytes

    @property
    def ends_stream(self) -> bool:
        return self.type in (DATA, HEADERS) and bool(self.flags & END_STREAM)


def _frame(frame_type: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    header = struct.pack(">I", len(payload))[1:] + bytes([frame_type, flags])
    return header + struct.pack(">I", stream) + payload


def _hpack_int(value: int, prefix_bits: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out = [limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _literal(name: str, value: str) -> bytes:
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    raw_name, raw_value = name.encode(), value.encode()
    return (
        b"\x00"
        + _hpack_int(len(raw_name), 7)
        + raw_name
        + _hpack_int(len(raw_value), 7)
        + raw_value
    )


async def _read_frame(reader: asyncio.StreamReader) -> Frame:
    header = await reader.readexactly(9)
    length = int.from_bytes(header[:3], "big")
    stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
    return Frame(header[3], header[4], stream, await reader.readexactly(length))


async def unary_frames(target: str, method: str, message: bytes) -> list[Frame]:
    """Sends one gRPC request on a fresh connection; returns the frames of its stream."""
    host, _, port = target.partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        block = b"".join(
            _literal(name, value)
            for name, value in [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", method),
                (":authority", target),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ]
        )
        body = b"\x00" + struct.pack(">I", len(message)) + message
        writer.write(
            PREFACE
            + _frame(SETTINGS, 0, 0)
            + _frame(HEADERS, END_HEADERS, STREAM, block)
            + _frame(DATA, END_STREAM, STREAM, body)
        )
        await writer.drain()
        frames: list[Frame] = []
        while True:
            frame = await asyncio.wait_for(_read_frame(reader), timeout=5)
            if frame.type == SETTINGS and not frame.flags & ACK:
                writer.write(_frame(SETTINGS, ACK, 0))
            elif frame.type == PING and not frame.flags & ACK:
                writer.write(_frame(PING, ACK, 0, frame.payload))
            elif frame.type == GOAWAY:
                raise ConnectionError(f"GOAWAY before the stream ended: {frame.payload!r}")
            elif frame.stream == STREAM:
                frames.append(frame)
                if frame.ends_stream:
                    return frames
    finally:
        writer.close()
        await writer.wait_closed()


def shape(frames: list[Frame]) -> list[str]:
    """The stream as frame names, e.g. ["HEADERS+END_STREAM"] for trailers-only."""
    names = {DATA: "DATA", HEADERS: "HEADERS", CONTINUATION: "CONTINUATION"}
    return [
        names.get(f.type, hex(f.type)) + ("+END_STREAM" if f.ends_stream else "") for f in frames
    ]
