"""What the rendered NetworkPolicies let through, per topology.

The evaluator of Kubernetes NetworkPolicy semantics (tooling.chart.network_policy, tested
on its own in test_network_policy_evaluator) runs over the rendered objects, applied in
the release namespace: a connection is allowed when the source's egress and the
destination's ingress both allow it.

The pods are those the chart makes: the Deployments' and Jobs' pod templates (with the
labels the Job controller adds), and for each CloudNativePG Cluster an instance and an
initdb Job pod. What lives elsewhere (DNS, istiod, gateways, databases, the API server)
is modelled as pods in their namespaces, or as IPs taken from the topology's peers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from mesh.chart import Rendered
from mesh.values import load_values
from tests.support.chart import TOPOLOGIES
from tests.support.paths import CHART_DIR
from tooling.chart.network_policy import Endpoint, Network

NAMESPACE = "caixa"  # render_chart's namespace
VALUES: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
GRPC: int = VALUES["ports"]["grpc"]
METRICS: int = VALUES["ports"]["metrics"]

# Each database's clients (the pod names chart_pods gives them).
DATABASE_CLIENTS: dict[str, tuple[str, ...]] = {
    "lancamentos": ("lancamentos", "dispatcher", "migrations-lancamentos"),
    "consolidado": ("consolidado", "migrations-consolidado"),
    "fiscal": ("fiscal", "migrations-fiscal"),
}


KUBE_DNS = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
ISTIOD = Endpoint("istiod", "istio-system", {"app": "istiod"})
INGRESS_GATEWAY = Endpoint("ingress-gateway", "istio-ingress", {"istio": "ingressgateway"})
EAST_WEST_GATEWAY = Endpoint("east-west-gateway", "istio-system", {"istio": "eastwestgateway"})
PROMETHEUS = Endpoint("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
CNPG_OPERATOR = Endpoint(
    "cnpg-operator", "cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"}
)
STRANGER = Endpoint("stranger", "other", {"app": "curl"})
# A pod someone else runs in the release namespace: the chart's default-deny covers it.
INTRUDER = Endpoint("intruder", NAMESPACE, {"app": "debug"})
INTERNET = Endpoint("internet", ip="8.8.8.8")


# --- The topologies ---------------------------------------------------------------------


def peer_endpoints(peers: Iterable[Mapping[str, Any]], name: str) -> list[Endpoint]:
    """One endpoint each peer describes: an address in its block, or a pod it selects."""
    found: list[Endpoint] = []
    for i, peer in enumerate(peers):
        if "ipBlock" in peer:
            network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
            address = network[1] if network.num_addresses > 2 else network[0]
            found.append(Endpoint(f"{name}-{i}", ip=str(address)))
        else:
            selector = peer.get("namespaceSelector", {}).get("matchLabels", {})
            namespace = selector.get("kubernetes.io/metadata.name", NAMESPACE)
            labels = peer.get("podSelector", {}).get("matchLabels", {"app": name})
            found.append(Endpoint(f"{name}-{i}", namespace, labels))
    return found


@dataclass
class Topology:
    name: str
    rendered: Rendered
    values: dict[str, Any]
    network: Network
    pods: dict[str, Endpoint]

    def pod(self, name: str) -> Endpoint:
        return self.pods[name]

    def sidecar_pods(self) -> list[Endpoint]:
        return [p for p in self.pods.values() if p.labels.get("sidecar.istio.io/inject") == "true"]

    def databases(self) -> dict[str, list[Endpoint]]:
        """Each database's servers: the configured peers, or its CloudNativePG instances."""
        shared = peer_endpoints(self.values["networkPolicy"]["postgres"]["peers"], "postgres")
        found: dict[str, list[Endpoint]] = {}
        for database in DATABASE_CLIENTS:
            instance = self.pods.get(f"{database}-pg")
            found[database] = shared + ([instance] if instance else [])
        return found

    def clients(self, database: str) -> list[Endpoint]:
        return [self.pods[n] for n in DATABASE_CLIENTS[database] if n in self.pods]


