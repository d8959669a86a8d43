"""The gateway's transcoder in the cluster is the local one: same options, and a
descriptor set (committed in the chart, embedded in the EnvoyFilter) that is the one the
protos build (`make proto` → build/caixa.pb; `make chart-descriptor` copies it). So is
the REST field check before it: the same Lua, rendered from that descriptor set."""

from __future__ import annotations

import base64
import copy
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from mesh.chart import Rendered
from mesh.policy import LocalJwt
from mesh.render.bundle import local_envoys
from mesh.render.gateway import TRANSCODER
from mesh.render.rate_limit import MERCHANT_RATE_LIMIT
from mesh.render.rest_fields import LUA, rest_fields_source
from services.fiscal.settings import FiscalSettings
from tests.support.chart import TOPOLOGIES
from tests.support.istio_pilot import apply_gateway_envoy_filters
from tests.support.mesh import on_local_ports
from tests.support.paths import CHART_DIR, DESCRIPTOR

BUILT = DESCRIPTOR
COMMITTED = CHART_DIR / "files" / "caixa.pb"
COMMITTED_REST_CHECK = CHART_DIR / "files" / "rest_fields.lua"


def _files(data: bytes) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """By file name: robust to the order and the byte encoding of the set."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(data)
    return {f.name: f for f in descriptor_set.file}


def _transcoder(rendered: Rendered) -> dict[str, Any]:
    envoy_filter = rendered.get("EnvoyFilter", "caixa-caixa-grpc-json-transcoder")
    [patch] = envoy_filter["spec"]["configPatches"]
    assert patch["match"]["context"] == "GATEWAY"
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    subfilter = patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]
    assert subfilter == {"name": "envoy.filters.http.router"}
    value: dict[str, Any] = patch["patch"]["value"]
    assert value["name"] == TRANSCODER
    return value


def test_committed_descriptor_is_fresh() -> None:
    assert BUILT.exists(), "run `make proto`"
    committed, built = _files(COMMITTED.read_bytes()), _files(BUILT.read_bytes())
    assert sorted(committed) == sorted(built), "run `make chart-descriptor`"
    for name, proto in built.items():
        assert committed[name] == proto, f"{name} changed: run `make chart-descriptor`"


def test_envoy_filter_embeds_the_descriptor(rendered: Rendered) -> None:
    embedded = base64.b64decode(_transcoder(rendered)["typed_config"]["proto_descriptor_bin"])
    assert embedded == COMMITTED.read_bytes()
    assert _files(embedded) == _files(BUILT.read_bytes())


def test_options_equal_the_local_gateway(topology: str, rendered: Rendered) -> None:
    policy = on_local_ports([CHART_DIR / "values.yaml", *TOPOLOGIES[topology]])
    gateway = local_envoys(policy, BUILT)[0].config
    hcm = gateway["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    [local] = [f for f in hcm["typed_config"]["http_filters"] if f["name"] == TRANSCODER]
    local_config = dict(local["typed_config"])
    del local_config["proto_descriptor"]
    chart_config = dict(_transcoder(rendered)["typed_config"])
    del chart_config["proto_descriptor_bin"]
    assert chart_config == local_config


def test_gateway_filters_run_in_the_local_gateways_order(topology: str, rendered: Rendered) -> None:
    """The rate limit must see the gRPC route, so it runs after the transcoder, whatever
    order the EnvoyFilters were created in; the per-merchant limit runs first, after
    jwt_authn (which Istio's gateway has of its own, from RequestAuthentication)."""
    policy = on_local_ports([CHART_DIR / "values.yaml", *TOPOLOGIES[topology]])
    jwt = LocalJwt.model_validate({"issuer": "i", "audiences": ["a"], "jwksFile": "/j"})
    topology_with_jwt = policy.topology.model_copy(update={"jwt": jwt})
    policy = policy.model_copy(update={"local_topology": topology_with_jwt})
    gateway = local_envoys(policy, BUILT)[0].config
    hcm = gateway["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    local = [f["name"] for f in hcm["typed_config"]["http_filters"]]
    # Istio's gateway has its own stats filters; compare the ones the chart inserts.
    ours = {
        f["patch"]["value"]["name"]
        for o in rendered.of_kind("EnvoyFilter")
        for f in o["spec"]["configPatches"]
        if f["applyTo"] == "HTTP_FILTER"
    }
    filters: list[dict[str, Any]] = [{"name": "envoy.filters.http.router"}]
    # The chart's rate-limited routes must exist under the same names locally; Istio names
    # the gateway's virtual host "<host>:443".
    [virtual_host] = copy.deepcopy(hcm["typed_config"]["route_config"]["virtual_hosts"])
    virtual_host["name"] = "caixa.example.com:443"
    apply_gateway_envoy_filters(rendered.of_kind("EnvoyFilter"), filters, [virtual_host])
    chain = [f["name"] for f in filters]
    assert chain == [name for name in local if name in ours or name == chain[-1]]
    assert chain[0] == MERCHANT_RATE_LIMIT
    assert len(ours) == 4


def _local_gateway_filters(topology: str) -> list[dict[str, Any]]:
    policy = on_local_ports([CHART_DIR / "values.yaml", *TOPOLOGIES[topology]])
    gateway = local_envoys(policy, BUILT)[0].config
    hcm = gateway["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    filters: list[dict[str, Any]] = hcm["typed_config"]["http_filters"]
    return filters


def test_committed_rest_check_is_fresh() -> None:
    policy = on_local_ports([CHART_DIR / "values.yaml"])
    expected = rest_fields_source(BUILT, policy.gateway.public_services)
    assert COMMITTED_REST_CHECK.read_text() == expected, "run `make chart-descriptor`"


def test_rest_check_equals_the_local_gateways(topology: str, rendered: Rendered) -> None:
    envoy_filter = rendered.get("EnvoyFilter", "caixa-caixa-rest-fields")
    [patch] = envoy_filter["spec"]["configPatches"]
    assert patch["match"]["context"] == "GATEWAY"
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    subfilter = patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]
    assert subfilter == {"name": TRANSCODER}
    [local] = [f for f in _local_gateway_filters(topology) if f["name"] == LUA]
    assert patch["patch"]["value"] == local


HTTP_BODY = ".google.api.HttpBody"
# fiscal's REST surface: the document is the raw body (an HttpBody field), the rest query
# parameters; GetDocument a plain GET.
FISCAL_REST = {
    "ValidateDocument": ("post", "/v1/fiscal/documents:validate", "document"),
    "SummarizeDocument": ("post", "/v1/fiscal/documents:summarize", "document"),
    "ProcessDocument": ("post", "/v1/fiscal/documents:process", "document"),
    "GetDocument": ("get", "/v1/merchants/{merchant_id}/fiscal-documents/{access_key}", ""),
}


def _http_bindings(data: bytes, services: list[str]) -> dict[str, tuple[str, str, str, str]]:
    """method → (verb, path, body field, the body field's type), as the transcoder reads
    them from the descriptor set it is given, for the services it transcodes."""
    files = _files(data)
    messages = {f".{f.package}.{m.name}": m for f in files.values() for m in f.message_type}
    found = {}
    for file in files.values():
        for service in file.service:
            if f"{file.package}.{service.name}" not in services:
                continue
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                assert verb is not None
                fields = {f.name: f.type_name for f in messages[method.input_type].field}
                body = fields.get(rule.body, "")
                found[f"{file.package}.{service.name}/{method.name}"] = (
                    verb,
                    getattr(rule, verb),
                    rule.body,
                    body,
                )
    return found


def test_the_gateway_transcodes_fiscals_documents_as_raw_bodies(rendered: Rendered) -> None:
    config = _transcoder(rendered)["typed_config"]
    assert "fiscal.v1.FiscalService" in config["services"]
    embedded = base64.b64decode(config["proto_descriptor_bin"])
    assert "google/api/httpbody.proto" in _files(embedded)
    bindings = _http_bindings(embedded, config["services"])
    for method, (verb, path, body) in FISCAL_REST.items():
        found = bindings[f"fiscal.v1.FiscalService/{method}"]
        assert found[:3] == (verb, path, body), method
        if body:
            assert found[3] == HTTP_BODY, method
    # A document fiscal accepts is one the gateway lets through (beyond the limit: 413).
    limit = FiscalSettings.model_fields["fiscal_max_document_bytes"].default
    assert config["max_request_body_size"] >= limit
    # The REST field check knows the routes too, and leaves the raw bodies alone.
    envoy_filter = rendered.get("EnvoyFilter", "caixa-caixa-rest-fields")
    [patch] = envoy_filter["spec"]["configPatches"]
    source = patch["patch"]["value"]["typed_config"]["default_source_code"]["inline_string"]
    for _, path, body in FISCAL_REST.values():
        if body:
            assert f'"body": "{body}", "message": "fiscal.v1.' in source
            assert f'"pattern": "^{path}$"' in source, path
