"""CPU time from /proc: of given processes, and of the whole machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, already counted in user
    return (total - idle) / _TICK, total / _TICK


@dataclass
class CpuWindow:
    """CPU used by each group of processes, and by the machine, between
    construction and `end()`; a group none of whose processes is visible in
    /proc (e.g. a remote database's) reports None."""

    groups: dict[str, list[int]]

    def __post_init__(self) -> None:
        self._start = {g: [process_seconds(p) for p in pids] for g, pids in self.groups.items()}
        self._visible = {
            g: any(Path(f"/proc/{p}").exists() for p in pids) for g, pids in self.groups.items()
        }
        self._machine = machine_seconds()

    def end(self, wall_seconds: float) -> dict[str, object]:
        busy0, total0 = self._machine
        busy1, total1 = machine_seconds()
        found: dict[str, object] = {
            "machine_busy_pct": round(100 * (busy1 - busy0) / (total1 - total0), 1)
            if total1 > total0
            else None
        }
        for group, pids in self.groups.items():
            used = [process_seconds(p) - s for p, s in zip(pids, self._start[group], strict=True)]
            found[f"{group}_cores"] = (
                [round(u / wall_seconds, 2) for u in used]
                if self._visible[group] and wall_seconds
                else None
            )
        return found
