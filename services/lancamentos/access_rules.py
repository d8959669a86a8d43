"""Who may call each lancamentos RPC (see services.platform.access)."""

from __future__ import annotations

from services.platform.access import Rule, merchant_or_every

_SERVICE = "/lancamentos.v1.LancamentosService/"
WRITE = "lancamentos:write"
READ = "lancamentos:read"
ADMIN = "admin"

RULES = {
    _SERVICE + "CreateLancamento": Rule(WRITE),
    _SERVICE + "ReverseLancamento": Rule(WRITE),
    # Checked message by message: every row's merchant must be the caller's.
    _SERVICE + "ImportLancamentos": Rule(
        WRITE, merchants=lambda r: [x.merchant_id for x in r.lancamentos if x.merchant_id]
    ),
    _SERVICE + "GetLancamento": Rule(READ),
    _SERVICE + "ListLancamentos": Rule(READ),
    _SERVICE + "SummarizeLancamentos": Rule(READ),
    # No merchant: every merchant's entries, live; a back-office token ("*") or
    # a workload granted lancamentos:read (consolidado's rebuild and reconcile).
    _SERVICE + "StreamLancamentos": Rule(READ, merchants=merchant_or_every),
    # Its merchant, or "*" (the chain of operations on every merchant).
    _SERVICE + "ListAuditRecords": Rule(ADMIN),
}
