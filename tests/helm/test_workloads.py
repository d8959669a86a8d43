"""The chart's workloads: what runs where, how it is probed, scaled and stopped."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_python.errors import HelmRenderError

from mesh.chart import Object, Rendered
from tests.support.chart import render_chart
from tests.support.kubernetes import kubernetes_errors
from tests.support.paths import CHART_DIR

VALUES: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
GRPC_PORT: int = VALUES["ports"]["grpc"]
DRAIN: int = VALUES["termination"]["drainSeconds"]
MARGIN: int = VALUES["termination"]["graceMarginSeconds"]
PRE_STOP: int = VALUES["termination"]["preStopSeconds"]

# CloudNativePG on, with the API server and object store peers its NetworkPolicy needs.
CNPG = (
    "cnpg.enabled=true",
    "cnpg.apiServerPeers[0].ipBlock.cidr=192.0.2.10/32",
    "cnpg.objectStorePeers[0].ipBlock.cidr=192.0.2.50/32",
)

# topology → the Deployments it runs (the write path only where PostgreSQL's primary is).
WRITE_PATH = {"caixa-lancamentos", "caixa-dispatcher", "caixa-fiscal"}
EXPECTED_DEPLOYMENTS = {
    "default": {*WRITE_PATH, "caixa-consolidado"},
    "onprem": {*WRITE_PATH, "caixa-consolidado"},
    "cloud": {"caixa-consolidado"},
}
# Every workload with a Service, its autoscaler and its own database.
SERVICES = ("lancamentos", "consolidado", "fiscal")


def container(deployment: Object) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env(c: dict[str, Any]) -> dict[str, Any]:
    """name → value, or the valueFrom mapping."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_each_topology_runs_its_components(rendered: Rendered, topology: str) -> None:
    assert rendered.names("Deployment") == EXPECTED_DEPLOYMENTS[topology]
    accounts = {f"caixa-{n.split('-', 1)[1]}" for n in EXPECTED_DEPLOYMENTS[topology]}
    assert accounts <= rendered.names("ServiceAccount")


def test_each_role_runs_its_command(renders: dict[str, Rendered]) -> None:
    rendered = renders["default"]
    commands = {d["metadata"]["name"]: container(d)["args"] for d in rendered.of_kind("Deployment")}
    assert commands == {
        "caixa-lancamentos": ["caixa-lancamentos", "serve"],
        "caixa-dispatcher": ["caixa-lancamentos", "dispatch"],
        "caixa-consolidado": ["caixa-consolidado", "serve"],
        "caixa-fiscal": ["caixa-fiscal", "serve"],
    }
    # The dispatcher is its own Deployment, never also in-process.
    assert env(container(rendered.get("Deployment", "caixa-lancamentos")))["RUN_DISPATCHER"] == (
        "false"
    )
    # fiscal's outbox goes with every replica (SKIP LOCKED shares it), to lancamentos.
    fiscal = env(container(rendered.get("Deployment", "caixa-fiscal")))
    assert fiscal["RUN_DISPATCHER"] == "true"
    assert fiscal["LANCAMENTOS_TARGET"] == (
        f"dns:///lancamentos.caixa.svc.cluster.local:{GRPC_PORT}"
    )


