"""The chart's side of "every service checks every call itself": each workload
gets the users' issuer of istio.jwt and the workloads' Kubernetes issuer, the
callers a projected service-account token for the workloads' audience, a
consolidado configured from exactly that environment admits the dispatcher's
token on ingest and nobody else's, and a lancamentos configured from its own
admits fiscal's token to book and to reverse, and to nothing that reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from helm_python import HelmRenderError
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from mesh.chart import Rendered
from services.consolidado.app import ConsolidadoApp
from services.consolidado.settings import ConsolidadoSettings
from services.platform.access import Workloads
from tests.support.auth import Issuer, bearer
from tests.support.chart import render_chart, render_with
from tests.support.services import Mesh
from tooling.devstack.processes import free_port

VALUES_JWT = {
    "issuer": "https://auth.example.com/",
    "jwksUri": "https://auth.example.com/.well-known/jwks.json",
}
K8S_ISSUER = "https://kubernetes.default.svc.cluster.local"
DISPATCHER = "system:serviceaccount:caixa:caixa-dispatcher"
CONSOLIDADO = "system:serviceaccount:caixa:caixa-consolidado"
FISCAL = "system:serviceaccount:caixa:caixa-fiscal"
Metadata = tuple[tuple[str, str], ...]


def _pods(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"].removeprefix("caixa-"): d["spec"]["template"]["spec"]
        for d in rendered.of_kind("Deployment")
    }


def _env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}


@pytest.fixture(scope="module")
def pods() -> dict[str, dict[str, Any]]:
    return _pods(render_chart())


def test_every_service_checks_the_gateway_issuers_tokens(pods: dict[str, dict[str, Any]]) -> None:
    assert set(pods) == {"lancamentos", "dispatcher", "consolidado", "fiscal"}
    for name, pod in pods.items():
        env = _env(pod)
        assert env["AUTH_ISSUER"] == VALUES_JWT["issuer"], name
        assert env["AUTH_JWKS_URL"] == VALUES_JWT["jwksUri"], name
        assert env["AUTH_AUDIENCE"] == "caixa", name
        assert env["AUTH_WORKLOAD_ISSUER"] == K8S_ISSUER, name
        grants = Workloads.parse(env["AUTH_WORKLOADS"], env["AUTH_WORKLOAD_ISSUER"]).grants
        assert grants == {
            DISPATCHER: frozenset({"consolidado:ingest"}),
            CONSOLIDADO: frozenset({"lancamentos:read"}),
            # fiscal books invoices in lancamentos: it writes, and reads nothing there.
            FISCAL: frozenset({"lancamentos:write"}),
        }
        # The cluster's keys, from the ConfigMap, where the setting says.
        jwks = Path(env["AUTH_WORKLOAD_JWKS_FILE"])
        [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "workload-jwks"]
        assert mount["mountPath"] == str(jwks.parent)
        [volume] = [v for v in pod["volumes"] if v["name"] == "workload-jwks"]
        assert volume["configMap"]["name"] == "caixa-workload-jwks" and jwks.name == "jwks.json"
        # The API server's token is never mounted.
        assert pod["automountServiceAccountToken"] is False


def test_callers_carry_a_projected_token_for_the_workloads_audience(
    pods: dict[str, dict[str, Any]],
) -> None:
    for name in ("dispatcher", "consolidado", "fiscal"):
        pod, env = pods[name], _env(pods[name])
        token = Path(env["WORKLOAD_TOKEN_FILE"])
        [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "workload-token"]
        assert mount["mountPath"] == str(token.parent)
        [volume] = [v for v in pod["volumes"] if v["name"] == "workload-token"]
        [source] = volume["projected"]["sources"]
        projected = source["serviceAccountToken"]
        assert projected["path"] == token.name
        assert projected["audience"] == env["AUTH_WORKLOAD_AUDIENCE"] == "caixa-workloads"
        assert 600 <= projected["expirationSeconds"] <= 86400
    # lancamentos calls nobody: no identity to carry.
    assert "WORKLOAD_TOKEN_FILE" not in _env(pods["lancamentos"])
    assert "workload-token" not in {v["name"] for v in pods["lancamentos"]["volumes"]}


def test_the_cluster_keys_are_the_ones_istio_checks_and_roll_the_pods(tmp_path: Path) -> None:
    """One JWKS for the sidecars and the services: a new one rolls every pod
    (the services read it at start); one without keys is refused."""
    rendered = render_chart()
    [config] = [
        c for c in rendered.of_kind("ConfigMap") if c["metadata"]["name"] == "caixa-workload-jwks"
    ]
    authn = rendered.get("RequestAuthentication", "caixa-workload-jwt")
    [own] = [r for r in authn["spec"]["jwtRules"] if r["issuer"] == K8S_ISSUER]
    assert json.loads(config["data"]["jwks.json"]) == json.loads(own["jwks"])
    assert json.loads(own["jwks"])["keys"]
    rotated = Issuer.create(tmp_path / "rotated").jwks_file.read_text()
    before = {n: p["metadata"]["annotations"] for n, p in _templates(rendered).items()}
    after = {
        n: p["metadata"]["annotations"]
        for n, p in _templates(
            render_with("default", {"auth": {"workloads": {"jwks": rotated}}}, tmp_path)
        ).items()
    }
    for name in before:
        assert before[name]["checksum/workload-jwks"] != after[name]["checksum/workload-jwks"]
    with pytest.raises(HelmRenderError, match="not a JWKS with keys"):
        render_with("default", {"auth": {"workloads": {"jwks": '{"keys": []}'}}}, tmp_path)


def _templates(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"]["template"] for d in rendered.of_kind("Deployment")}


def test_the_issuer_must_be_reachable(tmp_path: Path) -> None:
    overlay = {"auth": {"identityProvider": {"port": 443, "peers": []}}}
    with pytest.raises(HelmRenderError, match=r"auth\.identityProvider\.peers is empty"):
        render_with("default", overlay, tmp_path)


async def test_consolidado_from_the_charts_env_admits_only_the_dispatcher_on_ingest(
    mesh: Mesh, pods: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The chart's AUTH_* as they are, but for where the keys come from (a file
    here, as the ConfigMap is there): a token as Kubernetes projects it for the
    dispatcher is admitted on ingest; the consolidado's own, or a user's token
    claiming the dispatcher's name, are not."""
    users, cluster = Issuer.create(tmp_path / "users"), Issuer.create(tmp_path / "cluster")
    chart_auth = _chart_auth(_env(pods["consolidado"]), users, cluster)
    base = mesh.consolidado_settings(free_port()).model_dump()
    settings = ConsolidadoSettings.model_validate({**base, **chart_auth})
    app = ConsolidadoApp(settings)
    await app.start()
    try:
        assert app.server is not None
        async with grpc.aio.insecure_channel(app.server.address) as channel:
            ingest = cpb_grpc.ConsolidadoIngestServiceStub(channel)

            async def apply(token: str) -> grpc.StatusCode:
                try:
                    await ingest.ApplyLancamentos(
                        cpb.ApplyLancamentosRequest(), metadata=bearer(token), timeout=5
                    )
                except grpc.aio.AioRpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            def projected(subject: str, issuer: str = K8S_ISSUER) -> str:
                return cluster.token(
                    [], [], subject=subject, issuer=issuer, audience="caixa-workloads"
                )

            assert await apply(projected(DISPATCHER)) == grpc.StatusCode.OK
            assert await apply(projected(CONSOLIDADO)) == grpc.StatusCode.PERMISSION_DENIED
            named = users.token(
                ["*"],
                ["consolidado:ingest"],
                subject=DISPATCHER,
                issuer=VALUES_JWT["issuer"],
                audience="caixa",
            )
            assert await apply(named) == grpc.StatusCode.PERMISSION_DENIED
            assert (
                await apply(projected(DISPATCHER, "https://other"))
                == grpc.StatusCode.UNAUTHENTICATED
            )
    finally:
        await app.stop()


