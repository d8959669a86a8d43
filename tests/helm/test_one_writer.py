"""One writer for the ledger, always (issue 11 §1).

Both sites hold every database (CloudNativePG's distributed topology); both releases
name the same primary, and only that site's release may render a write path. Every
combination the values allow, and every step of the failover runbook (mesh.failover)
applied to the two releases in turn, renders at most one writer: one site whose
databases accept writes and whose write path (lancamentos, the dispatcher, fiscal) runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helm_python.errors import HelmError

from mesh import failover
from mesh.chart import Rendered
from tests.support.chart import TOPOLOGIES, render_chart
from tests.support.paths import CHART_DIR

SITES = ("onprem", "cloud")
RELEASE = failover.Release("caixa", "caixa", CHART_DIR)
# What writes: to the ledger (lancamentos, its outbox) and to fiscal's database.
WRITE_PATH = {"caixa-lancamentos", "caixa-dispatcher", "caixa-fiscal"}


def _site(name: str) -> failover.Site:
    return failover.Site(name, f"ctx-{name}", TOPOLOGIES[name])


def _writes(rendered: Rendered) -> tuple[bool, bool]:
    """(its databases accept writes, it runs a write path)."""
    primaries = set()
    for cluster in rendered.of_kind("Cluster"):
        replica = cluster["spec"]["replica"]
        fenced = "cnpg.io/fencedInstances" in cluster["metadata"].get("annotations", {})
        primaries.add(replica["primary"] == replica["self"] and not fenced)
    assert len(primaries) == 1, "the databases of one site disagree on who writes"
    runs = bool(WRITE_PATH & rendered.names("Deployment"))
    return primaries.pop(), runs


def _writers(sets: dict[str, list[str]], down: tuple[str, ...] = ()) -> list[str]:
    writers = []
    for site in SITES:
        if site in down:  # powered off: whatever its release says, it writes nothing
            continue
        databases, runs = _writes(render_chart(TOPOLOGIES[site], sets[site]))
        # A write path only where the databases take writes, and the reverse.
        assert databases == runs, site
        if databases:
            writers.append(site)
    return writers


def test_the_shipped_sites_name_one_primary_and_one_writer() -> None:
    values = {s: yaml.safe_load(TOPOLOGIES[s][0].read_text(encoding="utf-8")) for s in SITES}
    replication = [values[s]["cnpg"]["replication"] for s in SITES]
    assert [r["primary"] for r in replication] == ["onprem", "onprem"]
    assert [r["clusters"] for r in replication] == [["onprem", "cloud"]] * 2
    assert _writers({"onprem": [], "cloud": []}) == ["onprem"]


def test_the_cloud_holds_a_replica_of_every_database() -> None:
    rendered = render_chart(TOPOLOGIES["cloud"])
    databases = {c["spec"]["bootstrap"]["recovery"]["source"] for c in rendered.of_kind("Cluster")}
    assert databases == {f"caixa-{d}-pg-onprem" for d in ("lancamentos", "consolidado", "fiscal")}
    for database in ("lancamentos", "consolidado", "fiscal"):
        spec = rendered.get("Cluster", f"caixa-{database}-pg")["spec"]
        source = f"caixa-{database}-pg-onprem"
        assert spec["replica"] == {
            "self": f"caixa-{database}-pg-cloud",
            "primary": source,
            "source": source,
        }
        assert spec["bootstrap"] == {"recovery": {"source": source}}
        stores = {e["name"]: e["plugin"]["parameters"] for e in spec["externalClusters"]}
        assert stores[source]["serverName"] == source
        # It archives under its own name, ready to be the primary.
        [plugin] = spec["plugins"]
        assert plugin["parameters"]["serverName"] == f"caixa-{database}-pg-cloud"


@pytest.mark.parametrize("primary", SITES)
def test_either_site_as_primary_gives_exactly_one_writer(primary: str) -> None:
    sets = {
        site: [f"{k}={v}" for k, v in failover.writer_sets(primary, writes=site == primary).items()]
        for site in SITES
    }
    if primary == "cloud":
        sets["onprem"].append("cnpg.replication.bootstrap=recovery")
    assert _writers(sets) == [primary]


@pytest.mark.parametrize(
    ("site", "sets", "message"),
    [
        # A write path where the databases refuse writes: the old split brain.
        ("cloud", ["cluster.writePath=true", "lancamentos.enabled=true"], "not the writer"),
        # fiscal writes too: on a replica site it would be a second writer of its database.
        ("cloud", ["fiscal.enabled=true"], "run only in the cluster with the PostgreSQL primary"),
        ("cloud", ["cluster.writePath=true", "fiscal.enabled=true"], "not the writer"),
        ("onprem", ["cnpg.replication.primary=cloud"], "not the writer"),
        ("onprem", ["cnpg.fenced=true"], "it is fenced"),
        # The primary's site with no write path: no ledger anywhere.
        (
            "cloud",
            ["cnpg.replication.primary=cloud"],
            "cluster.writePath is false",
        ),
        ("onprem", ["cnpg.replication.primary=dr-site"], "is not in cnpg.replication.clusters"),
        ("cloud", ["cnpg.replication.promotionTokens.lancamentos=abc"], "promotes the site"),
        ("onprem", ["cnpg.replication.clusters={onprem}"], "needs at least two"),
    ],
)
def test_a_second_writer_or_none_fails_to_render(site: str, sets: list[str], message: str) -> None:
    with pytest.raises(HelmError, match=message):
        render_chart(TOPOLOGIES[site], sets)


def test_a_promotion_takes_a_token_for_every_database() -> None:
    """A switchover promotes each database only once it has replayed up to its own
    demotion token: fiscal's as well as the ledger's."""
    databases = ("lancamentos", "consolidado", "fiscal")
    sets = [f"{k}={v}" for k, v in failover.writer_sets("cloud", writes=True).items()]
    sets += [f"cnpg.replication.promotionTokens.{d}=token-{d}" for d in databases]
    rendered = render_chart(TOPOLOGIES["cloud"], sets)
    tokens = {
        c["metadata"]["name"]: c["spec"]["replica"]["promotionToken"]
        for c in rendered.of_kind("Cluster")
    }
    assert tokens == {f"caixa-{d}-pg": f"token-{d}" for d in databases}


def _sets_of(argv: tuple[str, ...]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]


def _context_site(argv: tuple[str, ...]) -> str:
    context = argv[argv.index("--kube-context") + 1]
    return context.removeprefix("ctx-")


@pytest.mark.parametrize("mode", ["switchover", "failover", "failover-out-of-band"])
def test_every_runbook_step_leaves_at_most_one_writer(mode: str) -> None:
    old, new = _site("onprem"), _site("cloud")
    if mode == "switchover":
        plan = failover.switchover(RELEASE, old, new)
    else:
        reachable = mode == "failover"
        plan = failover.failover(
            RELEASE,
            old,
            new,
            old_reachable=reachable,
            fenced_out_of_band="" if reachable else "on-prem PostgreSQL nodes powered off",
        )
    state: dict[str, list[str]] = {"onprem": [], "cloud": []}
    down = ("onprem",) if mode == "failover-out-of-band" else ()
    tokens = {database: f"token-{database}" for database in failover.DATABASES}
    writers_seen = []
    for step in plan.steps:
        if step.argv[:2] != ("helm", "upgrade"):
            continue
        site = _context_site(step.argv)
        sets = _sets_of(step.argv)
        for name, token in tokens.items():
            sets = [s.replace(f"<{name}>", token) for s in sets]
        state[site] = sets
        writers_seen.append(_writers(state, down))
    if down:
        # It comes back only as the runbook's last step says: a replica of the new primary.
        assert any("fenced out of band" in line.lower() for line in plan.after)
        state["onprem"] = [
            *(f"{k}={v}" for k, v in failover.writer_sets("cloud", writes=False).items()),
            "cnpg.replication.bootstrap=recovery",
        ]
        writers_seen.append(_writers(state))
    # Fence (or demote) first, then promote: never two, and the new site writes at the end.
    assert all(len(w) <= 1 for w in writers_seen), writers_seen
    assert writers_seen[-1] == ["cloud"]
    if mode != "failover-out-of-band":
        assert writers_seen[0] == [], "the old site must stop writing before the promotion"
    [promote] = [s for s in plan.steps if s.why.startswith("promote")]
    tokens_given = [s for s in _sets_of(promote.argv) if "promotionTokens" in s]
    assert bool(tokens_given) == (mode == "switchover")


def test_failover_refuses_to_promote_while_the_old_site_may_still_write() -> None:
    with pytest.raises(failover.Refused, match="fenced-out-of-band"):
        failover.failover(RELEASE, _site("onprem"), _site("cloud"), old_reachable=False)
    with pytest.raises(failover.Refused):
        failover.failover(
            RELEASE,
            _site("onprem"),
            _site("cloud"),
            old_reachable=False,
            fenced_out_of_band="   ",
        )


def _shell(why: str, script: str, *, capture: str = "", within: float = 0.0) -> failover.Step:
    return failover.Step(why, (sys.executable, "-c", script), capture=capture, within=within)


def test_run_waits_for_each_token_fills_it_in_and_stops_at_a_failure(tmp_path: Path) -> None:
    appears, ran_after = tmp_path / "token", tmp_path / "ran-after-failure"
    plan = failover.Plan(
        [
            # A wait: prints nothing until the token exists (written by the next poll).
            _shell(
                "wait",
                f"import pathlib; p = pathlib.Path({str(appears)!r})\n"
                "if p.exists(): print(p.read_text())\n"
                "else: p.write_text('tok-1')",
                capture="lancamentos",
                within=10.0,
            ),
            failover.Step(
                "use",
                (
                    sys.executable,
                    "-c",
                    "import sys; assert sys.argv[1] == 'tok-1'",
                    "<lancamentos>",
                ),
            ),
            _shell("fail", "raise SystemExit(3)"),
            _shell("never", f"open({str(ran_after)!r}, 'w')"),
        ]
    )
    said: list[str] = []
    with pytest.raises(subprocess.CalledProcessError) as failed:
        failover.run(plan, say=said.append, poll_every=0.05)
    assert failed.value.returncode == 3
    assert not ran_after.exists()
    assert any("tok-1" in line for line in said)


def test_a_wait_that_never_answers_times_out() -> None:
    plan = failover.Plan([_shell("wait", "pass", capture="x", within=0.3)])
    with pytest.raises(TimeoutError, match="nothing after"):
        failover.run(plan, say=lambda _: None, poll_every=0.05)


@pytest.mark.parametrize(
    "sets",
    [
        ["cnpg.backup.endpointURL=http://minio.storage.svc:9000"],
        ["cnpg.backup.endpointURL=http://minio:9000"],
        ["cnpg.objectStorePeers[0].namespaceSelector.matchLabels.name=minio"],
        ["cnpg.backup.endpointURL=http://minio.storage:9000"],  # service.namespace
        ["cnpg.backup.endpointURL=http://10.20.0.5:9000"],  # a private address: this site
    ],
)
def test_backups_inside_the_cluster_fail_to_render(sets: list[str]) -> None:
    with pytest.raises(HelmError, match="would die with it"):
        render_chart(TOPOLOGIES["onprem"], sets)
    # A throwaway cluster may say so.
    render_chart(TOPOLOGIES["onprem"], [*sets, "cnpg.backup.offSite=false"])


def test_the_readme_states_the_rpo_of_losing_the_primary_site() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
    timeout = values["cnpg"]["archiveTimeout"]
    rendered = render_chart(TOPOLOGIES["onprem"])
    for cluster in rendered.of_kind("Cluster"):
        assert cluster["spec"]["postgresql"]["parameters"]["archive_timeout"] == timeout
    readme = (CHART_DIR / "README.md").read_text(encoding="utf-8")
    assert f"RPO of a total loss of on-prem is up to {timeout}" in readme


def test_every_site_allows_the_primarys_connections() -> None:
    """A hot standby refuses to replay with a lower max_connections than its primary's,
    and any site may become the primary: every site counts the write path."""
    scaled = ["lancamentos.autoscaling.maxReplicas=10"]
    per_site = {
        site: {
            c["metadata"]["name"]: c["spec"]["postgresql"]["parameters"]["max_connections"]
            for c in render_chart(TOPOLOGIES[site], scaled).of_kind("Cluster")
        }
        for site in SITES
    }
    assert per_site["onprem"] == per_site["cloud"]
    assert int(per_site["cloud"]["caixa-lancamentos-pg"]) > 100


def test_names_cloudnative_pg_would_refuse_or_truncate_fail_to_render() -> None:
    with pytest.raises(HelmError, match="longer than CloudNativePG's 50 characters"):
        render_chart(TOPOLOGIES["onprem"], release="a" * 34 + "-caixa")
    long_site = "site-" + "x" * 40
    sets = [
        f"cluster.name={long_site}",
        f"cnpg.replication.clusters={{{long_site},cloud}}",
        f"cnpg.replication.primary={long_site}",
    ]
    with pytest.raises(HelmError, match="longer than 63 characters"):
        render_chart(TOPOLOGIES["onprem"], sets)


def test_the_runbook_waits_for_what_it_claims() -> None:
    plan = failover.failover(RELEASE, _site("onprem"), _site("cloud"), old_reachable=True)
    fence_waits = [s for s in plan.steps if "--for=condition=Ready=false" in s.argv]
    assert len(fence_waits) == len(failover.DATABASES)
    writes = [s for s in plan.steps if "SELECT pg_is_in_recovery()" in s.argv]
    assert [s.expect for s in writes] == ["f"] * len(failover.DATABASES)
    # Every helm step says which primary it moves to, as the chart's live check demands.
    for step in plan.steps:
        if step.argv[:2] == ("helm", "upgrade"):
            assert "cnpg.replication.movePrimary=cloud" in _sets_of(step.argv)


def test_a_wait_insists_on_what_it_expects(tmp_path: Path) -> None:
    polls = tmp_path / "polls"
    script = (
        f"import pathlib; p = pathlib.Path({str(polls)!r}); n = len(p.read_text()) "
        "if p.exists() else 0; p.write_text('x' * (n + 1)); print('t' if n < 2 else 'f')"
    )
    plan = failover.Plan(
        [
            failover.Step(
                "wait", (sys.executable, "-c", script), capture="writes", within=10.0, expect="f"
            )
        ]
    )
    assert failover.run(plan, say=lambda _: None, poll_every=0.05) == {"writes": "f"}
    assert len(polls.read_text()) == 3
