"""`python -m bench.grpc_load`: a closed-loop CreateLancamento load with a
distinct request_id per request, or (`--call balance`) GetDailyBalance reads
of a distinct merchant and day per request, which h2load cannot send (it
repeats one body, so every create after the first would be a replay and
every read after the first a cache hit).

Bounded by both `--seconds` and `--max-requests`, loopback targets only.
After connecting and an optional warm-up it prints `ready` and waits for a
line on stdin, so that several drivers start their measured load together.
Latencies (ms, one per line) go to `--latencies`; the last stdout line is a
JSON summary. Successes are for the caller to count from the server's
metrics, by grpc-status; the client-side codes are reported alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import resource
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
from consolidado.v1 import consolidado_pb2 as cpb
from lancamentos.v1 import lancamentos_pb2 as lpb

CREATE = "/lancamentos.v1.LancamentosService/CreateLancamento"
BALANCE = "/consolidado.v1.ConsolidadoService/GetDailyBalance"
# Steps through every (merchant, day) once before any repeats: a prime that
# divides no bench's merchants x days.
KEY_STEP = 7919
FIRST_DAY = date(2025, 1, 1)
CALL_TIMEOUT = 10.0


def loopback(target: str) -> str:
    host = target.rsplit(":", 1)[0].strip("[]")
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        raise SystemExit(f"grpc_load: {target} is not a loopback address")
    return target


def body(prefix: str, i: int, merchants: int, days: int) -> bytes:
    return lpb.CreateLancamentoRequest(
        merchant_id=f"m{(i * 7919) % merchants}",
        kind=lpb.KIND_DEBIT if i % 4 == 0 else lpb.KIND_CREDIT,
        amount_cents=100 + (i * 31) % 100_000,
        value_date=(FIRST_DAY + timedelta(days=(i * 17) % days)).isoformat(),
        request_id=f"{prefix}.{i}",
    ).SerializeToString()


def balance_body(i: int, merchants: int, days: int) -> bytes:
    key = (i * KEY_STEP) % (merchants * days)
    return cpb.GetDailyBalanceRequest(
        merchant_id=f"m{key // days}",
        date=(FIRST_DAY + timedelta(days=key % days)).isoformat(),
    ).SerializeToString()


async def load(
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    args: argparse.Namespace,
    *,
    prefix: str,
    seconds: float,
) -> tuple[list[float], Counter[str], float]:
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    numbers = iter(range(args.max_requests))
    started = time.perf_counter()
    deadline = started + seconds

    async def stream() -> None:
        for i in numbers:
            if time.perf_counter() >= deadline:
                return
            request = (
                balance_body(i, args.merchants, args.days)
                if args.call == "balance"
                else body(prefix, i, args.merchants, args.days)
            )
            sent = time.perf_counter()
            try:
                await call(request, timeout=CALL_TIMEOUT)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as error:
                codes[error.code().name] += 1
            latencies.append((time.perf_counter() - sent) * 1000)

    await asyncio.gather(*(stream() for _ in range(args.in_flight)))
    return latencies, codes, time.perf_counter() - started


async def main(args: argparse.Namespace) -> tuple[list[float], dict[str, Any]]:
    async with grpc.aio.insecure_channel(loopback(args.target)) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=10)
        method = BALANCE if args.call == "balance" else CREATE
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        if args.warmup > 0:
            await load(call, args, prefix=f"warm.{args.prefix}", seconds=args.warmup)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = _cpu_seconds()
        latencies, codes, seconds = await load(call, args, prefix=args.prefix, seconds=args.seconds)
        cpu = _cpu_seconds() - cpu
    summary = {"requests": len(latencies), "seconds": seconds, "cpu_seconds": cpu}
    return latencies, {**summary, "client_codes": codes}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="host:port of lancamentos (loopback)")
    parser.add_argument("--call", choices=["create", "balance"], default="create")
    parser.add_argument("--prefix", required=True, help="create: request_ids are <prefix>.<n>")
    parser.add_argument("--latencies", required=True, type=Path)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--max-requests", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    latencies, summary = asyncio.run(main(arguments))
    arguments.latencies.write_text("".join(f"{ms:.3f}\n" for ms in latencies))
    print(json.dumps(summary))
