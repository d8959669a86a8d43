"""lancamentos under test: its settings, quick to shut down and dispatching nowhere."""

from __future__ import annotations

from services.lancamentos.settings import LancamentosSettings


def lancamentos_settings(database_url: str, **overrides: object) -> LancamentosSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "grpc_port": 0,
        "consolidado_target": "127.0.0.1:1",
        "shutdown_grace_seconds": 1.0,
        "dispatch_drain_seconds": 0.0,
        **overrides,
    }
    return LancamentosSettings.model_validate(values)
