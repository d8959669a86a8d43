"""Reading an NF-e's fields: names in the NF-e namespace, a path of local names, text
and amounts as written."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from lxml import etree

from services.fiscal.xml_input import NFE_NAMESPACE

N = f"{{{NFE_NAMESPACE}}}"


def qualified(path: str) -> str:
    """'total/ICMSTot/vNF' in the NF-e namespace, for find/findall."""
    return "/".join(f"{N}{part}" for part in path.split("/"))


def text(parent: etree._Element | None, path: str) -> str:
    """The stripped text at `path` below `parent`, "" when absent."""
    if parent is None:
        return ""
    found = parent.find(qualified(path))
    return (found.text or "").strip() if found is not None else ""


def decimal(element: etree._Element | None) -> Decimal | None:
    """The element's amount, None when it is absent, not a number or not finite
    (NaN and Infinity parse, but cannot be compared; the schema reports them)."""
    if element is None or element.text is None:
        return None
    try:
        found = Decimal(element.text.strip())
    except InvalidOperation:
        return None
    return found if found.is_finite() else None
