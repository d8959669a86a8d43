"""Settings every service reads from the environment; services subclass them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MissingSetting(ValueError):
    """A setting the command needs has no value (it has no default on purpose)."""


class ServiceSettings(BaseSettings):
    """Process-wide settings shared by every Caixa service."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    grpc_host: str = Field("127.0.0.1", description="address the gRPC server binds")
    grpc_port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/postgres",
        description="the service's own PostgreSQL database",
    )
    database_pool_size: int = Field(10, ge=1, le=200)
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Prometheus /metrics port; unset disables, 0 picks one"
    )
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    shutdown_grace_seconds: float = Field(10.0, ge=0, description="in-flight RPC drain time")
    migrate_wait_seconds: float = Field(
        300.0, ge=0, description="how long `migrate` waits for the database to accept connections"
    )
    health_probe_interval_seconds: float = Field(2.0, gt=0)
    business_timezone: str = "America/Sao_Paulo"

    def require(self, name: str) -> str:
        """The value of setting `name`, or MissingSetting naming its variable."""
        value = getattr(self, name)
        if not value:
            raise MissingSetting(f"{name.upper()} is not set; this command needs it")
        return str(value)
