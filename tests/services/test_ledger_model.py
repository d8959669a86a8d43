"""The ledger, model-checked: a hypothesis state machine drives the real services
(lancamentos with its dispatcher, consolidado, over PostgreSQL and Redis) through
random interleavings of creates, replays, conflicting replays, reversals, double
reversals, imports, back-dated entries, dispatcher kills mid-delivery and
rebuilds, and after every step holds them to a plain in-memory model:

- every acknowledged entry exists exactly once in lancamentos;
- once delivered, consolidado's totals are the model's, per merchant and day;
- a replay returns the original entry.

CI runs a few short examples; CAIXA_MODEL_EXAMPLES / CAIXA_MODEL_STEPS make the
longer run the bench records (it prints how many steps it ran).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

import grpc
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from caixa.client import CaixaError, LancamentosClient
from services.consolidado.rebuild import rebuild
from tests.support.services import Mesh, migrated_databases, truncate
from tooling.devstack.processes import free_port

T = TypeVar("T")
EXAMPLES = int(os.environ.get("CAIXA_MODEL_EXAMPLES", "4"))
STEPS = int(os.environ.get("CAIXA_MODEL_STEPS", "12"))
START = date(2026, 3, 1)
MERCHANTS = st.sampled_from(["ma", "mb", "mc"])
DAYS = st.integers(0, 20).map(lambda d: (START + timedelta(days=d)).isoformat())
AMOUNTS = st.integers(1, 10**9)
KINDS = st.sampled_from(["credit", "debit"])


class Loop:
    """An event loop in a thread: the services live there, the machine is sync."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@dataclass
class Entry:
    lancamento_id: str
    merchant: str
    kind: str
    amount: int
    day: str
    request_id: str
    reversed: bool = False
    is_reversal: bool = False


@dataclass
class World:
    loop: Loop
    mesh: Mesh
    steps: int = 0
    examples: int = 0
    entries: dict[str, Entry] = field(default_factory=dict)


async def start(mesh: Mesh) -> None:
    await mesh.start_consolidado(0)
    await mesh.add_lancamentos(serve=True, dispatch=True)


