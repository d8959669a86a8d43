"""REST/JSON calls through a running gateway, as a plain HTTP/1.1 client sends them."""

from __future__ import annotations

import asyncio
import http.client
import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.stack import LocalStack


@dataclass(frozen=True)
class Reply:
    """One REST answer: status, parsed JSON body (or the raw text), content type."""

    status: int
    body: Any
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


def http_request(
    base_url: str,
    method: str,
    path: str,
    body: object | None,
    *,
    headers: dict[str, str] | None = None,
) -> Reply:
    host, _, port = base_url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        headers = {"accept": "application/json", **(headers or {})}
        payload = None
        if body is not None:
            if isinstance(body, bytes):
                payload = body
            elif isinstance(body, str):
                payload = body.encode()
            else:
                payload = json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read().decode()
        content_type = response.getheader("content-type", "")
        parsed: Any = raw
        if content_type.startswith("application/json"):
            parsed = json.loads(raw)
        names = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, parsed, content_type, names)
    finally:
        connection.close()


async def rest(
    gateway: LocalStack,
    method: str,
    path: str,
    body: object | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A REST call through the gateway. In a thread: the services share this event loop.
    `body` is sent as JSON; a str (UTF-8) or bytes as they are (for malformed JSON, or
    an XML document with its own content-type in `headers`)."""
    return await asyncio.to_thread(
        http_request, gateway.rest_url, method, path, body, headers=headers
    )
