"""Proto doc comments turned into OpenAPI descriptions."""

from __future__ import annotations

import re

# A sentence ends at `.`, `!` or `?` followed by whitespace or the end of the text.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def clean(raw: str) -> str:
    """The comment without the space protoc keeps after `//`, and without blank edges."""
    lines = [line.removeprefix(" ").rstrip() for line in raw.splitlines()]
    return "\n".join(lines).strip()


def summary(text: str) -> str:
    """The first sentence of the first paragraph, on one line."""
    first_paragraph = text.split("\n\n", 1)[0].replace("\n", " ")
    end = _SENTENCE_END.search(first_paragraph)
    return first_paragraph[: end.end()] if end else first_paragraph
