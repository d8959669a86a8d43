"""Settings every service reads from the environment; services subclass them."""

from __future__ import annotations

import sys
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound="ServiceSettings")


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
    auth_jwks_file: str | None = Field(
        None, description="JWKS the users' tokens are verified with (or AUTH_JWKS_URL)"
    )
    auth_jwks_url: str | None = Field(
        None, description="the issuer's JWKS URL; neither it nor the file: no authentication"
    )
    auth_workload_issuer: str | None = Field(
        None, description="a second issuer, of workload tokens (Kubernetes service accounts)"
    )
    auth_workload_audience: str = "caixa-workloads"
    auth_workload_jwks_file: str | None = None
    auth_workload_jwks_url: str | None = None
    auth_issuer: str = Field("caixa-dev", description="the `iss` every token must carry")
    auth_audience: str = Field("caixa", description="the `aud` every token must carry")
    auth_leeway_seconds: float = Field(
        30.0, ge=0, le=300, description="clock skew allowed on a token's times"
    )
    workload_token_file: str | None = Field(
        None, description="this workload's own token, sent on its calls to other services"
    )
    # OpenTelemetry's own variable names, so a cluster's existing OTel settings apply.
    otel_exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP/gRPC collector, e.g. http://collector:4317; unset: no tracing"
    )
    otel_traces_sampler_arg: float = Field(
        0.1, ge=0, le=1, description="share of the traces that start here which are kept"
    )
    otel_service_name: str | None = Field(None, description="defaults to the service's name")
    auth_workloads: str = Field(
        "", description="service identities and their scopes: `subject=scope ...;subject=...`"
    )

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # Checked here, not at the first create: every create would fail while
        # health said SERVING. tzdata (a dependency) supplies the zones.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone, e.g. America/Sao_Paulo"
            ) from None
        return value

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _endpoint_has_scheme(cls, value: str | None) -> str | None:
        # Without one the exporter would guess TLS or plaintext; say which.
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} needs a scheme: http://host:4317 (plaintext) or https://")
        return value or None

    @model_validator(mode="after")
    def _workloads_have_their_own_issuer(self) -> ServiceSettings:
        # Else a user's token named after a workload would get its grants.
        if self.auth_workloads and not self.auth_workload_issuer:
            raise ValueError("AUTH_WORKLOADS needs AUTH_WORKLOAD_ISSUER, the workloads' issuer")
        if self.auth_workload_issuer and self.auth_workload_issuer == self.auth_issuer:
            raise ValueError("AUTH_WORKLOAD_ISSUER must differ from AUTH_ISSUER")
        return self

    def require(self, name: str) -> str:
        """The value of setting `name`, or MissingSetting naming its variable."""
        value = getattr(self, name)
        if not value:
            raise MissingSetting(f"{name.upper()} is not set; this command needs it")
        return str(value)


def settings_or_exit(cls: type[S], prog: str) -> S:
    """`cls` read from the environment; on a bad value, one line per variable on
    stderr and exit status 2, as for a usage error."""
    try:
        return cls()
    except ValidationError as error:
        for problem in error.errors():
            variable = "_".join(str(part) for part in problem["loc"]).upper()
            print(f"{prog}: {variable}: {problem['msg']}", file=sys.stderr)
        sys.exit(2)