def chart_pods(rendered: Rendered) -> dict[str, Endpoint]:
    pods: dict[str, Endpoint] = {}
    for deployment in rendered.of_kind("Deployment"):
        name = deployment["metadata"]["name"].removeprefix("caixa-")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        pods[name] = Endpoint(name, NAMESPACE, labels)
    for job in rendered.of_kind("Job"):
        job_name = job["metadata"]["name"]
        # The Job controller adds these to the pod template (manualSelector unset).
        labels = {
            **job["spec"]["template"]["metadata"]["labels"],
            "batch.kubernetes.io/job-name": job_name,
            "job-name": job_name,
        }
        # Named per revision; keyed by what it migrates.
        key = f"migrations-{job['metadata']['labels']['caixa.io/database']}"
        pods[key] = Endpoint(job_name, NAMESPACE, labels)
    for pod in rendered.of_kind("Pod"):  # `helm test`'s
        pods[pod["metadata"]["name"].removeprefix("caixa-")] = Endpoint(
            pod["metadata"]["name"], NAMESPACE, pod["metadata"]["labels"]
        )
    for cluster in rendered.of_kind("Cluster"):
        cluster_name = cluster["metadata"]["name"]
        inherited = cluster["spec"].get("inheritedMetadata", {}).get("labels", {})
        name = cluster_name.removeprefix("caixa-")
        pods[name] = Endpoint(
            name,
            NAMESPACE,
            {**inherited, "cnpg.io/cluster": cluster_name, "cnpg.io/podRole": "instance"},
        )
        # initdb/join Job pods carry the cluster's label, not necessarily podRole.
        pods[f"{name}-initdb"] = Endpoint(
            f"{name}-initdb",
            NAMESPACE,
            {**inherited, "cnpg.io/cluster": cluster_name, "cnpg.io/jobRole": "initdb"},
        )
    return pods


def topology_values(name: str) -> dict[str, Any]:
    """The values Helm renders that topology with: defaults overlaid by its files."""
    return load_values([CHART_DIR / "values.yaml", *TOPOLOGIES[name]])


@pytest.fixture(scope="module")
def topologies(renders: dict[str, Rendered]) -> dict[str, Topology]:
    return {
        name: Topology(
            name,
            rendered,
            topology_values(name),
            Network(rendered.of_kind("NetworkPolicy"), namespace=NAMESPACE),
            chart_pods(rendered),
        )
        for name, rendered in renders.items()
    }


@pytest.fixture
def net(topologies: dict[str, Topology], topology: str) -> Topology:
    return topologies[topology]


def denied(t: Topology, flows: Iterable[tuple[Endpoint, Endpoint, int]]) -> list[str]:
    return [f"{s.name} -> {d.name}:{p}" for s, d, p in flows if t.network.allows(s, d, p)]


def blocked(t: Topology, flows: Iterable[tuple[Endpoint, Endpoint, int]]) -> list[str]:
    return [f"{s.name} -> {d.name}:{p}" for s, d, p in flows if not t.network.allows(s, d, p)]


def test_every_topology_models_its_pods(net: Topology) -> None:
    assert {"consolidado"} <= net.pods.keys()
    if net.values["cnpg"]["enabled"]:
        assert {"lancamentos-pg", "consolidado-pg-initdb", "fiscal-pg"} <= net.pods.keys()


# --- The flows the design needs, per topology -------------------------------------------


def test_every_pod_resolves_names(net: Topology) -> None:
    for protocol in ("UDP", "TCP"):
        assert [
            p.name for p in net.pods.values() if not net.network.allows(p, KUBE_DNS, 53, protocol)
        ] == []
    assert denied(net, [(p, KUBE_DNS, 80) for p in net.pods.values()]) == []


def test_sidecars_reach_istiod_and_are_scraped(net: Topology) -> None:
    sidecars = net.sidecar_pods()
    assert {p.name for p in sidecars} >= {"consolidado"}
    assert blocked(net, [(p, ISTIOD, 15012) for p in sidecars]) == []
    scrapes = [(PROMETHEUS, p, port) for p in sidecars for port in (15020, 15090, METRICS)]
    assert blocked(net, scrapes) == []
    assert denied(net, [(STRANGER, p, 15020) for p in sidecars]) == []
    assert denied(net, [(p, INTERNET, 15012) for p in sidecars]) == []


