"""``python -m bench [--seconds N] [--out FILE] [--only NAME...]`` runs every scenario and limit;
``python -m bench compare A.json B.json`` sets two runs side by side."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench.load import Result, measure, measure_cpu_bound
from bench.stack import ROOT, Stack


def machine() -> dict:
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return ""

    try:
        commit = subprocess.run(  # noqa: S603 - git, fixed arguments
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        commit = ""
    workers = os.environ.get("IDP_WORKERS") or str(os.cpu_count() * 2)
    server = "granian wsgi" if os.environ.get("BENCH_SERVER") == "granian" else "gunicorn gthread"
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory": first("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "commit": commit,
        "server": f"{server} {workers}x{os.environ.get('IDP_THREADS', '4')}",
        "concurrency": 8,
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def _row(r: dict) -> str:
    ratio = "" if r.get("ratio") is None else f"{r['ratio']:.2f}"
    target = "" if r.get("target") is None else f"≥ {r['target']}"
    return (
        f"| {r['name']} | {r['requests']} | {r['errors']} | {r['rps']:.0f} | "
        f"{r['per_cpu_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
        f"{r['peak_rss_mib']:.0f} | {r.get('limit', '')} | {ratio} | {target} |"
    )


def table(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"{m['cpus']} × {m['cpu']}, {m['memory']}, Linux {m['kernel']}, Python {m['python']}, "
        f"{m['server']}, concurrency {m['concurrency']}, load {m['loadavg']}, {m['when']}, "
        f"commit {m['commit']}",
        "",
        "| scenario | requests | errors | req/s | req/CPU-s | p50 ms | p99 ms | peak MiB "
        "| limit | ratio | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(r) for r in report["scenarios"]]
    lines += ["", "| limit | ops/CPU-s | p50 ms | p99 ms | where |", "|---|---|---|---|---|"]
    for r in report["limits"]:
        served = r["p50_ms"] > 0  # the primitives run in this process, with no latency to show
        where = "server, concurrency 8" if served else "in-process, one thread"
        latency = f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f}" if served else "– | –"
        lines.append(f"| {r['name']} | {r['per_cpu_s']:.0f} | {latency} | {where} |")
    return "\n".join(lines)


def run(seconds: float, only: list[str]) -> dict:
    from bench import scenarios as sc

    windows = max(1, min(5, int(seconds)))
    stack = Stack()
    report: dict = {"machine": machine(), "seconds": seconds, "windows": windows}
    try:
        began = time.monotonic()
        stack.up()
        fx = sc.Fixtures(stack)
        print(f"  servers up in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        system = ("idp", "linking", "linking-cold", "redis")

        def system_pids(rss: bool = False) -> set[int]:
            if rss:
                return stack.pids_of("idp")
            return stack.pids_of(*system) | stack.pg_backends()

        limits: dict[str, Result] = {}
        for name, op in __import__("bench.limits", fromlist=["primitives"]).primitives().items():
            limits[name] = measure_cpu_bound(name, op, seconds, windows)
        hello = sc.Get("hello world", stack.hello_url + "/")
        limits["hello world"] = measure(
            hello, lambda rss=False: stack.pids_of("hello"), seconds, windows
        )
        limits["empty grpc call"] = measure(
            sc.EmptyGrpc(stack.empty_grpc_target),
            lambda rss=False: stack.pids_of("grpc-empty"),
            seconds,
            windows,
        )
        jwks = stack.idp_url + "/jwks.json"
        discovery = stack.idp_url + "/.well-known/openid-configuration"
        every = [
            sc.SignIn(fx),
            sc.CodeExchange(fx),
            sc.Refresh(fx),
            sc.ClientCredentials(fx),
            sc.UserInfo(fx),
            sc.Introspection(fx),
            sc.Get("discovery", discovery, "hello world", 0.8),
            sc.Get("JWKS", jwks, "hello world", 0.8),
            sc.LinkingCall(fx, stack.linking_target, cold=False),
            sc.LinkingCall(fx, stack.linking_cold_target, cold=True),
        ]
        results = []
        for scenario in every:
            if only and not any(o.lower() in scenario.name.lower() for o in only):
                continue
            result = measure(scenario, system_pids, seconds, windows)
            limit = limits.get(result.limit)
            if limit and limit.per_cpu_s:
                result.ratio = round(result.per_cpu_s / limit.per_cpu_s, 3)
            results.append(result)
            print(
                f"  {result.name}: {result.per_cpu_s:.0f}/CPU-s, {result.errors} errors",
                file=sys.stderr,
                flush=True,
            )
        report["scenarios"] = [r.as_dict() for r in results]
        report["limits"] = [r.as_dict() for r in limits.values()]
        report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    except BaseException:
        for server in stack.servers.values():
            print(f"--- {server.name}\n{server.tail(15)}", file=sys.stderr)
        raise
    finally:
        stack.down()
    return report


def compare(a: dict, b: dict) -> str:
    lines = [
        f"A: {a['machine']['commit']} {a['machine']['server']} {a['machine']['when']}   "
        f"B: {b['machine']['commit']} {b['machine']['server']} {b['machine']['when']}",
        "",
        "| scenario | A req/CPU-s | B req/CPU-s | B/A | A p50 ms | B p50 ms | A ratio | B ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    before = {r["name"]: r for r in a["scenarios"] + a["limits"]}
    for r in b["scenarios"] + b["limits"]:
        old = before.get(r["name"])
        if old is None:
            continue
        change = f"{r['per_cpu_s'] / old['per_cpu_s']:.2f}" if old["per_cpu_s"] else ""
        lines.append(
            f"| {r['name']} | {old['per_cpu_s']:.0f} | {r['per_cpu_s']:.0f} | {change} | "
            f"{old['p50_ms']:.1f} | {r['p50_ms']:.1f} | {old.get('ratio') or ''} | "
            f"{r.get('ratio') or ''} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    cmp_ = sub.add_parser("compare", help="two JSON results side by side")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("BENCH_SECONDS") or 15),
        help="per scenario, split into up to 5 windows (BENCH_SECONDS)",
    )
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument("--only", nargs="*", default=[], help="scenarios whose name has this")
    args = parser.parse_args(argv)
    if args.command == "compare":
        print(compare(json.loads(args.a.read_text()), json.loads(args.b.read_text())))
        return 0
    report = run(args.seconds, args.only)
    print(table(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        print(f"\nJSON: {args.out}")
    errors = sum(r["errors"] for r in report["scenarios"] + report["limits"])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
