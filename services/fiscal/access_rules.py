"""Who may call each fiscal RPC (see services.platform.access)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.platform.access import Rule

_SERVICE = "/fiscal.v1.FiscalService/"
WRITE = "fiscal:write"
READ = "fiscal:read"
ADMIN = "admin"


def no_merchant(request: Any) -> Iterable[str]:
    """Validation and summaries read the document only: no merchant's data."""
    return []


RULES = {
    _SERVICE + "ValidateDocument": Rule(WRITE, merchants=no_merchant),
    _SERVICE + "ValidateDocuments": Rule(WRITE, merchants=no_merchant),
    _SERVICE + "SummarizeDocument": Rule(WRITE, merchants=no_merchant),
    _SERVICE + "SummarizeDocuments": Rule(WRITE, merchants=no_merchant),
    # Books only for a merchant the token names.
    _SERVICE + "ProcessDocument": Rule(WRITE),
    _SERVICE + "GetDocument": Rule(READ),
    # The back office says which CNPJ a merchant is.
    _SERVICE + "RegisterMerchant": Rule(ADMIN),
    # Its merchant, or "*" (the chain of operations on every merchant).
    _SERVICE + "ListAuditRecords": Rule(ADMIN),
}