def test_gateways_reach_the_services_and_nobody_else_does(net: Topology) -> None:
    services = [net.pods[n] for n in ("lancamentos", "consolidado", "fiscal") if n in net.pods]
    gateways = (INGRESS_GATEWAY, EAST_WEST_GATEWAY)
    assert blocked(net, [(g, s, GRPC) for g in gateways for s in services]) == []
    assert denied(net, [(o, s, GRPC) for o in (STRANGER, INTRUDER) for s in services]) == []
    if "dispatcher" in net.pods:
        assert denied(net, [(g, net.pod("dispatcher"), GRPC) for g in gateways]) == []


def test_the_services_call_each_other_as_designed(net: Topology) -> None:
    if "dispatcher" not in net.pods:
        pytest.skip("no write path in this topology")
    lancamentos, dispatcher, consolidado, fiscal = (
        net.pod(n) for n in ("lancamentos", "dispatcher", "consolidado", "fiscal")
    )
    assert (
        blocked(
            net,
            [
                (dispatcher, consolidado, GRPC),
                (consolidado, lancamentos, GRPC),
                # fiscal's outbox books in lancamentos.
                (fiscal, lancamentos, GRPC),
            ],
        )
        == []
    )
    assert (
        denied(
            net,
            [
                (lancamentos, consolidado, GRPC),
                (consolidado, dispatcher, GRPC),
                # fiscal calls lancamentos only, and no workload calls fiscal.
                (fiscal, consolidado, GRPC),
                (lancamentos, fiscal, GRPC),
                (consolidado, fiscal, GRPC),
                (dispatcher, fiscal, GRPC),
            ],
        )
        == []
    )


def test_consolidado_alone_reaches_redis(net: Topology) -> None:
    redis = peer_endpoints(net.values["networkPolicy"]["redis"]["peers"], "redis")
    assert redis, "no Redis peer"
    # Redis lives outside the release namespace, under nobody's default-deny but its own.
    assert all(r.namespace != NAMESPACE for r in redis)
    assert blocked(net, [(net.pod("consolidado"), r, 6379) for r in redis]) == []
    others = [p for n, p in net.pods.items() if n != "consolidado"]
    assert denied(net, [(p, r, 6379) for p in others for r in redis]) == []


def test_each_database_is_reached_by_its_clients_only(net: Topology) -> None:
    databases = net.databases()
    port = VALUES["networkPolicy"]["postgres"]["port"]
    for database, servers in databases.items():
        clients = net.clients(database)
        if not clients:
            continue
        assert servers, f"{database}: no server"
        assert blocked(net, [(c, s, port) for c in clients for s in servers]) == []
        # Where the two databases are different servers, neither's clients reach the other.
        others = [s for d, ss in databases.items() if d != database for s in ss if s not in servers]
        assert denied(net, [(c, s, port) for c in clients for s in others]) == []
    servers = [s for ss in databases.values() for s in ss]
    # The default-deny keeps other pods of the namespace away; the chart's own database
    # pods (CloudNativePG) refuse other namespaces too.
    strangers = [(INTRUDER, s, port) for s in servers]
    strangers += [(STRANGER, s, port) for s in servers if s.namespace == NAMESPACE]
    assert denied(net, strangers) == []


def test_sidecars_reach_the_remote_east_west_gateways(net: Topology) -> None:
    remote = peer_endpoints(net.values["networkPolicy"]["eastWestPeers"], "remote-east-west")
    if net.values["multicluster"]["exposeServices"]:
        assert remote, "exposeServices without east-west peers"
        flows = [(p, r, 15443) for p in net.sidecar_pods() for r in remote]
        assert blocked(net, flows) == []
        # Pods without a sidecar do not speak the mesh's mTLS.
        jobs = [p for p in net.pods.values() if p not in net.sidecar_pods()]
        assert denied(net, [(p, r, 15443) for p in jobs for r in remote]) == []
    assert denied(net, [(p, INTERNET, 15443) for p in net.sidecar_pods()]) == []