def test_every_deployment_has_grpc_probes_on_the_grpc_port(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        c = container(deployment)
        assert {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"} in c["ports"]
        assert c["livenessProbe"]["grpc"] == {"port": GRPC_PORT, "service": "liveness"}
        assert c["startupProbe"]["grpc"] == {"port": GRPC_PORT, "service": "liveness"}
        # Readiness asks the overall service "", which follows the database.
        assert c["readinessProbe"]["grpc"] == {"port": GRPC_PORT}
        assert env(c)["GRPC_PORT"] == str(GRPC_PORT)
        assert env(c)["GRPC_HOST"] == "0.0.0.0"
        assert env(c)["METRICS_PORT"] == str(VALUES["ports"]["metrics"])


def test_services_are_named_after_the_mesh_hosts(rendered: Rendered, topology: str) -> None:
    hosts = {name: u["host"] for name, u in VALUES["mesh"]["upstreams"].items()}
    # The cloud runs no lancamentos, yet has its Service: see the next test. Nobody there
    # calls fiscal by name (the gateway routes by Istio's registry, which has both sites).
    expected = {hosts["consolidado"], hosts["lancamentos"]}
    if topology != "cloud":
        expected.add(hosts["fiscal"])
    assert rendered.names("Service") == expected
    for service in rendered.of_kind("Service"):
        [port] = service["spec"]["ports"]
        assert (port["name"], port["port"], port["appProtocol"]) == ("grpc", GRPC_PORT, "grpc")
        assert port["targetPort"] in ("grpc", GRPC_PORT)


def test_a_cluster_without_lancamentos_still_resolves_it(renders: dict[str, Rendered]) -> None:
    """Consolidado calls lancamentos by name (reconcile, rebuild) and Kubernetes DNS only
    answers for local Services: in the cloud the Service exists without a selector, so it
    has no local endpoints and the sidecar sends the calls across the east-west gateway."""
    cloud = renders["cloud"]
    assert "caixa-lancamentos" not in cloud.names("Deployment")
    stub = cloud.get("Service", VALUES["mesh"]["upstreams"]["lancamentos"]["host"])
    assert "selector" not in stub["spec"]
    target = env(container(cloud.get("Deployment", "caixa-consolidado")))["LANCAMENTOS_TARGET"]
    assert target == f"dns:///{stub['metadata']['name']}.caixa.svc.cluster.local:{GRPC_PORT}"
    # Also when the Istio objects come from elsewhere (primary-remote, helm/caixa/README.md).
    no_istio = render_chart([CHART_DIR / "values-cloud.yaml"], sets=["istio.enabled=false"])
    assert stub["metadata"]["name"] in no_istio.names("Service")
    # Without the multi-cluster mesh there is nobody to send those calls to.
    alone = render_chart(
        [CHART_DIR / "values-cloud.yaml"], sets=["multicluster.exposeServices=false"]
    )
    assert "lancamentos" not in alone.names("Service")


def test_a_renamed_mesh_host_renames_the_service_and_the_targets() -> None:
    rendered = render_chart(
        sets=[
            "mesh.upstreams.consolidado.host=saldos",
            "mesh.upstreams.lancamentos.host=razao",
            "mesh.upstreams.fiscal.host=notas",
        ]
    )
    assert rendered.names("Service") == {"saldos", "razao", "notas"}
    fiscal = env(container(rendered.get("Deployment", "caixa-fiscal")))
    assert fiscal["LANCAMENTOS_TARGET"] == f"dns:///razao.caixa.svc.cluster.local:{GRPC_PORT}"
    dispatcher = env(container(rendered.get("Deployment", "caixa-dispatcher")))
    assert dispatcher["CONSOLIDADO_TARGET"] == (
        f"dns:///saldos.caixa.svc.cluster.local:{GRPC_PORT}"
    )
    consolidado = env(container(rendered.get("Deployment", "caixa-consolidado")))
    assert consolidado["LANCAMENTOS_TARGET"] == f"dns:///razao.caixa.svc.cluster.local:{GRPC_PORT}"


def test_targets_use_the_release_namespace() -> None:
    rendered = render_chart(namespace="financeiro")
    dispatcher = env(container(rendered.get("Deployment", "caixa-dispatcher")))
    assert ".financeiro.svc.cluster.local:" in dispatcher["CONSOLIDADO_TARGET"]


def test_the_dispatcher_has_no_service(rendered: Rendered) -> None:
    for service in rendered.of_kind("Service"):
        selector = service["spec"].get("selector", {})
        assert selector.get("app.kubernetes.io/name") != "dispatcher"


def test_connections_come_from_secrets(renders: dict[str, Rendered]) -> None:
    rendered = renders["default"]
    secrets = VALUES["secrets"]
    expected = {
        "caixa-lancamentos": {"DATABASE_URL": secrets["lancamentosDatabase"]},
        "caixa-dispatcher": {"DATABASE_URL": secrets["lancamentosDatabase"]},
        "caixa-consolidado": {
            "DATABASE_URL": secrets["consolidadoDatabase"],
            "REDIS_URL": secrets["redis"],
        },
        "caixa-fiscal": {"DATABASE_URL": secrets["fiscalDatabase"]},
    }
    for name, refs in expected.items():
        variables = env(container(rendered.get("Deployment", name)))
        for variable, ref in refs.items():
            assert variables[variable] == {"secretKeyRef": ref}, (name, variable)


def test_graceful_termination_lines_up(rendered: Rendered) -> None:
    """A preStop wait while callers learn the endpoint is gone, then the app drains for
    drainSeconds. The native sidecar drains from the deletion on (its preStop), accepting
    new connections until the app is gone, and exits with it: the grace period holds the
    preStop and the app's stop, and no second drain (istio/istio#47226)."""
    for deployment in rendered.of_kind("Deployment"):
        pod = deployment["spec"]["template"]
        annotations = pod["metadata"]["annotations"]
        assert annotations["sidecar.istio.io/nativeSidecar"] == "true"
        variables = env(container(deployment))
        proxy = json.loads(annotations["proxy.istio.io/config"])
        server_drain = int(variables["SHUTDOWN_GRACE_SECONDS"])
        if deployment["metadata"]["name"] == "caixa-dispatcher":
            # Its server only answers health; the outbox delivery drain is the long part,
            # and LancamentosApp.stop runs the two one after the other. Nobody calls it,
            # so it has no preStop wait.
            assert int(variables["DISPATCH_DRAIN_SECONDS"]) == DRAIN
            assert server_drain <= 2
            app_stop = server_drain + DRAIN
            pre_stop = 0
            assert "lifecycle" not in container(deployment)
        elif deployment["metadata"]["name"] == "caixa-fiscal":
            # It serves and dispatches: FiscalApp.stop drains the server, then delivers
            # what it can of its outbox, one after the other.
            assert server_drain == DRAIN
            assert int(variables["DISPATCH_DRAIN_SECONDS"]) == DRAIN
            app_stop = server_drain + DRAIN
            pre_stop = container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert pre_stop == PRE_STOP
        else:
            assert server_drain == DRAIN
            app_stop = server_drain
            pre_stop = container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert pre_stop == PRE_STOP
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        assert grace == pre_stop + app_stop + MARGIN
        # The proxy accepts connections for as long as the app may still open them.
        assert proxy["terminationDrainDuration"] == f"{pre_stop + app_stop}s"


def test_drain_follows_values() -> None:
    rendered = render_chart(
        sets=["termination.drainSeconds=45", "termination.graceMarginSeconds=5"]
    )
    pod = rendered.get("Deployment", "caixa-consolidado")["spec"]["template"]
    assert pod["spec"]["terminationGracePeriodSeconds"] == PRE_STOP + 45 + 5
    assert (
        f'"terminationDrainDuration":"{PRE_STOP + 45}s"'
        in pod["metadata"]["annotations"]["proxy.istio.io/config"]
    )


def test_pods_join_the_mesh_and_are_scraped(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        metadata = deployment["spec"]["template"]["metadata"]
        assert metadata["labels"]["sidecar.istio.io/inject"] == "true"
        assert metadata["annotations"]["prometheus.io/scrape"] == "true"
        assert metadata["annotations"]["prometheus.io/port"] == str(VALUES["ports"]["metrics"])
        # kubelet's gRPC probes go to the sidecar agent, never through STRICT mTLS and the
        # AuthorizationPolicies (which therefore need no rule for kubelet).
        assert metadata["annotations"]["sidecar.istio.io/rewriteAppHTTPProbers"] == "true"


def test_pods_spread_across_zones_and_nodes(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert keys == {VALUES["topologySpread"]["topologyKey"], "kubernetes.io/hostname"}
        selector = deployment["spec"]["selector"]
        for constraint in spec["topologySpreadConstraints"]:
            assert constraint["labelSelector"] == selector


def test_tmp_is_writable(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container(deployment)["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in spec["volumes"])


def test_extra_env_is_added_and_cannot_override_chart_settings() -> None:
    rendered = render_chart(sets=["consolidado.env.LOG_LEVEL=DEBUG"])
    assert env(container(rendered.get("Deployment", "caixa-consolidado")))["LOG_LEVEL"] == ("DEBUG")
    with pytest.raises(HelmRenderError, match=r"consolidado\.env\.REDIS_URL"):
        render_chart(sets=["consolidado.env.REDIS_URL=redis://elsewhere"])


@pytest.mark.parametrize("component", SERVICES)
def test_autoscaling_matches_values(component: str, renders: dict[str, Rendered]) -> None:
    scaling = VALUES[component]["autoscaling"]
    hpa = renders["default"].get("HorizontalPodAutoscaler", f"caixa-{component}")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"caixa-{component}",
    }
    assert hpa["spec"]["minReplicas"] == scaling["minReplicas"]
    assert hpa["spec"]["maxReplicas"] == scaling["maxReplicas"]
    # The app container's CPU: a pod-level figure would average in the sidecar's.
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "ContainerResource"
    assert metric["containerResource"]["container"] == component
    target = metric["containerResource"]["target"]["averageUtilization"]
    assert target == scaling["targetCPUUtilizationPercentage"]
    # The HPA owns the replica count; a fixed one would fight it on every upgrade.
    deployment = renders["default"].get("Deployment", f"caixa-{component}")
    assert "replicas" not in deployment["spec"]


def test_without_autoscaling_replicas_are_fixed() -> None:
    rendered = render_chart(
        sets=["consolidado.autoscaling.enabled=false", "consolidado.replicaCount=3"]
    )
    assert "caixa-consolidado" not in rendered.names("HorizontalPodAutoscaler")
    assert rendered.get("Deployment", "caixa-consolidado")["spec"]["replicas"] == 3


def test_max_replicas_below_min_fails() -> None:
    with pytest.raises(HelmRenderError, match="maxReplicas"):
        render_chart(sets=["lancamentos.autoscaling.maxReplicas=1"])


def test_every_deployment_has_a_disruption_budget(rendered: Rendered) -> None:
    budgets = {p["metadata"]["name"]: p for p in rendered.of_kind("PodDisruptionBudget")}
    for deployment in rendered.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        budget = budgets[name]
        assert budget["spec"]["selector"] == deployment["spec"]["selector"]
        component = name.removeprefix("caixa-")
        assert (
            budget["spec"]["maxUnavailable"]
            == (VALUES[component]["podDisruptionBudget"]["maxUnavailable"])
        )


def _jobs(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {j["metadata"]["labels"]["caixa.io/database"]: j for j in rendered.of_kind("Job")}


def test_migrations_are_plain_jobs(renders: dict[str, Rendered]) -> None:
    rendered = renders["default"]
    jobs = _jobs(rendered)
    assert set(jobs) == set(SERVICES)
    account = rendered.get("ServiceAccount", "caixa-migrations")
    assert "annotations" not in account["metadata"]
    for database, job in jobs.items():
        assert job["metadata"]["name"].startswith(f"caixa-migrations-{database}-1-")
        assert "annotations" not in job["metadata"]  # no helm.sh/hook: see test_install_paths
        pod = job["spec"]["template"]
        assert pod["spec"]["serviceAccountName"] == "caixa-migrations"
        assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
        assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
        assert pod["spec"]["restartPolicy"] == "Never"
        c = pod["spec"]["containers"][0]
        assert c["args"] == [f"caixa-{database}", "migrate"]
        assert env(c)["DATABASE_URL"] == {"secretKeyRef": VALUES["secrets"][f"{database}Database"]}
        for key in ("backoffLimit", "activeDeadlineSeconds"):
            assert job["spec"][key] == VALUES["migrations"][key]


def test_migrations_run_only_on_the_write_path(renders: dict[str, Rendered]) -> None:
    assert renders["cloud"].of_kind("Job") == []
    assert "caixa-migrations" not in renders["cloud"].names("ServiceAccount")
    assert render_chart(sets=["migrations.enabled=false"]).of_kind("Job") == []
    # A release without fiscal has no fiscal database to migrate.
    assert set(_jobs(render_chart(sets=["fiscal.enabled=false"]))) == {"lancamentos", "consolidado"}


WRITERS_OFF = ("lancamentos.enabled=false", "dispatcher.enabled=false", "fiscal.enabled=false")


@pytest.mark.parametrize("writer", ["lancamentos", "dispatcher", "fiscal"])
def test_the_write_path_refuses_a_cluster_without_the_primary(writer: str) -> None:
    """fiscal writes (its database, and entries in lancamentos): any one of the three left
    on where the primary is not fails the render."""
    on = [s for s in WRITERS_OFF if not s.startswith(f"{writer}.")]
    with pytest.raises(HelmRenderError, match="run only in the cluster with the PostgreSQL"):
        render_chart(sets=["cluster.writePath=false", *on])
    rendered = render_chart(sets=["cluster.writePath=false", *WRITERS_OFF])
    assert rendered.names("Deployment") == {"caixa-consolidado"}
    assert rendered.of_kind("Job") == []


def test_onprem_uses_cloudnative_pg(renders: dict[str, Rendered]) -> None:
    onprem = renders["onprem"]
    clusters = {c["metadata"]["name"]: c for c in onprem.of_kind("Cluster")}
    assert set(clusters) == {f"caixa-{database}-pg" for database in SERVICES}
    backups = {b["spec"]["cluster"]["name"] for b in onprem.of_kind("ScheduledBackup")}
    assert backups == set(clusters)
    # Backups through the Barman Cloud plugin (the in-tree barmanObjectStore is removed
    # in CNPG 1.31): one ObjectStore, named by each Cluster and each ScheduledBackup.
    [store] = onprem.of_kind("ObjectStore")
    assert store["apiVersion"] == "barmancloud.cnpg.io/v1"
    configuration = store["spec"]["configuration"]
    assert (
        configuration["s3Credentials"]["accessKeyId"]["name"]
        == VALUES["cnpg"]["backup"]["s3Credentials"]["secretName"]
    )
    assert store["spec"]["retentionPolicy"] == VALUES["cnpg"]["backup"]["retentionPolicy"]
    sidecar = store["spec"]["instanceSidecarConfiguration"]["resources"]
    assert sidecar == VALUES["cnpg"]["backup"]["sidecarResources"]
    for backup in onprem.of_kind("ScheduledBackup"):
        assert backup["spec"]["method"] == "plugin"
        assert backup["spec"]["pluginConfiguration"] == {"name": "barman-cloud.cloudnative-pg.io"}
    for name, cluster in clusters.items():
        assert "backup" not in cluster["spec"]
        assert cluster["spec"]["plugins"] == [
            {
                "name": "barman-cloud.cloudnative-pg.io",
                "isWALArchiver": True,
                # Each site archives under its own server name (one writer, two sites).
                "parameters": {
                    "barmanObjectName": store["metadata"]["name"],
                    "serverName": f"{name}-onprem",
                },
            }
        ]
        # The services read the Secret the operator writes for their cluster.
        database = cluster["spec"]["bootstrap"]["initdb"]["database"]
        assert env(container(onprem.get("Deployment", f"caixa-{database}")))["DATABASE_URL"] == {
            "secretKeyRef": {"name": f"{name}-app", "key": "uri"}
        }
    assert renders["default"].of_kind("Cluster") == []


def test_cnpg_acknowledges_a_commit_only_once_a_standby_has_it(
    renders: dict[str, Rendered],
) -> None:
    for cluster in renders["onprem"].of_kind("Cluster"):
        # `required`: never the self-healing fall back to asynchronous replication that
        # the legacy minSyncReplicas/maxSyncReplicas (and `preferred`) allow.
        assert cluster["spec"]["postgresql"]["synchronous"] == {
            "method": "any",
            "number": 1,
            "dataDurability": "required",
        }
        assert not {"minSyncReplicas", "maxSyncReplicas"} & cluster["spec"].keys()
    # One standby down (restart, node drain) must not stop writes: primary + sync + one.
    with pytest.raises(HelmRenderError, match=r"synchronousReplicas \+ 2"):
        render_chart(sets=[*CNPG, "cnpg.instances=2"])
    render_chart(sets=[*CNPG, "cnpg.instances=3"])
    asynchronous = render_chart(sets=[*CNPG, "cnpg.synchronousReplicas=0"])
    assert all(
        "synchronous" not in c["spec"]["postgresql"] for c in asynchronous.of_kind("Cluster")
    )


def rules(rendered: Rendered, name: str, direction: str) -> list[dict[str, Any]]:
    spec = rendered.get("NetworkPolicy", name)["spec"]
    assert direction.capitalize() in spec["policyTypes"]
    found: list[dict[str, Any]] = spec.get(direction, [])
    return found


def ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def test_network_policies_deny_by_default_and_allow_the_mesh(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["default"]
    deny = rendered.get("NetworkPolicy", "caixa-default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    [dns] = rules(rendered, "caixa-dns", "egress")
    assert ports(dns) == {("UDP", 53), ("TCP", 53)}
    # No east-west peers by default; the users' issuer, whose keys every service fetches.
    [istiod, issuer] = rules(rendered, "caixa-mesh", "egress")
    assert ports(istiod) == {("TCP", 15012)}
    assert ports(issuer) == {("TCP", 443)}
    assert issuer["to"] == VALUES["auth"]["identityProvider"]["peers"]
    [scrape] = rules(rendered, "caixa-mesh", "ingress")
    assert ports(scrape) == {("TCP", VALUES["ports"]["metrics"]), ("TCP", 15020), ("TCP", 15090)}


def test_only_gateways_and_callers_reach_the_grpc_ports(renders: dict[str, Rendered]) -> None:
    rendered = renders["default"]
    np = VALUES["networkPolicy"]
    gateways = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
        for ns in (np["ingressGatewayNamespace"], np["eastWestGatewayNamespace"])
    ]
    callers = {
        "lancamentos": ["consolidado", "fiscal", "helm-test"],
        "consolidado": ["dispatcher", "helm-test"],
        # Through the gateways only: no workload calls fiscal.
        "fiscal": [],
    }
    for target, expected in callers.items():
        [rule] = rules(rendered, f"caixa-{target}", "ingress")
        assert ports(rule) == {("TCP", GRPC_PORT)}
        caller_pods = rule["from"][len(gateways) :]
        assert rule["from"][: len(gateways)] == gateways
        # The service's callers, and `helm test`'s Pod.
        names = [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in caller_pods]
        assert names == expected, target
    assert rules(rendered, "caixa-dispatcher", "ingress") == []


def render_emptied(tmp_path: Path, empty: Iterable[str], sets: Iterable[str] = ()) -> Rendered:
    """Renders with each dotted path in `empty` set to [] (`--set` cannot write an empty list)."""
    overlay: dict[str, Any] = {}
    for path in empty:
        *parents, leaf = path.split(".")
        node = overlay
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = []
    values = tmp_path / "empty.yaml"
    values.write_text(yaml.safe_dump(overlay), encoding="utf-8")
    return render_chart([values], sets=list(sets))


def namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def postgres_rules(rendered: Rendered, name: str) -> list[dict[str, Any]]:
    return [r for r in rules(rendered, name, "egress") if ("TCP", 5432) in ports(r)]


# Each database's clients (their NetworkPolicies).
DATABASE_CLIENTS = {
    "lancamentos": ("caixa-lancamentos", "caixa-dispatcher", "caixa-migrations-lancamentos"),
    "consolidado": ("caixa-consolidado", "caixa-migrations-consolidado"),
    "fiscal": ("caixa-fiscal", "caixa-migrations-fiscal"),
}


def test_databases_live_in_their_own_namespaces_by_default(renders: dict[str, Rendered]) -> None:
    rendered = renders["default"]
    for name in (n for clients in DATABASE_CLIENTS.values() for n in clients):
        assert [r["to"] for r in postgres_rules(rendered, name)] == [[namespace_peer("postgres")]]
    redis = [r for r in rules(rendered, "caixa-consolidado", "egress") if ("TCP", 6379) in ports(r)]
    assert [r["to"] for r in redis] == [[namespace_peer("redis")]]
    # The sidecars are given the same hosts.
    egress = VALUES["istio"]["egress"]
    for database in ("lancamentosDatabase", "consolidadoDatabase", "fiscalDatabase"):
        assert egress[database]["hosts"] == ["postgres/postgres.postgres.svc.cluster.local"]
    assert egress["redis"]["hosts"] == ["redis/redis.redis.svc.cluster.local"]


def test_database_egress_only_to_configured_peers() -> None:
    peer = {"ipBlock": {"cidr": "10.20.0.0/24"}}
    rendered = render_chart(sets=["networkPolicy.postgres.peers[0].ipBlock.cidr=10.20.0.0/24"])
    for name in (n for clients in DATABASE_CLIENTS.values() for n in clients):
        assert [r["to"] for r in postgres_rules(rendered, name)] == [[peer]], name
    # Each migration Job's pods, told apart by the database they migrate.
    jobs = _jobs(rendered)
    for database in DATABASE_CLIENTS:
        selector = rendered.get("NetworkPolicy", f"caixa-migrations-{database}")["spec"]
        labels = jobs[database]["spec"]["template"]["metadata"]["labels"]
        assert selector["podSelector"]["matchLabels"]["caixa.io/database"] == database
        assert selector["podSelector"]["matchLabels"].items() <= labels.items()


def test_east_west_peers_open_15443() -> None:
    rendered = render_chart(sets=["networkPolicy.eastWestPeers[0].ipBlock.cidr=203.0.113.0/24"])
    remote = rules(rendered, "caixa-mesh", "egress")[1]
    assert ports(remote) == {("TCP", 15443)}
    assert remote["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]


def test_extra_dns_and_istiod_peers() -> None:
    rendered = render_chart(
        sets=[
            "networkPolicy.dns.extraPeers[0].ipBlock.cidr=169.254.20.10/32",
            "networkPolicy.istiodPeers[0].ipBlock.cidr=203.0.113.7/32",
        ]
    )
    [dns] = rules(rendered, "caixa-dns", "egress")
    assert dns["to"][1:] == [{"ipBlock": {"cidr": "169.254.20.10/32"}}]
    assert ports(dns) == {("UDP", 53), ("TCP", 53)}
    [istiod, _issuer] = rules(rendered, "caixa-mesh", "egress")
    assert istiod["to"][1:] == [{"ipBlock": {"cidr": "203.0.113.7/32"}}]
    assert ports(istiod) == {("TCP", 15012)}


def test_with_cnpg_each_client_reaches_only_its_own_cluster(tmp_path: Path) -> None:
    rendered = render_emptied(tmp_path, ["networkPolicy.postgres.peers"], CNPG)
    for database, clients in DATABASE_CLIENTS.items():
        own = {"podSelector": {"matchLabels": {"cnpg.io/cluster": f"caixa-{database}-pg"}}}
        for name in clients:
            assert [r["to"] for r in postgres_rules(rendered, name)] == [[own]], name
        # The cluster lets in its own pods, then its own clients only.
        policy = rendered.get("NetworkPolicy", f"caixa-postgres-{database}")["spec"]
        assert policy["podSelector"] == own["podSelector"]
        replication, clients_rule = policy["ingress"]
        assert replication["from"] == [own]
        selected = [p["podSelector"]["matchLabels"] for p in clients_rule["from"]]
        names = {labels["app.kubernetes.io/name"] for labels in selected}
        expected = {n.removeprefix("caixa-").split("-")[0] for n in clients}
        assert names == expected
        assert ports(clients_rule) == {("TCP", 5432)}
        assert [r["to"] for r in policy["egress"]] == [[own]]


def test_the_cnpg_policy_selects_every_pod_of_the_clusters(renders: dict[str, Rendered]) -> None:
    # CNPG's initdb/join Job pods need not carry cnpg.io/podRole=instance.
    spec = renders["onprem"].get("NetworkPolicy", "caixa-postgres")["spec"]
    assert spec["podSelector"] == {
        "matchExpressions": [
            {
                "key": "cnpg.io/cluster",
                "operator": "In",
                "values": ["caixa-lancamentos-pg", "caixa-consolidado-pg", "caixa-fiscal-pg"],
            }
        ]
    }
    api, store = spec["egress"]
    assert ports(api) == {("TCP", 443), ("TCP", 6443)}
    assert api["to"] and store["to"] and "ports" not in store


def test_onprem_sets_the_peers_cnpg_and_the_mesh_need() -> None:
    onprem: dict[str, Any] = yaml.safe_load(
        (CHART_DIR / "values-onprem.yaml").read_text(encoding="utf-8")
    )
    assert onprem["cnpg"]["apiServerPeers"] and onprem["cnpg"]["objectStorePeers"]
    assert onprem["networkPolicy"]["eastWestPeers"]
    cloud: dict[str, Any] = yaml.safe_load(
        (CHART_DIR / "values-cloud.yaml").read_text(encoding="utf-8")
    )
    assert cloud["networkPolicy"]["eastWestPeers"]


POSTGRES = "networkPolicy.postgres.peers"
REDIS = "networkPolicy.redis.peers"


@pytest.mark.parametrize(
    ("empty", "sets", "message"),
    [
        pytest.param((), ("cnpg.enabled=true",), r"cnpg\.apiServerPeers is empty", id="cnpg-api"),
        pytest.param(
            (),
            ("cnpg.enabled=true", "cnpg.apiServerPeers[0].ipBlock.cidr=192.0.2.10/32"),
            r"cnpg\.objectStorePeers is empty",
            id="cnpg-object-store",
        ),
        pytest.param(
            (),
            ("multicluster.exposeServices=true",),
            r"networkPolicy\.eastWestPeers is empty",
            id="east-west",
        ),
        pytest.param(
            (POSTGRES,),
            (),
            r"networkPolicy\.postgres\.peers is empty .* lancamentos database: lancamentos, "
            r"dispatcher, migrations-lancamentos could not",
            id="postgres",
        ),
        pytest.param(
            (POSTGRES,),
            ("lancamentos.enabled=false", "dispatcher.enabled=false", "migrations.enabled=false"),
            r"consolidado database: consolidado could not",
            id="postgres-consolidado-only",
        ),
        pytest.param(
            (POSTGRES,),
            ("cnpg.databases={lancamentos}", *CNPG[1:], "cnpg.enabled=true"),
            r"consolidado database: consolidado, migrations-consolidado could not",
            id="postgres-cnpg-runs-one-database",
        ),
        pytest.param(
            (POSTGRES,),
            ("cnpg.databases={lancamentos,consolidado}", *CNPG[1:], "cnpg.enabled=true"),
            r"fiscal database: fiscal, migrations-fiscal could not",
            id="postgres-cnpg-without-fiscal",
        ),
        pytest.param((REDIS,), (), r"networkPolicy\.redis\.peers is empty", id="redis"),
    ],
)
def test_a_policy_that_would_cut_a_needed_flow_fails(
    empty: tuple[str, ...], sets: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    with pytest.raises(HelmRenderError, match=message):
        render_emptied(tmp_path, empty, sets)
    # Without NetworkPolicies nothing is cut, so the same values render.
    render_emptied(tmp_path, empty, [*sets, "networkPolicy.enabled=false"])


def test_empty_peers_are_fine_where_nothing_needs_them(tmp_path: Path) -> None:
    # CNPG runs both databases; no consolidado, so no Redis.
    rendered = render_emptied(tmp_path, [POSTGRES, REDIS], [*CNPG, "consolidado.enabled=false"])
    assert "caixa-consolidado" not in rendered.names("NetworkPolicy")


def test_no_pre_stop_wait_when_set_to_zero() -> None:
    rendered = render_chart(sets=["termination.preStopSeconds=0"])
    for deployment in rendered.of_kind("Deployment"):
        assert "lifecycle" not in container(deployment)


def test_disruption_budgets_never_block_drains_while_pods_are_unready(
    rendered: Rendered,
) -> None:
    # Readiness follows the database; under its outage every pod is NotReady.
    for budget in rendered.of_kind("PodDisruptionBudget"):
        assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_spread_counts_only_the_current_rollout(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} == {
            VALUES["topologySpread"]["topologyKey"],
            "kubernetes.io/hostname",
        }
        assert all(c["matchLabelKeys"] == ["pod-template-hash"] for c in constraints)


def test_migrations_wait_for_their_database(renders: dict[str, Rendered]) -> None:
    wait = VALUES["migrations"]["waitForDatabaseSeconds"]
    for job in renders["onprem"].of_kind("Job"):
        assert env(job["spec"]["template"]["spec"]["containers"][0])["MIGRATE_WAIT_SECONDS"] == str(
            wait
        )
        assert job["spec"]["activeDeadlineSeconds"] > wait
    with pytest.raises(HelmRenderError, match=r"must exceed migrations\.waitForDatabaseSeconds"):
        render_chart(sets=["migrations.waitForDatabaseSeconds=600"])


def test_cnpg_instances_never_share_a_host_and_have_guaranteed_resources(
    renders: dict[str, Rendered],
) -> None:
    cnpg = VALUES["cnpg"]
    for cluster in renders["onprem"].of_kind("Cluster"):
        spec = cluster["spec"]
        assert spec["affinity"]["topologyKey"] == "kubernetes.io/hostname"
        assert spec["affinity"]["podAntiAffinityType"] == "required"
        [zones] = spec["topologySpreadConstraints"]
        assert zones["labelSelector"]["matchLabels"] == {
            "cnpg.io/cluster": cluster["metadata"]["name"]
        }
        assert spec["resources"] == cnpg["resources"]
        assert spec["resources"]["requests"] == spec["resources"]["limits"]
    for backup in renders["onprem"].of_kind("ScheduledBackup"):
        assert backup["spec"]["immediate"] is True


def test_fiscal_trusts_no_ca_unless_given_one(renders: dict[str, Rendered]) -> None:
    pod = renders["default"].get("Deployment", "caixa-fiscal")["spec"]["template"]["spec"]
    variables = env(container(renders["default"].get("Deployment", "caixa-fiscal")))
    assert "FISCAL_TRUSTED_CAS_FILE" not in variables
    assert variables["FISCAL_REQUIRE_TRUSTED_SIGNATURE"] == "false"
    assert "trusted-cas" not in {v["name"] for v in pod["volumes"]}


def test_fiscal_reads_the_trusted_cas_from_their_secret_read_only() -> None:
    rendered = render_chart(
        sets=[
            "fiscal.trustedCAs.secretName=icp-brasil",
            "fiscal.trustedCAs.key=chain.pem",
            "fiscal.requireTrustedSignature=true",
        ]
    )
    deployment = rendered.get("Deployment", "caixa-fiscal")
    pod, app = deployment["spec"]["template"]["spec"], container(deployment)
    variables = env(app)
    assert variables["FISCAL_REQUIRE_TRUSTED_SIGNATURE"] == "true"
    bundle = Path(variables["FISCAL_TRUSTED_CAS_FILE"])
    [mount] = [m for m in app["volumeMounts"] if m["name"] == "trusted-cas"]
    # The Secret as a directory (no subPath), so kubelet updates it in place.
    assert mount == {"name": "trusted-cas", "mountPath": str(bundle.parent), "readOnly": True}
    [volume] = [v for v in pod["volumes"] if v["name"] == "trusted-cas"]
    assert volume["secret"]["secretName"] == "icp-brasil"
    assert volume["secret"]["items"] == [{"key": "chain.pem", "path": bundle.name}]
    assert kubernetes_errors(rendered) == []
    # Nobody else mounts it.
    for other in rendered.of_kind("Deployment"):
        if other is not deployment:
            assert "trusted-cas" not in {
                v["name"] for v in other["spec"]["template"]["spec"]["volumes"]
            }


def test_fiscal_refuses_to_require_a_trust_it_has_no_cas_for() -> None:
    with pytest.raises(HelmRenderError, match=r"fiscal\.trustedCAs\.secretName is empty"):
        render_chart(sets=["fiscal.requireTrustedSignature=true"])
    # Where the bundle is comes from trustedCAs, never from fiscal.env.
    with pytest.raises(HelmRenderError, match=r"fiscal\.env\.FISCAL_TRUSTED_CAS_FILE"):
        render_chart(sets=["fiscal.env.FISCAL_TRUSTED_CAS_FILE=/tmp/cas.pem"])
    with pytest.raises(HelmRenderError, match=r"fiscal\.env\.LANCAMENTOS_TARGET"):
        render_chart(sets=["fiscal.env.LANCAMENTOS_TARGET=elsewhere:50051"])


def _millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def test_fiscal_has_cpu_for_its_validation(renders: dict[str, Rendered]) -> None:
    """XML validation is CPU-bound: a replica's request is a core of its own (the
    autoscaler's 70 % is of that), and its limit lets lxml's threads past one."""
    resources = container(renders["default"].get("Deployment", "caixa-fiscal"))["resources"]
    assert resources == VALUES["fiscal"]["resources"]
    assert _millicores(resources["requests"]["cpu"]) >= 1000
    assert _millicores(resources["limits"]["cpu"]) > _millicores(resources["requests"]["cpu"])
