"""Hostile XML is refused clearly and quickly, never expanded, fetched or crashed on
(issue 12 §3). Each case runs in a thread with a time bound."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.fiscal.xml_input import DEFAULT_LIMITS, Limits, XmlRejected, kind, parse
from tests.services.fiscal.samples import sample_paths

BOUND = 2.0  # seconds, for any refusal

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<NFe xmlns="http://www.portalfiscal.inf.br/nfe">&lol9;</NFe>"""


class _Fetches(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"leaked")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[str]:
    """A real HTTP server an external entity would be fetched from."""
    _Fetches.hits = 0
    server = http.server.HTTPServer(("127.0.0.1", 0), _Fetches)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/secret"
    server.shutdown()


def _refused(data: bytes, reason: str, limits: Limits = DEFAULT_LIMITS) -> str:
    started = time.monotonic()
    with pytest.raises(XmlRejected) as refused:
        parse(data, limits)
    assert time.monotonic() - started < BOUND
    assert refused.value.reason == reason, refused.value.message
    return refused.value.message


def test_every_sample_parses_to_its_kind() -> None:
    for path in sample_paths():
        assert kind(parse(path.read_bytes())) in {"NFe", "nfeProc"}, path.name


def test_billion_laughs_is_refused_unexpanded() -> None:
    assert "DTD" in _refused(BILLION_LAUGHS, "dtd")


def test_external_entities_are_never_fetched(listener: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    for system in (listener, secret.as_uri()):
        data = (
            f'<?xml version="1.0"?><!DOCTYPE NFe [<!ENTITY x SYSTEM "{system}">]>'
            '<NFe xmlns="http://www.portalfiscal.inf.br/nfe">&x;</NFe>'
        ).encode()
        _refused(data, "dtd")
    # An external DTD subset, too.
    data = f'<?xml version="1.0"?><!DOCTYPE NFe SYSTEM "{listener}"><NFe/>'.encode()
    _refused(data, "dtd")
    assert _Fetches.hits == 0


def test_50_mb_is_refused_before_parsing() -> None:
    big = b"<NFe>" + b" " * (50 * 1024 * 1024) + b"</NFe>"
    assert "at most" in _refused(big, "too_large")


def test_deep_nesting_is_refused() -> None:
    deep = b"<a>" * 10_000 + b"</a>" * 10_000
    message = _refused(deep, "not_xml")  # libxml2 stops at its own 256 first
    assert "depth" in message.lower() or "excessive" in message.lower()
    assert "deeper than 32" in _refused(b"<a>" * 40 + b"</a>" * 40, "too_deep")


def test_too_many_elements_is_refused() -> None:
    wide = b"<NFe>" + b"<x/>" * 2_000 + b"</NFe>"
    _refused(wide, "too_many_elements", Limits(max_elements=1_000))


@pytest.mark.parametrize(
    "data", [b"", b"   ", b"not xml at all", b'{"json": true}', b"<NFe>", b"\x00\xff\xfe"]
)
def test_not_xml_is_refused(data: bytes) -> None:
    _refused(data, "not_xml")


def test_a_wrong_root_is_named() -> None:
    message = _refused(b'<html xmlns="http://www.w3.org/1999/xhtml"/>', "wrong_root")
    assert "html" in message and "nfeProc" in message
    # The right name in no namespace is still not an NF-e.
    _refused(b"<NFe/>", "wrong_root")