class Ledger(RuleBasedStateMachine):
    keys = Bundle("keys")

    def __init__(self, w: World) -> None:
        super().__init__()
        self.w = w
        self.w.examples += 1
        self.model: dict[str, Entry] = {}
        self.client = LancamentosClient(self.w.mesh.lancamentos_address, timeout=10)

    def teardown(self) -> None:
        self.client.close()

    @initialize()
    def empty(self) -> None:
        mesh = self.w.mesh
        self.w.loop.run(mesh.wait_delivered())
        self.w.loop.run(truncate(mesh))

    def _book(self, merchant: str, kind: str, amount: int, day: str, key: str) -> Entry:
        made = self.client.create_lancamento(merchant, kind, amount, value_date=day, request_id=key)
        entry = Entry(made.lancamento_id, merchant, kind, amount, day, key)
        self.model[key] = entry
        return entry

    @rule(target=keys, merchant=MERCHANTS, kind=KINDS, amount=AMOUNTS, day=DAYS)
    def create(self, merchant: str, kind: str, amount: int, day: str) -> str:
        return self._book(merchant, kind, amount, day, str(uuid.uuid4())).request_id

    @rule(key=keys)
    def replay(self, key: str) -> None:
        entry = self.model[key]
        if entry.is_reversal:
            return
        again = self.client.create_lancamento(
            entry.merchant, entry.kind, entry.amount, value_date=entry.day, request_id=key
        )
        assert again.lancamento_id == entry.lancamento_id

    @rule(key=keys, amount=AMOUNTS)
    def conflicting_replay(self, key: str, amount: int) -> None:
        entry = self.model[key]
        if entry.is_reversal or amount == entry.amount:
            return
        try:
            self.client.create_lancamento(
                entry.merchant, entry.kind, amount, value_date=entry.day, request_id=key
            )
        except CaixaError as error:
            assert error.code is grpc.StatusCode.ALREADY_EXISTS
        else:
            raise AssertionError("a reused key with another amount was accepted")

    @rule(target=keys, key=consumes(keys), day=DAYS)
    def reverse(self, key: str, day: str) -> str:
        entry = self.model[key]
        new_key = f"estorno-{uuid.uuid4()}"
        try:
            made = self.client.reverse_lancamento(
                entry.merchant, entry.lancamento_id, request_id=new_key, value_date=day
            )
        except CaixaError as error:
            assert error.code is grpc.StatusCode.FAILED_PRECONDITION
            assert entry.reversed or entry.is_reversal
            return key
        assert not entry.reversed and not entry.is_reversal
        entry.reversed = True
        opposite = "debit" if entry.kind == "credit" else "credit"
        self.model[new_key] = Entry(
            made.lancamento_id,
            entry.merchant,
            opposite,
            entry.amount,
            day,
            new_key,
            is_reversal=True,
        )
        return new_key

    @rule(
        merchant=MERCHANTS,
        rows=st.lists(st.tuples(KINDS, AMOUNTS, DAYS), max_size=6),
        replays=st.integers(0, 2),
    )
    def bulk_import(self, merchant: str, rows: list[tuple[str, int, str]], replays: int) -> None:
        fresh = [(merchant, k, a, d, str(uuid.uuid4())) for k, a, d in rows]
        earlier = [e for e in self.model.values() if not e.is_reversal][:replays]
        sent = fresh + [(e.merchant, e.kind, e.amount, e.day, e.request_id) for e in earlier]
        if not sent:
            return
        result = self.client.import_lancamentos(
            [
                {"merchant_id": m, "kind": k, "amount_cents": a, "value_date": d, "request_id": r}
                for m, k, a, d, r in sent
            ]
        )
        assert (result.created_count, result.duplicate_count) == (len(fresh), len(earlier))
        for m, k, a, d, r in fresh:
            self.model[r] = Entry("", m, k, a, d, r)

    @rule(merchant=MERCHANTS, amounts=st.lists(AMOUNTS, min_size=1, max_size=3), day=DAYS)
    def kill_the_dispatcher_mid_delivery(self, merchant: str, amounts: list[int], day: str) -> None:
        """Entries in flight when the dispatcher dies: its claim rolls back and the
        next dispatcher sends them. (gRPC cancels consolidado's held call too; the
        `redeliver` rule covers a batch applied before its sender died.)"""
        mesh = self.w.mesh
        mesh.gate.close()  # consolidado holds what it is sent
        for amount in amounts:
            self._book(merchant, "credit", amount, day, str(uuid.uuid4()))

        async def kill() -> None:
            await asyncio.sleep(0.3)  # the dispatcher has claimed and sent them
            dispatching = mesh.lancamentos[0]
            mesh.lancamentos.remove(dispatching)
            await dispatching.stop()  # its claim rolls back with its connection
            mesh.gate.open()
            await mesh.add_lancamentos(serve=True, dispatch=True, grpc_port=mesh.lancamentos_port)

        self.w.loop.run(kill())
        self.client.close()
        self.client = LancamentosClient(self.w.mesh.lancamentos_address, timeout=10)

    @rule(count=st.integers(1, 5))
    def redeliver(self, count: int) -> None:
        """What a dispatcher dying after consolidado committed, before its delete,
        leaves behind: delivered entries still queued, so they are sent again."""
        mesh = self.w.mesh

        async def requeue() -> None:
            async with mesh.lancamentos[0].engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO outbox (lancamento_id) SELECT lancamento_id "
                        "FROM lancamentos ORDER BY random() LIMIT :n"
                    ),
                    {"n": count},
                )
                await conn.execute(text("SELECT pg_notify('caixa_lancamentos', '')"))

        self.w.loop.run(requeue())

    @rule()
    def rebuild_everything(self) -> None:
        consolidado = self.w.mesh.consolidados[0]
        assert consolidado is not None
        self.w.loop.run(rebuild(consolidado.engine, consolidado.lancamentos, batch_size=5))

    @invariant()
    def agrees_with_the_model(self) -> None:
        self.w.steps += 1
        mesh = self.w.mesh
        expected: dict[tuple[str, str], tuple[int, int, int]] = {}
        for e in self.model.values():
            credits, debits, count = expected.get((e.merchant, e.day), (0, 0, 0))
            if e.kind == "credit":
                credits += e.amount
            else:
                debits += e.amount
            expected[(e.merchant, e.day)] = (credits, debits, count + 1)
        sql = """
            SELECT merchant_id, value_date::text,
                   coalesce(sum(amount_cents) FILTER (WHERE kind = 1), 0),
                   coalesce(sum(amount_cents) FILTER (WHERE kind = 2), 0), count(*)
            FROM lancamentos GROUP BY 1, 2"""
        ledger = self.w.loop.run(rows(mesh.lancamentos[0].engine, sql))
        assert ledger == expected
        self.w.loop.run(mesh.wait_delivered())
        consolidado = mesh.consolidados[0]
        assert consolidado is not None
        totals = self.w.loop.run(
            rows(
                consolidado.engine,
                "SELECT merchant_id, value_date::text, credits_cents, debits_cents, "
                "lancamentos_count FROM daily_totals",
            )
        )
        assert totals == expected


async def rows(engine: Any, sql: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    async with engine.connect() as conn:
        found = (await conn.execute(text(sql))).all()
    return {(r[0], r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in found}


@pytest.fixture
def ledger_world(make_database: Callable[[str], str], redis_url: str) -> Iterator[World]:
    loop = Loop()
    dbs = loop.run(migrated_databases(make_database, "model"))
    mesh = Mesh(
        lancamentos_db=dbs[0],
        consolidado_db=dbs[1],
        redis_url=redis_url,
        key_prefix=f"model-{uuid.uuid4().hex[:8]}:bal",
        consolidado_ports=[free_port()],
        lancamentos_port=free_port(),
        consolidados=[None],
    )
    loop.run(start(mesh))
    try:
        yield World(loop, mesh)
    finally:
        mesh.gate.open()
        loop.run(mesh.close())
        loop.close()


def test_the_ledger_agrees_with_its_model(ledger_world: World) -> None:
    class Bound(Ledger):
        def __init__(self) -> None:
            super().__init__(ledger_world)

    run_state_machine_as_test(
        Bound,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(f"\nmodel check: {ledger_world.examples} examples, {ledger_world.steps} checked steps")
    assert ledger_world.steps > 0
