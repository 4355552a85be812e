"""What the servers cost, from the kernel's own accounting: /proc/<pid>/stat (utime + stime of
every thread) and /proc/<pid>/status (VmHWM, the peak resident set)."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks of the process (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = {root}, [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class CpuMeter:
    """CPU seconds spent by a changing set of processes between :meth:`start` and :meth:`stop`.

    ``pids`` is called at both ends; a process that appears during the window (a new database
    backend, a restarted worker) counts whole, as it did all its work inside the window; one
    that ends inside the window loses its last share (rare: pools keep connections)."""

    def __init__(self, pids) -> None:
        self._pids = pids
        self._start: dict[int, int] = {}

    def start(self) -> None:
        self._start = {pid: cpu_ticks(pid) for pid in self._pids()}

    def stop(self) -> float:
        ticks = 0
        for pid in set(self._pids()) | set(self._start):
            ticks += max(0, cpu_ticks(pid) - self._start.get(pid, 0))
        return ticks / TICK
