"""`caixa audit list|verify`: a merchant's audit trail in one service, and the
check that its hash chain holds (see caixa.client.audit_chain)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

from audit.v1 import audit_pb2
from google.protobuf import json_format

from caixa.cli.connections import Connections
from caixa.cli.table import render_table
from caixa.client import ConsolidadoClient, FiscalClient, LancamentosClient, audit_chain

PAGE_SIZE = 1000


class ChainBroken(Exception):
    """`verify` found the chain altered; the message says where."""


def audit(args: argparse.Namespace, connections: Connections) -> str:
    client: LancamentosClient | ConsolidadoClient | FiscalClient
    if args.service == "fiscal":
        client = connections.fiscal
    elif args.service == "consolidado":
        client = connections.consolidado
    else:
        client = connections.lancamentos
    if args.action == "verify":
        return _verify(args, _pages(client, args.merchant, 0, PAGE_SIZE))
    page = client.list_audit_records(args.merchant, after_position=args.after, page_size=args.limit)
    if args.json:
        return json_format.MessageToJson(page, indent=2)
    return _table(page)


def _pages(
    client: LancamentosClient | ConsolidadoClient | FiscalClient,
    merchant: str,
    after: int,
    size: int,
) -> Iterator[audit_pb2.ListAuditRecordsResponse]:
    while True:
        page = client.list_audit_records(merchant, after_position=after, page_size=size)
        yield page
        if not page.audit_records:
            return
        after = page.audit_records[-1].position


def _verify(args: argparse.Namespace, pages: Iterator[audit_pb2.ListAuditRecordsResponse]) -> str:
    verdict = audit_chain.verify(args.merchant, pages)
    if args.json:
        text = json.dumps(
            {
                "merchant_id": verdict.merchant_id,
                "intact": verdict.intact,
                "records": verdict.records,
                "head_position": verdict.head_position,
                "head_hash": verdict.head_hash,
                "breaks": [{"position": b.position, "reason": b.reason} for b in verdict.breaks],
            },
            indent=2,
        )
    elif verdict.intact:
        text = (
            f"intact: {verdict.records} records of {args.service} for {args.merchant!r}; "
            f"head {verdict.head_position} {verdict.head_hash or '(empty chain)'}\n"
            "keep the head elsewhere: a chain rewritten from the start verifies too"
        )
    else:
        lines = [f"broken: the audit chain of {args.service} for {args.merchant!r}"]
        lines += [f"  position {b.position}: {b.reason}" for b in verdict.breaks]
        text = "\n".join(lines)
    if not verdict.intact:
        raise ChainBroken(text)
    return text


def _table(page: audit_pb2.ListAuditRecordsResponse) -> str:
    if not page.audit_records:
        return f"no audit records (head {page.head_position})"
    rows = [
        (
            str(r.position),
            r.recorded_at.ToJsonString(),
            r.subject,
            r.rpc.rsplit("/", 1)[-1],
            r.request_id,
            r.outcome,
            " ".join(r.entry_ids),
        )
        for r in page.audit_records
    ]
    headers = ("position", "recorded at", "subject", "rpc", "request id", "outcome", "entries")
    return render_table(headers, rows, right_aligned={0})
