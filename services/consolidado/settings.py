"""Settings of the consolidado service, its cache and its maintenance commands."""

from __future__ import annotations

from pydantic import Field

from services.platform.settings import ServiceSettings


class ConsolidadoSettings(ServiceSettings):
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="the balance cache")
    redis_key_prefix: str = Field(
        "caixa:bal",
        pattern=r"^[A-Za-z0-9:_.-]+$",
        description="namespace of every cache key; lets tests and tenants share a Redis",
    )
    # Short: a dead Redis must cost a read little more than a cache miss.
    redis_timeout_seconds: float = Field(0.25, gt=0, description="socket and connect timeout")
    redis_max_connections: int = Field(64, ge=1, le=10_000, description="per process")
    redis_cooldown_seconds: float = Field(
        1.0, ge=0, description="after a Redis failure, serve from PostgreSQL this long"
    )
    cache_ttl_seconds: int = Field(
        300, ge=1, description="lifetime of a cached balance: the backstop bound on staleness"
    )
    # No default: the chart and the local stack (values-local.yaml) both set it.
    lancamentos_target: str = Field(
        "", description="gRPC target of lancamentos; to serve (reconcile), rebuild, reconcile"
    )
    lancamentos_timeout_seconds: float = Field(
        10.0, gt=0, description="deadline of a SummarizeLancamentos call"
    )
    rebuild_batch_size: int = Field(1000, ge=1, le=10_000)
