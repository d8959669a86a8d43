"""What each route really gets once inheritance is resolved.

A route class inherits the upstream's `timeout` and `retries` unless it overrides them.
Methods in no class get the upstream timeout and are never retried: nobody has said they
are idempotent. The Envoy renderer, the Istio specs, the linter and `explain` all read
routes from here, so they cannot disagree about inheritance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mesh.durations import Duration
from mesh.methods import grpc_path, service_of, service_prefix
from mesh.policy import NO_RETRIES, MeshPolicy, RateLimit, Retries, UpstreamName

DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class PathMatch:
    """How a route selects requests: one exact path, a regex over paths, or a prefix."""

    kind: str  # "exact" | "regex" | "prefix"
    value: str


@dataclass(frozen=True)
class EffectiveRoute:
    upstream: UpstreamName
    name: str
    methods: tuple[str, ...]  # empty for a service's default route
    services: tuple[str, ...]
    idempotent: bool
    reason: str
    timeout: Duration
    retries: Retries
    retries_inherited: bool
    rate_limit: RateLimit | None
    field_path: str  # where the values set it, for lint findings

    @property
    def is_default(self) -> bool:
        return not self.methods

    @property
    def retried(self) -> bool:
        return self.retries.attempts > 0

    def match(self) -> PathMatch:
        """One Envoy route per class, so a class's rate limit is one shared bucket."""
        if self.is_default:
            return PathMatch("prefix", service_prefix(self.services[0]))
        if len(self.methods) == 1:
            return PathMatch("exact", grpc_path(self.methods[0]))
        # Envoy matches safe_regex against the whole path, so no anchors are needed.
        return PathMatch("regex", "|".join(re.escape(grpc_path(m)) for m in self.methods))

    def only(self, services: set[str]) -> EffectiveRoute | None:
        """This route restricted to some services (the gateway's public ones)."""
        kept = tuple(s for s in self.services if s in services)
        if not kept:
            return None
        if self.is_default:
            return replace(self, services=kept)
        return replace(self, methods=tuple(m for m in self.methods if service_of(m) in kept))


def class_routes(policy: MeshPolicy, upstream_name: UpstreamName) -> list[EffectiveRoute]:
    upstream = policy.upstreams[upstream_name]
    base = f"mesh.upstreams.{upstream_name}"
    routes: list[EffectiveRoute] = []
    # Sorted by name: classes match disjoint methods, and the Helm chart's Go templates
    # can only range over a map in key order, so both sides list routes alike.
    for class_name, route_class in sorted(upstream.route_classes.items()):
        services = tuple(dict.fromkeys(service_of(m) for m in route_class.methods))
        routes.append(
            EffectiveRoute(
                upstream=upstream_name,
                name=class_name,
                methods=route_class.methods,
                services=services,
                idempotent=route_class.idempotent,
                reason=route_class.reason,
                timeout=route_class.timeout or upstream.timeout,
                retries=route_class.retries or upstream.retries,
                retries_inherited=route_class.retries is None,
                rate_limit=route_class.rate_limit,
                field_path=f"{base}.routeClasses.{class_name}",
            )
        )
    return routes


def default_routes(policy: MeshPolicy, upstream_name: UpstreamName) -> list[EffectiveRoute]:
    """One catch-all per gRPC service of the upstream, for methods in no class."""
    upstream = policy.upstreams[upstream_name]
    return [
        EffectiveRoute(
            upstream=upstream_name,
            name=DEFAULT_ROUTE,
            methods=(),
            services=(service,),
            idempotent=False,
            reason="methods in no route class: idempotency unknown, so never retried",
            timeout=upstream.timeout,
            retries=NO_RETRIES,
            retries_inherited=False,
            rate_limit=None,
            field_path=f"mesh.upstreams.{upstream_name}",
        )
        for service in upstream.services
    ]


def upstream_routes(policy: MeshPolicy, upstream_name: UpstreamName) -> list[EffectiveRoute]:
    """Classes first, then the per-service defaults: the order Envoy must match them in."""
    return [*class_routes(policy, upstream_name), *default_routes(policy, upstream_name)]


def gateway_routes(policy: MeshPolicy) -> list[EffectiveRoute]:
    """Routes of the public services only; internal methods fall through to a 404."""
    public = set(policy.gateway.public_services)
    routes: list[EffectiveRoute] = []
    for name in sorted(policy.upstreams):  # key order, as the chart ranges over them
        for route in upstream_routes(policy, name):
            kept = route.only(public)
            if kept is not None:
                routes.append(kept)
    return routes
