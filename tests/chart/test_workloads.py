"""The chart's workloads: what runs where, how it is probed, scaled and stopped."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from helm_python.errors import HelmRenderError

from caixa.chart.render import CHART_DIR, Object, Rendered, render_chart

VALUES: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
GRPC_PORT: int = VALUES["ports"]["grpc"]
DRAIN: int = VALUES["termination"]["drainSeconds"]
MARGIN: int = VALUES["termination"]["graceMarginSeconds"]

# topology → the Deployments it runs (the write path only where PostgreSQL's primary is).
EXPECTED_DEPLOYMENTS = {
    "default": {"caixa-lancamentos", "caixa-dispatcher", "caixa-consolidado"},
    "onprem": {"caixa-lancamentos", "caixa-dispatcher", "caixa-consolidado"},
    "cloud": {"caixa-consolidado"},
}


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
    }
    # The dispatcher is its own Deployment, never also in-process.
    assert env(container(rendered.get("Deployment", "caixa-lancamentos")))["RUN_DISPATCHER"] == (
        "false"
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
    expected = {hosts["consolidado"]} | ({hosts["lancamentos"]} if topology != "cloud" else set())
    assert rendered.names("Service") == expected
    for service in rendered.of_kind("Service"):
        assert service["spec"]["ports"] == [
            {
                "name": "grpc",
                "port": GRPC_PORT,
                "targetPort": "grpc",
                "protocol": "TCP",
                "appProtocol": "grpc",
            }
        ]


def test_a_renamed_mesh_host_renames_the_service_and_the_targets() -> None:
    rendered = render_chart(
        sets=["mesh.upstreams.consolidado.host=saldos", "mesh.upstreams.lancamentos.host=razao"]
    )
    assert rendered.names("Service") == {"saldos", "razao"}
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
        assert service["spec"]["selector"]["app.kubernetes.io/name"] != "dispatcher"


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
    }
    for name, refs in expected.items():
        variables = env(container(rendered.get("Deployment", name)))
        for variable, ref in refs.items():
            assert variables[variable] == {"secretKeyRef": ref}, (name, variable)


def test_graceful_termination_lines_up(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        pod = deployment["spec"]["template"]
        variables = env(container(deployment))
        app_drain = int(variables["SHUTDOWN_GRACE_SECONDS"])
        proxy = json.loads(pod["metadata"]["annotations"]["proxy.istio.io/config"])
        assert app_drain == DRAIN
        assert proxy["terminationDrainDuration"] == f"{app_drain}s"
        assert pod["spec"]["terminationGracePeriodSeconds"] >= app_drain + MARGIN
        if deployment["metadata"]["name"] == "caixa-dispatcher":
            assert int(variables["DISPATCH_DRAIN_SECONDS"]) == DRAIN


def test_drain_follows_values() -> None:
    rendered = render_chart(
        sets=["termination.drainSeconds=45", "termination.graceMarginSeconds=5"]
    )
    pod = rendered.get("Deployment", "caixa-consolidado")["spec"]["template"]
    assert pod["spec"]["terminationGracePeriodSeconds"] == 50
    assert (
        '"terminationDrainDuration":"45s"'
        in pod["metadata"]["annotations"]["proxy.istio.io/config"]
    )


def test_pods_join_the_mesh_and_are_scraped(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        metadata = deployment["spec"]["template"]["metadata"]
        assert metadata["labels"]["sidecar.istio.io/inject"] == "true"
        assert metadata["annotations"]["prometheus.io/scrape"] == "true"
        assert metadata["annotations"]["prometheus.io/port"] == str(VALUES["ports"]["metrics"])


def test_pods_spread_across_zones_and_nodes(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        keys = [c["topologyKey"] for c in spec["topologySpreadConstraints"]]
        assert keys == [VALUES["topologySpread"]["topologyKey"], "kubernetes.io/hostname"]
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


@pytest.mark.parametrize("component", ["lancamentos", "consolidado"])
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
    target = hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
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


def test_migrations_are_hook_jobs(renders: dict[str, Rendered]) -> None:
    rendered = renders["default"]
    jobs = {j["metadata"]["name"]: j for j in rendered.of_kind("Job")}
    assert set(jobs) == {"caixa-migrations-lancamentos", "caixa-migrations-consolidado"}
    account = rendered.get("ServiceAccount", "caixa-migrations")
    account_weight = int(account["metadata"]["annotations"]["helm.sh/hook-weight"])
    for database, job in ((n.rsplit("-", 1)[1], j) for n, j in jobs.items()):
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        # The ServiceAccount is a hook created before the Job that uses it.
        assert account["metadata"]["annotations"]["helm.sh/hook"] == annotations["helm.sh/hook"]
        assert account_weight < int(annotations["helm.sh/hook-weight"])
        pod = job["spec"]["template"]
        assert pod["spec"]["serviceAccountName"] == "caixa-migrations"
        assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
        assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
        assert pod["spec"]["restartPolicy"] == "Never"
        c = pod["spec"]["containers"][0]
        assert c["args"] == [f"caixa-{database}", "migrate"]
        assert env(c)["DATABASE_URL"] == {"secretKeyRef": VALUES["secrets"][f"{database}Database"]}
        for key in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
            assert job["spec"][key] == VALUES["migrations"][key]


def test_migrations_run_only_on_the_write_path(renders: dict[str, Rendered]) -> None:
    assert renders["cloud"].of_kind("Job") == []
    assert "caixa-migrations" not in renders["cloud"].names("ServiceAccount")
    assert render_chart(sets=["migrations.enabled=false"]).of_kind("Job") == []


def test_with_cnpg_migrations_wait_for_the_database_created_with_the_release(
    renders: dict[str, Rendered],
) -> None:
    for job in renders["onprem"].of_kind("Job"):
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


def test_the_write_path_refuses_a_cluster_without_the_primary() -> None:
    with pytest.raises(HelmRenderError, match="run only in the cluster with the PostgreSQL"):
        render_chart(sets=["cluster.writePath=false"])
    with pytest.raises(HelmRenderError, match=r"dispatcher\.enabled=false"):
        render_chart(sets=["cluster.writePath=false", "lancamentos.enabled=false"])
    rendered = render_chart(
        sets=["cluster.writePath=false", "lancamentos.enabled=false", "dispatcher.enabled=false"]
    )
    assert rendered.names("Deployment") == {"caixa-consolidado"}


def test_onprem_uses_cloudnative_pg(renders: dict[str, Rendered]) -> None:
    onprem = renders["onprem"]
    clusters = {c["metadata"]["name"]: c for c in onprem.of_kind("Cluster")}
    assert set(clusters) == {"caixa-lancamentos-pg", "caixa-consolidado-pg"}
    backups = {b["spec"]["cluster"]["name"] for b in onprem.of_kind("ScheduledBackup")}
    assert backups == set(clusters)
    for name, cluster in clusters.items():
        store = cluster["spec"]["backup"]["barmanObjectStore"]
        assert (
            store["s3Credentials"]["accessKeyId"]["name"]
            == (VALUES["cnpg"]["backup"]["s3Credentials"]["secretName"])
        )
        # The services read the Secret the operator writes for their cluster.
        database = cluster["spec"]["bootstrap"]["initdb"]["database"]
        user = "caixa-lancamentos" if database == "lancamentos" else "caixa-consolidado"
        assert env(container(onprem.get("Deployment", user)))["DATABASE_URL"] == {
            "secretKeyRef": {"name": f"{name}-app", "key": "uri"}
        }
    assert renders["default"].of_kind("Cluster") == []


def test_cnpg_acknowledges_a_commit_only_once_a_standby_has_it(
    renders: dict[str, Rendered],
) -> None:
    for cluster in renders["onprem"].of_kind("Cluster"):
        assert cluster["spec"]["minSyncReplicas"] == cluster["spec"]["maxSyncReplicas"] == 1
    with pytest.raises(HelmRenderError, match="synchronousReplicas"):
        render_chart(sets=["cnpg.enabled=true", "cnpg.instances=1"])
    asynchronous = render_chart(sets=["cnpg.enabled=true", "cnpg.synchronousReplicas=0"])
    assert all("minSyncReplicas" not in c["spec"] for c in asynchronous.of_kind("Cluster"))


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
    [istiod] = rules(rendered, "caixa-mesh", "egress")  # no east-west peers by default
    assert ports(istiod) == {("TCP", 15012)}
    [scrape] = rules(rendered, "caixa-mesh", "ingress")
    assert ports(scrape) == {("TCP", VALUES["ports"]["metrics"]), ("TCP", 15020), ("TCP", 15090)}


def test_only_gateways_and_callers_reach_the_grpc_ports(renders: dict[str, Rendered]) -> None:
    rendered = renders["default"]
    np = VALUES["networkPolicy"]
    gateways = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
        for ns in (np["ingressGatewayNamespace"], np["eastWestGatewayNamespace"])
    ]
    for target, caller in (("lancamentos", "consolidado"), ("consolidado", "dispatcher")):
        [rule] = rules(rendered, f"caixa-{target}", "ingress")
        assert ports(rule) == {("TCP", GRPC_PORT)}
        caller_pods = rule["from"][len(gateways) :]
        assert rule["from"][: len(gateways)] == gateways
        assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in caller_pods] == [
            caller
        ]
    assert rules(rendered, "caixa-dispatcher", "ingress") == []


def test_database_egress_only_to_configured_peers(renders: dict[str, Rendered]) -> None:
    # Empty peers: no rule at all (an empty `to` would allow every destination).
    assert rules(renders["default"], "caixa-lancamentos", "egress") == []
    assert rules(renders["default"], "caixa-migrations", "egress") == []
    peer = {"ipBlock": {"cidr": "10.20.0.0/24"}}
    rendered = render_chart(
        sets=[
            "networkPolicy.postgres.peers[0].ipBlock.cidr=10.20.0.0/24",
            "networkPolicy.eastWestPeers[0].ipBlock.cidr=203.0.113.0/24",
        ]
    )
    for name in ("caixa-lancamentos", "caixa-dispatcher", "caixa-consolidado", "caixa-migrations"):
        postgres = [r for r in rules(rendered, name, "egress") if ("TCP", 5432) in ports(r)]
        assert [r["to"] for r in postgres] == [[peer]], name
    remote = rules(rendered, "caixa-mesh", "egress")[1]
    assert ports(remote) == {("TCP", 15443)}
    # With CloudNativePG the chart's own instances are the PostgreSQL peers.
    cnpg = render_chart(sets=["cnpg.enabled=true"])
    [cnpg_postgres] = rules(cnpg, "caixa-lancamentos", "egress")
    selector = cnpg_postgres["to"][0]["podSelector"]
    assert selector["matchLabels"] == {"cnpg.io/podRole": "instance"}
    assert selector["matchExpressions"][0]["values"] == [
        "caixa-lancamentos-pg",
        "caixa-consolidado-pg",
    ]
    assert "caixa-postgres" in cnpg.names("NetworkPolicy")
