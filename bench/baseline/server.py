"""Runs the baseline for the bench: its database, one uvicorn worker, and one
Envoy in front of it (so the mesh's share of Caixa's cost is measured, not
argued), on free loopback ports."""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from tooling.devstack.envoy import start_envoy, write_config
from tooling.devstack.infra import create_database, drop_database
from tooling.devstack.processes import LOOPBACK, ServerProcess, free_port

Row = tuple[str, str, str, int, date]  # merchant_id, request_id, kind, amount_cents, value_date


@dataclass
class Baseline:
    admin_url: str
    workdir: Path
    run_id: str
    database_url: str = ""
    port: int = 0  # uvicorn's
    envoy_port: int = 0  # the Envoy in front
    server: ServerProcess | None = None
    envoy: ServerProcess | None = None
    _database: str = ""
    _envoy_admin: int = field(default=0, repr=False)

    def start(self) -> None:
        self._database = f"bench_baseline_{self.run_id}"
        self.database_url = create_database(self.admin_url, self._database)
        self.port = free_port()
        self.server = ServerProcess(
            "baseline",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.baseline.app:app",
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            log_path=self.workdir / "baseline.log",
            env={**os.environ, "BASELINE_DATABASE_URL": self.database_url},
            cwd=Path(__file__).resolve().parents[2],
        )
        self.server.wait_ready(self._answers, timeout=30)
        self.envoy_port, self._envoy_admin = free_port(), free_port()
        config = write_config(
            self.workdir / "baseline-envoy.json",
            front_envoy(self.envoy_port, self._envoy_admin, self.port),
        )
        self.envoy = start_envoy(
            "baseline-envoy", config, self._envoy_admin, log_path=self.workdir / "envoy.log"
        )

    def _answers(self) -> bool:
        url = f"http://{LOOPBACK}:{self.port}/v1/merchants/probe/daily-balances/2025-01-01"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def envoy_url(self) -> str:
        return f"http://{LOOPBACK}:{self.envoy_port}"

    def pids(self) -> dict[str, list[int]]:
        return {
            "baseline": [self.server.pid] if self.server else [],
            "baseline_envoy": [self.envoy.pid] if self.envoy else [],
        }

    def seed(self, rows: Sequence[Row]) -> None:
        """The same entries Caixa imports, written in one COPY (not measured)."""

        async def copy() -> None:
            conn = await asyncpg.connect(self.database_url)
            try:
                await conn.copy_records_to_table(
                    "entries",
                    records=list(rows),
                    columns=["merchant_id", "request_id", "kind", "amount_cents", "value_date"],
                )
                await conn.execute("ANALYZE entries")
            finally:
                await conn.close()

        asyncio.run(copy())

    def count(self) -> int:
        async def go() -> int:
            conn = await asyncpg.connect(self.database_url)
            try:
                return int(await conn.fetchval("SELECT count(*) FROM entries"))
            finally:
                await conn.close()

        return asyncio.run(go())

    def stop(self) -> None:
        for process in (self.envoy, self.server):
            if process is not None:
                process.stop(grace=10)
        if self._database:
            drop_database(self.admin_url, self._database)


def front_envoy(listen_port: int, admin_port: int, upstream_port: int) -> dict[str, Any]:
    """One plain HTTP proxy hop: a listener, the router, the baseline as its cluster."""
    return {
        "admin": {"address": _address(admin_port)},
        "static_resources": {
            "listeners": [
                {
                    "name": "baseline",
                    "address": _address(listen_port),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters."
                                        "network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "baseline",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "baseline",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "route": {"cluster": "baseline"},
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions."
                                                    "filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "baseline",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "baseline",
                        "endpoints": [
                            {"lb_endpoints": [{"endpoint": {"address": _address(upstream_port)}}]}
                        ],
                    },
                }
            ],
        },
    }


def _address(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": LOOPBACK, "port_value": port}}
