"""The load: ``CONCURRENCY`` threads of this process, each with its own keep-alive
connection, over loopback. Its own CPU is not counted; only the servers' is."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import asdict, dataclass, field

from bench.procs import CpuMeter, peak_rss_kib

CONCURRENCY = 8


@dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    rps: float = 0.0
    per_cpu_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    peak_rss_mib: float = 0.0
    windows: list[dict] = field(default_factory=list)
    first_error: str = ""
    limit: str = ""
    ratio: float | None = None
    target: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Scenario:
    """One kind of request. ``state(i)`` makes thread ``i``'s state once; ``stock(n)`` makes
    ``n`` one-use inputs before a window (untimed); ``op(state)`` does one request and returns
    whether it succeeded, or ``None`` when the stock ran out."""

    name = ""
    limit = ""
    target: float | None = None

    def setup(self) -> None:  # noqa: B027 - optional hook
        pass

    def state(self, index: int):
        return None

    def stock(self, count: int) -> None:  # noqa: B027 - optional hook
        pass

    def op(self, state) -> bool | None:
        raise NotImplementedError


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def measure(scenario: Scenario, pids, seconds: float, windows: int) -> Result:
    """Run ``windows`` windows of ``seconds / windows`` each after a short warm-up; report
    the median window's rates and the latency percentiles over all windows."""
    scenario.setup()
    states = [scenario.state(i) for i in range(CONCURRENCY)]
    meter = CpuMeter(pids)
    window = seconds / windows
    result = Result(scenario.name, limit=scenario.limit, target=scenario.target)
    latencies: list[float] = []
    errors: list[str] = []
    rate = 50.0  # a first guess of requests per second, for the stock

    def stock(length: float) -> None:
        # One-use inputs are made before the window's CPU meter starts: their cost (a whole
        # sign-in per authorization code) is not the scenario's.
        scenario.stock(int(rate * length * 1.5) + 2 * CONCURRENCY)

    def run(length: float, record: bool) -> tuple[int, int, float]:
        counts = [[0, 0] for _ in range(CONCURRENCY)]
        lat: list[list[float]] = [[] for _ in range(CONCURRENCY)]
        deadline = time.perf_counter() + length

        def worker(i: int) -> None:
            state = states[i]
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    ok = scenario.op(state)
                except Exception as exc:  # noqa: BLE001 - every failure is an error counted
                    ok = False
                    if len(errors) < 3:
                        errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if ok is None:
                    return
                lat[i].append(time.perf_counter() - began)
                counts[i][0 if ok else 1] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONCURRENCY)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if record:
            for values in lat:
                latencies.extend(values)
        return sum(c[0] for c in counts), sum(c[1] for c in counts), elapsed

    warm = min(1.0, max(0.2, window / 4))
    stock(warm)
    ok, _, elapsed = run(warm, record=False)
    rate = max(rate, ok / elapsed)
    for _ in range(windows):
        stock(window)
        meter.start()
        ok, bad, elapsed = run(window, record=True)
        cpu = meter.stop()
        rate = max(1.0, ok / elapsed)
        result.requests += ok + bad
        result.errors += bad
        result.windows.append(
            {
                "requests": ok + bad,
                "errors": bad,
                "seconds": round(elapsed, 3),
                "cpu_seconds": round(cpu, 3),
                "rps": round((ok + bad) / elapsed, 1),
                "per_cpu_s": round(ok / cpu, 1) if cpu else 0.0,
            }
        )
    result.rps = statistics.median(w["rps"] for w in result.windows)
    result.per_cpu_s = statistics.median(w["per_cpu_s"] for w in result.windows)
    latencies.sort()
    result.p50_ms = round(_percentile(latencies, 0.50) * 1000, 2)
    result.p99_ms = round(_percentile(latencies, 0.99) * 1000, 2)
    result.peak_rss_mib = round(sum(peak_rss_kib(p) for p in pids(rss=True)) / 1024, 1)
    result.first_error = errors[0] if errors else ""
    return result


def measure_cpu_bound(name: str, op, seconds: float, windows: int) -> Result:
    """A primitive in this process, on one thread: operations per CPU-second of this thread."""
    result = Result(name)
    window = seconds / windows
    op()
    for _ in range(windows):
        count, began, cpu0 = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - began < window:
            op()
            count += 1
        cpu = time.thread_time() - cpu0
        elapsed = time.perf_counter() - began
        result.requests += count
        result.windows.append(
            {
                "requests": count,
                "seconds": round(elapsed, 3),
                "cpu_seconds": round(cpu, 3),
                "per_cpu_s": round(count / cpu, 1) if cpu else 0.0,
            }
        )
    result.per_cpu_s = statistics.median(w["per_cpu_s"] for w in result.windows)
    result.rps = result.per_cpu_s
    return result
