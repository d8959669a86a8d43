"""`caixa trace`: one request's path through the local stack, read from the
trace receiver that `make run` runs (tooling/devstack/trace_receiver.py).

Plain HTTP and JSON, so the client distribution needs nothing more for it.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

TRACE_URL_ENV = "CAIXA_TRACE_URL"
# mesh.localTopology.traces.queryPort of values-local.yaml; a test holds them equal.
DEFAULT_TRACE_URL = "http://localhost:15018"

Json = dict[str, Any]
TRACE_ID = re.compile(r"[0-9a-f]{32}")


class TraceLookupError(Exception):
    """One line for the user. `rejected`: asking again will not help (no such
    trace, a bad argument); else the receiver could not be reached."""

    def __init__(self, message: str, *, rejected: bool) -> None:
        super().__init__(message)
        self.rejected = rejected


def default_trace_url() -> str:
    return os.environ.get(TRACE_URL_ENV) or DEFAULT_TRACE_URL


def _get(url: str) -> Json:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: Json = json.load(response)
            return body
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read() or b"{}").get("error", error.reason)
        except ValueError:
            detail = f"{error.code} {error.reason} (is this the trace receiver?)"
        raise TraceLookupError(f"{url}: {detail}", rejected=True) from None
    except ValueError:
        raise TraceLookupError(
            f"{url} did not answer JSON: is this the trace receiver?", rejected=True
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TraceLookupError(
            f"no trace receiver at {url} ({reason}); is `make run` up? "
            f"(--url or ${TRACE_URL_ENV} names another)",
            rejected=False,
        ) from None


def _checked(base: str) -> str:
    if not base.startswith(("http://", "https://")):
        raise TraceLookupError(f"--url {base!r}: expected http://host:port", rejected=True)
    return base.rstrip("/")


def recent(base: str, limit: int) -> str:
    """The newest traces, one line each."""
    traces = _get(f"{_checked(base)}/api/traces?limit={limit}")["traces"]
    if not traces:
        return "no traces yet: send a request through the gateway, then run this again"
    lines = [f"{'started (UTC)':<23}  {'trace id':<32}  {'ms':>8}  spans  root"]
    for t in traces:
        started = _time(t["start_unix_nano"])
        errors = f"  {t['errors']} error(s)" if t["errors"] else ""
        lines.append(
            f"{started:<23}  {t['trace_id']:<32}  {t['duration_ms']:>8.1f}  "
            f"{t['spans']:>5}  {t['root']}{errors}"
        )
    return "\n".join(lines)


def last_id(base: str) -> str:
    traces = _get(f"{_checked(base)}/api/traces?limit=1")["traces"]
    if not traces:
        raise TraceLookupError(
            "no traces yet: send a request through the gateway first", rejected=True
        )
    return str(traces[0]["trace_id"])


def show(base: str, trace_id: str) -> str:
    """One trace as a tree of spans, then the spans of batches that carried it."""
    wanted = trace_id.strip().lower()
    if not TRACE_ID.fullmatch(wanted):
        raise TraceLookupError(
            f"{trace_id!r} is not a trace id: 32 hex digits, as in the x-trace-id header",
            rejected=True,
        )
    trace = _get(f"{_checked(base)}/api/traces/{wanted}")
    spans: list[Json] = trace["spans"]
    start = min(s["start_unix_nano"] for s in spans)
    services = sorted({s["service"] for s in spans})
    lines = [
        f"trace {trace['trace_id']}  {_time(start)} UTC  "
        f"{len(spans)} spans, services: {', '.join(services)}",
        f"{'start ms':>9} {'took ms':>9}  service / span",
        *_tree(spans, start),
    ]
    linked: list[Json] = trace["linked"]
    if linked:
        lines.append("carried on by a batch of another trace (linked):")
        lines += _tree(linked, start)
    return "\n".join(lines)


def _tree(spans: Sequence[Json], start: int) -> list[str]:
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[Json]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else ""
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s["start_unix_nano"]):
            offset = (span["start_unix_nano"] - start) / 1e6
            status = span["status"]["code"]
            flag = f"  {status} {span['status']['message']}".rstrip() if status == "ERROR" else ""
            grpc_code = span["attributes"].get("rpc.grpc.status_code")
            code = f"  grpc-status {grpc_code}" if grpc_code not in (None, 0) else ""
            lines.append(
                f"{offset:>9.1f} {span['duration_ms']:>9.1f}  {'  ' * depth}"
                f"{span['service']}: {span['name']}{code}{flag}"
            )
            walk(span["span_id"], depth + 1)

    walk("", 0)
    return lines


def _time(unix_nano: int) -> str:
    moment = datetime.fromtimestamp(unix_nano / 1e9, UTC)
    return moment.isoformat(sep=" ", timespec="milliseconds").removesuffix("+00:00")
