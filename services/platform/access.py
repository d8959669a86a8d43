"""What a verified caller may do: each RPC's scope and the merchants it acts for.

Each service declares one `Rule` per method. A call must carry the rule's scope
and act only for merchants the token names (`"*"`: every merchant); a request
that names no merchant where one may be named (the all-merchant change feed)
needs every merchant. Service-to-service methods take workload identities
only: subjects the deployment grants a scope to (`AUTH_WORKLOADS`), never an
end user's token, whatever scopes it claims.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.domain.errors import PermissionDenied
from services.platform.auth import ALL_MERCHANTS, Principal

Merchants = Callable[[Any], Iterable[str]]


def merchant_named(request: Any) -> Iterable[str]:
    """The request's `merchant_id`. An empty one is left to validation, which
    names the field: no merchant is acted for."""
    return [request.merchant_id] if request.merchant_id else []


def merchant_or_every(request: Any) -> Iterable[str]:
    """The request's `merchant_id`; empty means every merchant (the change feed)."""
    return [request.merchant_id or ALL_MERCHANTS]


@dataclass(frozen=True)
class Rule:
    scope: str
    merchants: Merchants = merchant_named
    workload_only: bool = False  # a service-to-service method


@dataclass(frozen=True)
class Workloads:
    """Workload subjects (SPIFFE ids, Kubernetes service accounts) and the
    scopes the deployment grants each; a workload acts for every merchant.
    With `issuer`, only tokens of that issuer (the cluster's) are workloads: a
    user's identity provider naming a token after a workload gets nothing."""

    grants: Mapping[str, frozenset[str]] = field(default_factory=dict)
    issuer: str | None = None

    @classmethod
    def parse(cls, text: str, issuer: str | None = None) -> Workloads:
        """`subject=scope scope;subject=scope`, as in AUTH_WORKLOADS."""
        grants: dict[str, frozenset[str]] = {}
        for item in filter(None, (part.strip() for part in text.split(";"))):
            subject, sep, scopes = item.partition("=")
            if not sep or not subject.strip() or not scopes.split():
                raise ValueError(f"{item!r} is not subject=scope [scope ...]")
            grants[subject.strip()] = frozenset(scopes.split())
        return cls(grants, issuer)

    def scopes_of(self, principal: Principal) -> frozenset[str]:
        if self.issuer is not None and principal.issuer != self.issuer:
            return frozenset()
        return self.grants.get(principal.subject, frozenset())


class AccessPolicy:
    """The rules of one service's methods, keyed by gRPC path."""

    def __init__(self, rules: Mapping[str, Rule], workloads: Workloads) -> None:
        self._rules = dict(rules)
        self._workloads = workloads

    def rule(self, method: str) -> Rule | None:
        return self._rules.get(method)

    def check_call(self, method: str, principal: Principal) -> Rule:
        """The method's rule, if `principal` holds its scope; PermissionDenied if not.
        A method without a rule is refused: a new RPC is closed until it has one."""
        rule = self._rules.get(method)
        if rule is None:
            raise PermissionDenied(f"{method} has no access rule; nobody may call it")
        workload_scopes = self._workloads.scopes_of(principal)
        scopes = workload_scopes if rule.workload_only else principal.scopes | workload_scopes
        if rule.scope not in scopes:
            who = "a workload granted" if rule.workload_only else "a token with scope"
            raise PermissionDenied(f"{method} needs {who} {rule.scope!r}")
        return rule

    def check_request(self, rule: Rule, principal: Principal, request: Any) -> None:
        """Every merchant the request acts for is one the caller may act for.
        A workload acts for every merchant, but only under the scope it was
        granted: what its token claims besides gives it no merchant."""
        if rule.scope in self._workloads.scopes_of(principal):
            return
        for merchant in rule.merchants(request):
            if merchant == ALL_MERCHANTS and not principal.every_merchant:
                raise PermissionDenied("a request for every merchant needs a token for '*'")
            if not principal.acts_for(merchant):
                raise PermissionDenied(f"the token does not allow merchant {merchant!r}")
