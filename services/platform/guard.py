"""The check every call passes before its handler runs: a verified token, the
RPC's scope, and the merchants of each request message (see access, auth).

Health and reflection have no rule and no guard: probes carry no token.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from services.platform.access import AccessPolicy, Rule, Workloads
from services.platform.auth import Principal, TokenVerifier, Verifiers, bearer_token
from services.platform.jwks import key_source
from services.platform.settings import ServiceSettings

log = logging.getLogger(__name__)

UNGUARDED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# The caller of the RPC being handled, for what records who did it (the audit trail).
current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "current_principal", default=None
)


class Guard:
    def __init__(self, verifier: Verifiers, policy: AccessPolicy) -> None:
        self._verifier = verifier
        self._policy = policy

    @staticmethod
    def guards(method: str) -> bool:
        return not method.startswith(UNGUARDED_PREFIXES)

    async def admit(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[Rule, Principal]:
        """The caller and the method's rule; Unauthenticated or PermissionDenied."""
        principal = await self._verifier.verify(bearer_token(context.invocation_metadata()))
        rule = self._policy.check_call(method, principal)
        current_principal.set(principal)
        return rule, principal

    def check(self, rule: Rule, principal: Principal, request: Any) -> Any:
        self._policy.check_request(rule, principal, request)
        return request

    async def checked_stream(
        self, rule: Rule, principal: Principal, requests: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        """Each message checked before the handler sees it: a message naming a
        merchant the caller may not act for fails the call, and nothing of it
        is written (an import writes each message as one transaction)."""
        async for request in requests:
            yield self.check(rule, principal, request)


def guard_of(settings: ServiceSettings, rules: Mapping[str, Rule]) -> Guard | None:
    """The service's guard, or None when no JWKS is configured (then every call
    is let through, and start-up says so)."""
    users = key_source(settings.auth_jwks_file, settings.auth_jwks_url)
    if users is None:
        log.warning("no AUTH_JWKS_FILE or AUTH_JWKS_URL: every call is let through")
        return None
    leeway = settings.auth_leeway_seconds
    verifiers = [
        TokenVerifier(
            users,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            leeway_seconds=leeway,
        )
    ]
    workload_issuer = settings.auth_workload_issuer
    if workload_issuer:
        keys = key_source(settings.auth_workload_jwks_file, settings.auth_workload_jwks_url)
        if keys is None:
            raise ValueError("AUTH_WORKLOAD_ISSUER needs AUTH_WORKLOAD_JWKS_FILE or _URL")
        verifiers.append(
            TokenVerifier(
                keys,
                issuer=workload_issuer,
                audience=settings.auth_workload_audience,
                leeway_seconds=leeway,
            )
        )
    workloads = Workloads.parse(settings.auth_workloads, workload_issuer or None)
    return Guard(Verifiers(verifiers), AccessPolicy(rules, workloads))
