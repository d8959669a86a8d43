"""`caixa-lancamentos parked`: the entries consolidado refused for good, and
putting them back in the delivery queue once their cause is fixed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from services.lancamentos import outbox_queue
from services.lancamentos.settings import LancamentosSettings
from services.platform import database
from services.platform.audit import operator


async def parked_command(
    settings: LancamentosSettings, retry: Sequence[int] | None, *, as_json: bool
) -> int:
    """Lists the parked entries, or with `retry` (empty: all of them) queues
    them again; redelivery is safe, consolidado applies an entry once."""
    engine = database.create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            if retry is not None:
                count = await outbox_queue.retry_parked(
                    conn, list(retry) or None, operator("caixa-lancamentos parked --retry")
                )
                print(f"{count} parked entries queued for delivery again")
                return 0
            entries = await outbox_queue.parked(conn)
    finally:
        await engine.dispose()
    if as_json:
        print(json.dumps([_as_dict(e) for e in entries], indent=2))
    elif not entries:
        print("no parked entries")
    for entry in [] if as_json else entries:
        print(
            f"{entry.outbox_id}  {entry.lancamento_id}  {entry.merchant_id}  "
            f"{entry.value_date}  {entry.amount_cents}  parked {entry.parked_at:%Y-%m-%d %H:%M}"
            f"  {entry.reason}"
        )
    return 0


def _as_dict(entry: outbox_queue.Parked) -> dict[str, object]:
    return {
        "outbox_id": entry.outbox_id,
        "lancamento_id": str(entry.lancamento_id),
        "merchant_id": entry.merchant_id,
        "value_date": entry.value_date.isoformat(),
        "amount_cents": entry.amount_cents,
        "parked_at": entry.parked_at.isoformat(),
        "reason": entry.reason,
    }


def run(settings: LancamentosSettings, retry: Sequence[int] | None, *, as_json: bool) -> int:
    return asyncio.run(parked_command(settings, retry, as_json=as_json))
