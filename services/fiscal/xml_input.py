"""Untrusted XML in, a parsed tree out, or a clear refusal.

No DTD of any kind (so no entity, internal or external, is ever expanded or fetched),
no network, and caps on the size, the depth and the number of elements, checked before
anything else looks at the document. Every refusal is an XmlRejected with a reason the
API maps to INVALID_ARGUMENT (413 for the size) and a message naming what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

NFE_NAMESPACE = "http://www.portalfiscal.inf.br/nfe"
# The documents fiscal takes: an invoice alone, an authorized one, a cancellation.
ROOTS = {
    f"{{{NFE_NAMESPACE}}}NFe": "NFe",
    f"{{{NFE_NAMESPACE}}}nfeProc": "nfeProc",
    f"{{{NFE_NAMESPACE}}}procEventoNFe": "procEventoNFe",
}


@dataclass(frozen=True)
class Limits:
    # An NF-e with its 990 items at most is well under 2 MiB.
    max_bytes: int = 5 * 1024 * 1024
    # The layout nests about 10 deep; the signature adds a few.
    max_depth: int = 32
    max_elements: int = 200_000


DEFAULT_LIMITS = Limits()


class XmlRejected(Exception):
    """reason: too_large, not_xml, dtd, too_deep, too_many_elements, wrong_root."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_PARSER = _parser()


def _check_shape(root: etree._Element, limits: Limits) -> None:
    depth = elements = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        elements += 1
        if depth > limits.max_depth:
            raise XmlRejected("too_deep", f"the document nests deeper than {limits.max_depth}")
        if elements > limits.max_elements:
            raise XmlRejected(
                "too_many_elements", f"the document has more than {limits.max_elements} elements"
            )


def parse(data: bytes, limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """The document's root element, refused unless it is one of ROOTS."""
    if len(data) > limits.max_bytes:
        raise XmlRejected(
            "too_large", f"the document is {len(data)} bytes; at most {limits.max_bytes}"
        )
    if not data.strip():
        raise XmlRejected("not_xml", "the document is empty")
    # Before libxml2 sees it: a DOCTYPE is where entities and external subsets live, and
    # the literal can appear nowhere else in well-formed XML (text escapes its "<").
    if b"<!DOCTYPE" in data:
        raise XmlRejected("dtd", "the document declares a DTD; NF-e documents never do")
    try:
        tree = etree.fromstring(data, _PARSER).getroottree()
    except etree.XMLSyntaxError as error:
        raise XmlRejected("not_xml", f"not well-formed XML: {error.msg}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRejected("dtd", "the document declares a DTD; NF-e documents never do")
    root = tree.getroot()
    _check_shape(root, limits)
    if str(root.tag) not in ROOTS:
        expected = ", ".join(sorted(ROOTS.values()))
        raise XmlRejected(
            "wrong_root", f"the root element is {root.tag!r}; expected one of {expected}"
        )
    return root


def kind(root: etree._Element) -> str:
    """NFe, nfeProc or procEventoNFe (parse has checked it is one)."""
    return ROOTS[str(root.tag)]
