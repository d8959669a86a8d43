"""Settings of an outbox dispatcher, shared by every service that has one."""

from __future__ import annotations

from pydantic import Field

from services.platform.settings import ServiceSettings


class OutboxSettings(ServiceSettings):
    run_dispatcher: bool = Field(True, description="run the outbox dispatcher in-process")
    dispatch_batch_size: int = Field(500, ge=1, le=5000)
    dispatch_linger_seconds: float = Field(
        0.02,
        ge=0,
        description="after a wake-up, let a batch fill this long (fewer, bigger batches)",
    )
    dispatch_poll_seconds: float = Field(1.0, gt=0, description="fallback when no NOTIFY")
    dispatch_timeout_seconds: float = Field(5.0, gt=0, description="deadline of one batch")
    dispatch_backoff_base_seconds: float = Field(0.05, gt=0)
    dispatch_backoff_max_seconds: float = Field(5.0, gt=0)
    outbox_metrics_seconds: float = Field(
        5.0, gt=0, description="how often the outbox backlog and parked gauges are measured"
    )
    dispatch_vacuum_every: int = Field(
        20_000, ge=0, description="VACUUM the outbox after this many deliveries (0: never)"
    )
    dispatch_drain_seconds: float = Field(10.0, ge=0, description="delivery time on SIGTERM")
