"""The official XSDs (as nfelib ships them), each compiled once per process.

nfelib's own helper compiles the schema on every call, which costs more than the
validation itself; here each root's schema is compiled on first use and kept (once
per worker thread: see `_compiled`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from lxml import etree

_NFELIB = Path(str(files("nfelib")))
# Per root element: the schema that declares it.
SCHEMA_FILES = {
    "NFe": _NFELIB / "nfe" / "schemas" / "v4_0" / "nfe_v4.00.xsd",
    "nfeProc": _NFELIB / "nfe" / "schemas" / "v4_0" / "procNFe_v4.00.xsd",
    "procEventoNFe": _NFELIB
    / "nfe_evento_cancel"
    / "schemas"
    / "v1_0"
    / "procEventoCancNFe_v1.00.xsd",
}
# Schema files are local and trusted, but still: their includes resolve on disk only.
_SCHEMA_PARSER = etree.XMLParser(no_network=True, resolve_entities=False)


@dataclass(frozen=True)
class SchemaError:
    line: int
    path: str  # an XPath to the element, as libxml2 reports it
    message: str


# One compiled schema per kind and per thread: lxml keeps a validation's errors in the
# schema object itself, so two threads validating with one schema would read each
# other's (a wrong verdict, another document's values in the findings).
_compiled = threading.local()
_SOURCES: dict[str, etree._ElementTree] = {}
_lock = threading.Lock()


def _source(kind: str) -> etree._ElementTree:
    with _lock:
        found = _SOURCES.get(kind)
        if found is None:
            found = _SOURCES[kind] = etree.parse(str(SCHEMA_FILES[kind]), _SCHEMA_PARSER)
        return found


def schema(kind: str) -> etree.XMLSchema:
    """This thread's compiled schema of `kind`, compiled on its first use."""
    mine: dict[str, etree.XMLSchema] | None = getattr(_compiled, "schemas", None)
    if mine is None:
        mine = _compiled.schemas = {}
    found = mine.get(kind)
    if found is None:
        found = mine[kind] = etree.XMLSchema(_source(kind))
    return found


def schema_errors(root: etree._Element, kind: str) -> list[SchemaError]:
    """Every violation of the root's schema, in document order ([] when valid)."""
    checker = schema(kind)
    if checker.validate(root):
        return []
    return [SchemaError(e.line, e.path or "", e.message) for e in checker.error_log]