def test_cloudnative_pg_pods_reach_what_they_need(net: Topology) -> None:
    cnpg = net.values["cnpg"]
    if not cnpg["enabled"]:
        pytest.skip("no CloudNativePG in this topology")
    api = peer_endpoints(cnpg["apiServerPeers"], "api-server")
    store = peer_endpoints(cnpg["objectStorePeers"], "object-store")
    assert api and store
    clusters = {n: p for n, p in net.pods.items() if "cnpg.io/cluster" in p.labels}
    assert len(clusters) == 2 * len(cnpg["databases"])
    needed = [(p, a, port) for p in clusters.values() for a in api for port in (443, 6443)]
    needed += [(p, s, port) for p in clusters.values() for s in store for port in (443, 9000)]
    for pod in clusters.values():
        own = net.pod(pod.labels["cnpg.io/cluster"].removeprefix("caixa-"))
        # Replication, and the join Job's base backup, within the pod's own cluster.
        needed += [(pod, own, 5432), (CNPG_OPERATOR, pod, 8000), (CNPG_OPERATOR, pod, 5432)]
        needed.append((PROMETHEUS, pod, 9187))
    assert blocked(net, needed) == []
    instances = [net.pod(f"{database}-pg") for database in DATABASE_CLIENTS]
    # No cluster replicates to, or is reached from, another one.
    crossed = [(a, b, 5432) for a in instances for b in instances if a is not b]
    assert denied(net, crossed) == []
    lancamentos = net.pod("lancamentos-pg")
    assert denied(net, [(STRANGER, lancamentos, 8000), (lancamentos, INTERNET, 443)]) == []
    # Only the database pods call the API server.
    assert denied(net, [(p, a, 6443) for p in net.sidecar_pods() for a in api]) == []


def test_the_reviewed_onprem_flows(topologies: dict[str, Topology]) -> None:
    """The flows the review named, spelled out for the on-prem topology."""
    t = topologies["onprem"]
    pods = t.pods
    flows = [
        (pods["consolidado"], pods["lancamentos-pg"], 5432, False),
        (pods["dispatcher"], pods["lancamentos-pg"], 5432, True),
        (pods["migrations-lancamentos"], pods["lancamentos-pg"], 5432, True),
        (pods["migrations-consolidado"], pods["consolidado-pg"], 5432, True),
        (pods["migrations-lancamentos"], pods["consolidado-pg"], 5432, False),
        (pods["lancamentos"], pods["consolidado-pg"], 5432, False),
        (pods["lancamentos-pg-initdb"], pods["lancamentos-pg"], 5432, True),
        # fiscal's database is its own and its migrations', nobody else's.
        (pods["fiscal"], pods["fiscal-pg"], 5432, True),
        (pods["migrations-fiscal"], pods["fiscal-pg"], 5432, True),
        (pods["fiscal"], pods["lancamentos-pg"], 5432, False),
        (pods["fiscal"], pods["consolidado-pg"], 5432, False),
        (pods["lancamentos"], pods["fiscal-pg"], 5432, False),
        (pods["dispatcher"], pods["fiscal-pg"], 5432, False),
        (pods["consolidado"], pods["fiscal-pg"], 5432, False),
        (pods["migrations-lancamentos"], pods["fiscal-pg"], 5432, False),
        (pods["migrations-fiscal"], pods["lancamentos-pg"], 5432, False),
    ]
    assert [
        (s.name, d.name, expected)
        for s, d, port, expected in flows
        if t.network.allows(s, d, port) is not expected
    ] == []


def test_helm_test_reaches_the_two_services_and_nothing_else(net: Topology) -> None:
    tester = net.pod("helm-test")
    services = [net.pods[n] for n in ("lancamentos", "consolidado") if n in net.pods]
    assert services, net.pods.keys()
    assert blocked(net, [(tester, s, GRPC) for s in services]) == []
    assert blocked(net, [(tester, ISTIOD, 15012), (tester, KUBE_DNS, 53)]) == []
    databases = [d for found in net.databases().values() for d in found]
    # `helm test` reads lancamentos and consolidado; it has no business with the others.
    others = [
        INTERNET,
        *databases,
        *(p for n, p in net.pods.items() if n in ("dispatcher", "fiscal")),
    ]
    assert denied(net, [(tester, o, port) for o in others for port in (GRPC, 5432, 443)]) == []
