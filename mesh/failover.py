"""The failover runbook as a script (helm/caixa/README.md, "One writer").

Moving the ledger's primary between sites always fences the old one first:

- **switchover** (both sites up): demote the old primary's databases (CloudNativePG
  writes each one's status.demotionToken) and drop its write path, then promote the new
  site with those tokens, so that it waits until it has replayed everything.
- **failover** (the old site lost or cut off): fence the old site (PostgreSQL stopped on
  every instance, its write path gone) if its API server answers; if it does not, the
  promotion is refused until the operator says how the site was fenced out of band
  (powered off, its network cut). Only then is the new site promoted, without a token:
  what it had not yet replayed is lost (the RPO, cnpg.archiveTimeout).

A plan is a list of helm/kubectl commands; `run` executes them in order, waits where a
step waits, and stops at the first failure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DATABASES = ("lancamentos", "consolidado", "fiscal")
CLUSTER_KIND = "cluster.postgresql.cnpg.io"


class Refused(Exception):
    """The runbook will not go on: the old site is not known to be fenced."""


@dataclass(frozen=True)
class Site:
    name: str  # its cluster.name
    context: str  # its kubectl/helm context
    values: tuple[Path, ...]  # its release's values files


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    chart: Path


@dataclass(frozen=True)
class Step:
    why: str
    argv: tuple[str, ...]
    # A wait: rerun argv until it prints something, kept as captures[capture]; a later
    # argument's "<capture>" is replaced by it.
    capture: str = ""
    within: float = 0.0
    # A wait may also insist on what it prints (e.g. "f" for pg_is_in_recovery()).
    expect: str = ""


@dataclass
class Plan:
    steps: list[Step]
    after: list[str] = field(default_factory=list)  # what the operator does next, by hand


def _helm(release: Release, site: Site, sets: dict[str, str]) -> tuple[str, ...]:
    argv = ["helm", "upgrade", release.name, str(release.chart), "-n", release.namespace]
    argv += ["--kube-context", site.context]
    for path in site.values:
        argv += ["-f", str(path)]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    return (*argv, "--wait", "--timeout", "15m")


def _cluster_name(release: Release, database: str) -> str:
    prefix = release.name if "caixa" in release.name else f"{release.name}-caixa"
    return f"{prefix}-{database}-pg"


def _kubectl(release: Release, site: Site, *args: str) -> tuple[str, ...]:
    return ("kubectl", "--context", site.context, "-n", release.namespace, *args)


def writer_sets(primary: str, *, writes: bool, fenced: bool = False) -> dict[str, str]:
    """The values that make a site the writer or not; the chart refuses any mix. The
    chart also refuses to move the primary away from what the live Clusters say unless
    movePrimary names the new one: only the runbook sets it."""
    flag = "true" if writes else "false"
    return {
        "cnpg.replication.primary": primary,
        "cnpg.replication.movePrimary": primary,
        "cnpg.fenced": "true" if fenced else "false",
        "cluster.writePath": flag,
        "lancamentos.enabled": flag,
        "dispatcher.enabled": flag,
        "fiscal.enabled": flag,
    }


def _promote(release: Release, new: Site, tokens: bool, databases: Sequence[str]) -> Step:
    sets = writer_sets(new.name, writes=True)
    if tokens:
        for database in databases:
            sets[f"cnpg.replication.promotionTokens.{database}"] = f"<{database}>"
    why = f"promote {new.name}: its databases take writes"
    if tokens:
        why += " once each has replayed up to its demotion token"
    return Step(why, _helm(release, new, sets))


def _wait_for(
    release: Release, site: Site, database: str, jsonpath: str, *, what: str, within: float
) -> Step:
    """Polls the database's Cluster until `jsonpath` prints; kept as captures[database]
    (the demotion token the promotion needs)."""
    name = _cluster_name(release, database)
    argv = _kubectl(release, site, "get", CLUSTER_KIND, name, "-o", f"jsonpath={jsonpath}")
    return Step(f"wait for {site.name}'s {database} {what}", argv, capture=database, within=within)


def _promoted(release: Release, site: Site, database: str) -> list[Step]:
    """Ready is not enough (a replica cluster is Ready too): wait until its primary
    instance has left recovery, i.e. takes writes."""
    name = _cluster_name(release, database)
    primary = f"{database}-primary"
    where = _kubectl(
        release, site, "get", CLUSTER_KIND, name, "-o", "jsonpath={.status.currentPrimary}"
    )
    query = _kubectl(
        release,
        site,
        "exec",
        f"<{primary}>",
        "-c",
        "postgres",
        "--",
        "psql",
        "-tAc",
        "SELECT pg_is_in_recovery()",
    )
    return [
        Step(
            f"find {site.name}'s {database} primary instance", where, capture=primary, within=900.0
        ),
        Step(
            f"wait until {site.name}'s {database} takes writes",
            query,
            capture=f"{database}-writes",
            within=900.0,
            expect="f",
        ),
    ]


def _fenced(release: Release, site: Site, database: str) -> Step:
    """The annotation alone proves nothing: wait until no instance is ready."""
    selector = f"cnpg.io/cluster={_cluster_name(release, database)}"
    argv = _kubectl(
        release,
        site,
        "wait",
        "pod",
        "-l",
        selector,
        "--for=condition=Ready=false",
        "--timeout=300s",
    )
    return Step(f"wait until {site.name}'s {database} has stopped (fenced)", argv)


def _after(old: Site, new: Site) -> list[str]:
    return [
        f"In BOTH sites' values files set cnpg.replication.primary: {new.name}; "
        f"cluster.writePath, lancamentos.enabled, dispatcher.enabled and fiscal.enabled true "
        f"in {new.name}'s "
        f"and false in {old.name}'s. Until then a plain `helm upgrade` with the old files "
        "fails: the chart finds the live Clusters naming another primary than the values "
        "and refuses to move it without cnpg.replication.movePrimary.",
        "Reconcile the balances: caixa-consolidado reconcile.",
    ]


def switchover(
    release: Release, old: Site, new: Site, databases: Sequence[str] = DATABASES
) -> Plan:
    steps = [
        Step(
            f"demote {old.name}: its databases refuse writes, its write path goes",
            _helm(release, old, writer_sets(new.name, writes=False)),
        )
    ]
    steps += [
        _wait_for(
            release, old, database, "{.status.demotionToken}", what="demotion token", within=900.0
        )
        for database in databases
    ]
    steps.append(_promote(release, new, True, databases))
    steps += [step for database in databases for step in _promoted(release, new, database)]
    return Plan(steps, _after(old, new))


def failover(
    release: Release,
    old: Site,
    new: Site,
    *,
    old_reachable: bool,
    fenced_out_of_band: str = "",
    databases: Sequence[str] = DATABASES,
) -> Plan:
    if old_reachable:
        fence = writer_sets(new.name, writes=False, fenced=True)
        steps = [
            Step(
                f"fence {old.name}: PostgreSQL stops on every instance, its write path goes",
                _helm(release, old, fence),
            )
        ]
        steps += [_fenced(release, old, database) for database in databases]
    elif not fenced_out_of_band.strip():
        raise Refused(
            f"{old.name}'s API server does not answer, so it cannot be fenced from here, "
            "and promoting now could leave two writers when it comes back. Fence it out of "
            "band first (power off its PostgreSQL nodes, or cut its east-west gateway and "
            "its clients' network), then say how with --fenced-out-of-band"
        )
    else:
        steps = []
    steps.append(_promote(release, new, False, databases))
    steps += [step for database in databases for step in _promoted(release, new, database)]
    after = _after(old, new)
    if not old_reachable:
        after.insert(0, f"Fenced out of band, as stated: {fenced_out_of_band.strip()}")
        after.append(
            f"Before {old.name} comes back, keep it fenced; rejoin it as a replica: set "
            f"cnpg.replication.bootstrap: recovery and primary: {new.name} in its values, "
            "delete its Clusters' volumes (its timeline diverged), and install it again."
        )
    return Plan(steps, after)


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run_process(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def run(
    plan: Plan,
    runner: Runner = _run_process,
    say: Callable[[str], None] = print,
    poll_every: float = 5.0,
) -> dict[str, str]:
    """Runs each step in order; a wait step reruns until it prints. Raises
    CalledProcessError or TimeoutError at the first failure, doing nothing after it."""
    captures: dict[str, str] = {}
    for step in plan.steps:
        argv = list(step.argv)
        for name, value in captures.items():
            argv = [arg.replace(f"<{name}>", value) for arg in argv]
        say(f"# {step.why}\n{' '.join(argv)}")
        deadline = time.monotonic() + step.within
        while True:
            done = runner(argv)
            if done.returncode != 0 and not step.capture:
                raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)
            if not step.capture:
                break
            printed = done.stdout.strip()
            if done.returncode == 0 and printed and (not step.expect or printed == step.expect):
                captures[step.capture] = printed
                break
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{step.why}: nothing after {step.within:.0f} s")
            time.sleep(poll_every)
    for line in plan.after:
        say(f"NEXT: {line}")
    return captures


def old_site_answers(context: str, runner: Runner = _run_process) -> bool:
    done = runner(["kubectl", "--context", context, "version", "--request-timeout=10s"])
    return done.returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="caixa-mesh failover",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("mode", choices=["switchover", "failover"])
    parser.add_argument("--from", dest="old", required=True, metavar="SITE")
    parser.add_argument("--from-context", required=True)
    parser.add_argument("--from-values", action="append", type=Path, required=True)
    parser.add_argument("--to", dest="new", required=True, metavar="SITE")
    parser.add_argument("--to-context", required=True)
    parser.add_argument("--to-values", action="append", type=Path, required=True)
    parser.add_argument("--release", default="caixa")
    parser.add_argument("--namespace", default="caixa")
    parser.add_argument("--chart", type=Path, default=Path("helm/caixa"))
    parser.add_argument("--fenced-out-of-band", default="", metavar="HOW")
    parser.add_argument("--execute", action="store_true", help="run it (default: print it)")
    args = parser.parse_args(argv)
    release = Release(args.release, args.namespace, args.chart)
    old = Site(args.old, args.from_context, tuple(args.from_values))
    new = Site(args.new, args.to_context, tuple(args.to_values))
    try:
        if args.mode == "switchover":
            plan = switchover(release, old, new)
        else:
            plan = failover(
                release,
                old,
                new,
                old_reachable=old_site_answers(old.context),
                fenced_out_of_band=args.fenced_out_of_band,
            )
    except Refused as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 1
    if not args.execute:
        for step in plan.steps:
            print(f"# {step.why}\n{' '.join(step.argv)}")
        for line in plan.after:
            print(f"NEXT: {line}")
        return 0
    try:
        run(plan)
    except (subprocess.CalledProcessError, TimeoutError) as failed:
        print(f"stopped: {failed}", file=sys.stderr)
        return 1
    return 0
