"""The gRPC limit: a grpcio server whose one method returns an empty message, with the linking
service's thread pool size. ``python -m bench.grpc_empty PORT WORKERS``."""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc

METHOD = "/bench.Empty/Call"


def _identity(data: bytes) -> bytes:
    return data


def _empty(request: bytes, context) -> bytes:
    return b""


def main() -> None:
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    handler = grpc.method_handlers_generic_handler(
        "bench.Empty",
        {"Call": grpc.unary_unary_rpc_method_handler(_empty, _identity, _identity)},
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(0)


if __name__ == "__main__":
    main()
