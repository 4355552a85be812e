"""The benchmark's own accounting (bench/load.py): what a window's CPU figure includes."""

from __future__ import annotations

import bench.load as load


def test_one_use_inputs_are_made_outside_the_cpu_window(monkeypatch):
    """A scenario's stock (e.g. authorization codes, each a whole sign-in) is made before the
    meter starts: its server CPU is not charged to the requests the window measures."""
    events: list[str] = []

    class Meter:
        def __init__(self, pids):
            pass

        def start(self):
            events.append("start")

        def stop(self):
            events.append("stop")
            return 1.0

    class Stocked(load.Scenario):
        name = "stocked"

        def stock(self, count):
            events.append("stock")

        def op(self, state):
            return True

    monkeypatch.setattr(load, "CpuMeter", Meter)
    monkeypatch.setattr(load, "peak_rss_kib", lambda pid: 0)
    result = load.measure(Stocked(), lambda rss=False: set(), seconds=0.3, windows=3)
    assert result.errors == 0 and len(result.windows) == 3
    inside = False
    for event in events:
        if event in ("start", "stop"):
            inside = event == "start"
        assert not (inside and event == "stock"), events
    assert events.count("start") == 3 and events.count("stock") == 4  # warm-up + 3 windows
