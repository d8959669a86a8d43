"""Mutual TLS between the local mesh's sidecars, and who each inbound sidecar admits.

The stack runs as `make run` does, mTLS on (tests.support.stack). Here a test calls
consolidado's inbound sidecar itself: in plain text, with a certificate of another CA,
and with each workload's own certificate, the way a workload on the mesh would.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from mesh.policy import LocalMtls
from mesh.render.mtls import dns_name, spiffe_id
from tests.support.stack import LocalStack, StackFactory
from tooling.devstack.envoy import stats
from tooling.devstack.mtls import certificate_authority, issue

pytestmark = pytest.mark.slow


def _mtls(stack: LocalStack) -> LocalMtls:
    assert stack.plan.mtls is not None, "the test stack runs mTLS, as make run does"
    return stack.plan.mtls


def _channel(
    stack: LocalStack,
    cert: bytes,
    key: bytes,
    ca: bytes | None = None,
    *,
    service: str = "consolidado",
) -> grpc.aio.Channel:
    mtls = _mtls(stack)
    folder = Path(mtls.certs_dir)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca or (folder / "ca.pem").read_bytes(),
        private_key=key,
        certificate_chain=cert,
    )
    inbound = stack.plan.envoy(f"inbound-{service}-0").listen_port
    return grpc.aio.secure_channel(
        f"{stack.plan.lancamentos.host}:{inbound}",
        credentials,
        # The sidecar's certificate names the service, not the loopback address.
        options=[("grpc.ssl_target_name_override", dns_name(mtls, service))],
    )


def _as(stack: LocalStack, workload: str, service: str = "consolidado") -> grpc.aio.Channel:
    folder = Path(_mtls(stack).certs_dir)
    cert = (folder / f"{workload}.pem").read_bytes()
    return _channel(stack, cert, (folder / f"{workload}.key").read_bytes(), service=service)


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_each_peer_reaches_only_what_it_may(fault_stack: StackFactory) -> None:
    async with fault_stack([]) as stack:
        read = cpb.GetDailyBalanceRequest(merchant_id="ft-mtls", date="2026-03-10")
        ingest = cpb.ApplyLancamentosRequest()
        async with _as(stack, "dispatcher") as channel:
            # The dispatcher delivers: ingest is its to call...
            apply = cpb_grpc.ConsolidadoIngestServiceStub(channel).ApplyLancamentos
            assert await _code(apply(ingest, timeout=5)) == grpc.StatusCode.OK
            # ...but reading balances is not, nor ingest's other method.
            get = cpb_grpc.ConsolidadoServiceStub(channel).GetDailyBalance
            assert await _code(get(read, timeout=5)) == grpc.StatusCode.PERMISSION_DENIED
            reconcile = cpb_grpc.ConsolidadoIngestServiceStub(channel).Reconcile
            refused = await _code(reconcile(cpb.ReconcileRequest(), timeout=5))
            assert refused == grpc.StatusCode.PERMISSION_DENIED
        async with _as(stack, "gateway") as channel:
            # The gateway serves the public reads, and may not reach ingest.
            get = cpb_grpc.ConsolidadoServiceStub(channel).GetDailyBalance
            assert await _code(get(read, timeout=5)) == grpc.StatusCode.OK
            apply = cpb_grpc.ConsolidadoIngestServiceStub(channel).ApplyLancamentos
            assert await _code(apply(ingest, timeout=5)) == grpc.StatusCode.PERMISSION_DENIED
        async with _as(stack, "lancamentos") as channel:
            # Another workload of the mesh, with a good certificate: neither.
            apply = cpb_grpc.ConsolidadoIngestServiceStub(channel).ApplyLancamentos
            assert await _code(apply(ingest, timeout=5)) == grpc.StatusCode.PERMISSION_DENIED
        inbound = stack.plan.envoy("inbound-consolidado-0").admin_port
        denied = stats(inbound, "rbac.denied")
        assert sum(denied.values()) >= 3, denied


async def test_fiscal_may_only_create_and_reverse_in_lancamentos(
    fault_stack: StackFactory,
) -> None:
    """fiscal's identity on lancamentos' inbound sidecar: the two writes it books
    with reach the service (which judges the empty request), nothing else does."""
    async with fault_stack([]) as stack:
        async with _as(stack, "fiscal", "lancamentos") as channel:
            stub = lpb_grpc.LancamentosServiceStub(channel)
            create = await _code(stub.CreateLancamento(lpb.CreateLancamentoRequest(), timeout=5))
            assert create == grpc.StatusCode.INVALID_ARGUMENT
            reverse = await _code(stub.ReverseLancamento(lpb.ReverseLancamentoRequest(), timeout=5))
            assert reverse == grpc.StatusCode.INVALID_ARGUMENT
            listing = lpb.ListLancamentosRequest(merchant_id="ft-mtls")
            assert await _code(stub.ListLancamentos(listing, timeout=5)) == (
                grpc.StatusCode.PERMISSION_DENIED
            )
            feed = stub.StreamLancamentos(lpb.StreamLancamentosRequest(), timeout=5)
            assert await _code(feed.read()) == grpc.StatusCode.PERMISSION_DENIED
        async with _as(stack, "dispatcher", "lancamentos") as channel:
            stub = lpb_grpc.LancamentosServiceStub(channel)
            create = await _code(stub.CreateLancamento(lpb.CreateLancamentoRequest(), timeout=5))
            assert create == grpc.StatusCode.PERMISSION_DENIED


async def test_plain_text_and_foreign_certificates_are_refused(
    fault_stack: StackFactory, tmp_path: Path
) -> None:
    async with fault_stack([]) as stack:
        mtls = _mtls(stack)
        apply_request = cpb.ApplyLancamentosRequest()
        replica = stack.plan.consolidado[0]
        inbound = stack.plan.envoy("inbound-consolidado-0")
        async with grpc.aio.insecure_channel(f"{replica.host}:{inbound.listen_port}") as plain:
            apply = cpb_grpc.ConsolidadoIngestServiceStub(plain).ApplyLancamentos
            assert await _code(apply(apply_request, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        # The dispatcher's name, signed by a CA the mesh does not trust.
        other = LocalMtls.model_validate({"certsDir": str(tmp_path)})
        other_key, other_ca = certificate_authority(tmp_path)
        cert, key = issue(
            other, "dispatcher", other_key, other_ca, spiffe=spiffe_id(mtls, "dispatcher")
        )
        async with _channel(stack, cert, key) as forged:
            apply = cpb_grpc.ConsolidadoIngestServiceStub(forged).ApplyLancamentos
            assert await _code(apply(apply_request, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        failed = stats(inbound.admin_port, "ssl.fail_verify")
        assert sum(failed.values()) >= 1, stats(inbound.admin_port, "ssl.")
        # Every hop of the mesh itself ran over TLS: the dispatcher's sidecar and the
        # gateway shook hands with the replicas' sidecars.
        for front in (stack.plan.dispatcher_egress, stack.plan.gateway):
            handshakes = stats(front.admin_port, "cluster.consolidado.ssl.handshake")
            assert handshakes.get("cluster.consolidado.ssl.handshake", 0) >= 1, handshakes
