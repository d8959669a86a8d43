"""Durations as SREs write them in Helm/Istio values ("250ms", "5s", "1m30s").

Numbers without a unit are rejected on purpose: `timeout: 5` reads as seconds to one
person and milliseconds to another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_MS_PER_UNIT = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


@dataclass(frozen=True, order=True)
class Duration:
    """A non-negative duration with millisecond resolution (Envoy's and Istio's floor)."""

    millis: int
    # As the values file wrote it. The Helm chart passes duration strings through to
    # Istio untouched, so `str` must too, or `caixa-mesh render istio` and the chart
    # would disagree on "1500ms" vs "1.5s". Ignored by comparisons.
    text: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Duration:
        text = text.strip()
        parts = list(_PART.finditer(text))
        if not text or "".join(p.group(0) for p in parts) != text:
            raise ValueError(
                f"{text!r} is not a duration; write a number and a unit: 250ms, 5s, 1m30s"
            )
        total = sum(float(p.group(1)) * _MS_PER_UNIT[p.group(2)] for p in parts)
        if total != int(total):
            raise ValueError(f"{text!r} has a fraction of a millisecond; Envoy can't hold that")
        return cls(int(total), text)

    @property
    def seconds(self) -> float:
        return self.millis / 1000

    def envoy(self) -> str:
        """Envoy's JSON form of google.protobuf.Duration: "0.250s", "5s"."""
        if self.millis % 1000 == 0:
            return f"{self.millis // 1000}s"
        return f"{self.millis / 1000:.3f}s"

    def __str__(self) -> str:
        """The values-file form, also what Istio accepts: as written ("1m30s"), or for a
        computed duration "250ms", "5s", "90s"."""
        if self.text is not None:
            return self.text
        if self.millis % 1000 == 0:
            return f"{self.millis // 1000}s"
        return f"{self.millis}ms"

    def __add__(self, other: Duration) -> Duration:
        return Duration(self.millis + other.millis)

    def __mul__(self, factor: int) -> Duration:
        return Duration(self.millis * factor)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate,
            json_schema_input_schema=core_schema.str_schema(pattern=r"^(\d+(\.\d+)?(ms|s|m|h))+$"),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def _validate(value: object) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration_type",
            "a duration is a string with a unit, like '250ms' or '5s' (got {value!r})",
            {"value": value},
        )
    try:
        return Duration.parse(value)
    except ValueError as error:
        raise PydanticCustomError("duration_format", "{reason}", {"reason": str(error)}) from None


ZERO = Duration(0)