def _chart_auth(env: dict[str, str], users: Issuer, cluster: Issuer) -> dict[str, str]:
    """A service's AUTH_* settings as the chart sets them, but for where the keys
    come from (files here, as the ConfigMap is there)."""
    chart_auth = {k.lower(): v for k, v in env.items() if k.startswith("AUTH_")}
    chart_auth.pop("auth_jwks_url")
    return chart_auth | {
        "auth_jwks_file": str(users.jwks_file),
        "auth_workload_jwks_file": str(cluster.jwks_file),
    }


async def _code(call: Callable[[], Awaitable[object]]) -> grpc.StatusCode:
    try:
        await call()
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_lancamentos_from_the_charts_env_lets_fiscal_book_and_reverse_only(
    mesh: Mesh, pods: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """fiscal's token, as Kubernetes projects it, creates an entry for any merchant and
    reverses it; it reads nothing. The dispatcher's token books nothing, and a user's
    token named after fiscal gets none of fiscal's grant."""
    users, cluster = Issuer.create(tmp_path / "users"), Issuer.create(tmp_path / "cluster")
    chart_auth = _chart_auth(_env(pods["lancamentos"]), users, cluster)
    app = await mesh.add_lancamentos(serve=True, dispatch=False, **chart_auth)
    assert app.server is not None

    def projected(subject: str) -> Metadata:
        token = cluster.token(
            [], [], subject=subject, issuer=K8S_ISSUER, audience="caixa-workloads"
        )
        return bearer(token)

    def create(metadata: Metadata) -> Awaitable[lpb.Lancamento]:
        return stub.CreateLancamento(
            lpb.CreateLancamentoRequest(
                merchant_id="loja-fiscal",
                kind=lpb.KIND_CREDIT,
                amount_cents=1990,
                currency="BRL",
                description="NF-e 1",
                request_id=str(uuid.uuid4()),
            ),
            metadata=metadata,
            timeout=5,
        )

    async with grpc.aio.insecure_channel(app.server.address) as channel:
        stub = lpb_grpc.LancamentosServiceStub(channel)
        fiscal = projected(FISCAL)
        entry = await create(fiscal)
        reversal = await stub.ReverseLancamento(
            lpb.ReverseLancamentoRequest(
                merchant_id=entry.merchant_id,
                lancamento_id=entry.lancamento_id,
                request_id=str(uuid.uuid4()),
            ),
            metadata=fiscal,
            timeout=5,
        )
        assert reversal.reverses_lancamento_id == entry.lancamento_id
        get = lpb.GetLancamentoRequest(
            merchant_id=entry.merchant_id, lancamento_id=entry.lancamento_id
        )
        assert await _code(lambda: stub.GetLancamento(get, metadata=fiscal, timeout=5)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        assert await _code(lambda: create(projected(DISPATCHER))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        named = users.token([], [], subject=FISCAL, issuer=VALUES_JWT["issuer"], audience="caixa")
        assert await _code(lambda: create(bearer(named))) == grpc.StatusCode.PERMISSION_DENIED
