"""Runs h2load against a gRPC method and reads latencies from its per-request log.

h2load's own summary has no percentiles and counts HTTP 200 as success, which
gRPC errors also are; so latencies come from `--log-file` and successes are
counted by the caller from server metrics, by grpc-status.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.stats import LatencySummary, summarize


@dataclass(frozen=True)
class H2loadResult:
    requests_done: int
    http_2xx: int
    seconds: float
    latency: LatencySummary
    raw_summary: str


def available() -> bool:
    return shutil.which("h2load") is not None


def run(
    url: str,
    body: Path,
    *,
    requests: int,
    clients: int,
    streams: int,
    threads: int = 1,
    duration: float | None = None,
    rate_per_second: int | None = None,
    timeout: float = 600,
) -> H2loadResult:
    """`url` is http://host:port/package.Service/Method; bounded by count or duration."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "requests.log"
        args = [
            "h2load",
            "-c",
            str(clients),
            "-m",
            str(streams),
            "-t",
            str(threads),
            "-d",
            str(body),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "--log-file",
            str(log),
        ]
        if duration is not None:
            args += ["-D", f"{duration}"]
        else:
            args += ["-n", str(requests)]
        if rate_per_second is not None:
            # Per client: total offered rate = clients × rate_per_second.
            args += ["--rps", str(rate_per_second)]
        args.append(url)
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed ({done.returncode}): {done.stderr or done.stdout}")
        latencies_us = _read_log(log)
    summary = done.stdout
    finished = re.search(r"finished in ([\d.]+)(m?s)", summary)
    seconds = 0.0
    if finished:
        seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", summary)
    status = re.search(r"status codes: (\d+) 2xx", summary)
    return H2loadResult(
        requests_done=int(counts.group(1)) if counts else len(latencies_us),
        http_2xx=int(status.group(1)) if status else 0,
        seconds=seconds,
        latency=summarize([us / 1000 for us in latencies_us]),
        raw_summary=summary,
    )


def _read_log(path: Path) -> list[float]:
    """Lines: start time (µs), HTTP status, duration (µs)."""
    latencies: list[float] = []
    if not path.exists():
        return latencies
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            latencies.append(float(parts[2]))
    return latencies
