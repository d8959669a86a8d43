"""Who may call each consolidado RPC (see services.platform.access)."""

from __future__ import annotations

from services.platform.access import Rule, merchant_or_every

_BALANCES = "/consolidado.v1.ConsolidadoService/"
_INGEST = "/consolidado.v1.ConsolidadoIngestService/"
READ = "consolidado:read"
INGEST = "consolidado:ingest"
ADMIN = "admin"

RULES = {
    _BALANCES + "GetDailyBalance": Rule(READ),
    _BALANCES + "ListDailyBalances": Rule(READ),
    # Its merchant, or "*" (the chain of full rebuilds).
    _BALANCES + "ListAuditRecords": Rule(ADMIN),
    # The dispatcher's identity only, never an end user's token.
    _INGEST + "ApplyLancamentos": Rule(INGEST, merchants=lambda _r: [], workload_only=True),
    _INGEST + "Reconcile": Rule(ADMIN, merchants=merchant_or_every),
}
