"""A linking service whose proof check never returns, for the crash test (run with
``python -m tests.linking_service.crash_server``): it writes its port to CRASH_PORT_FILE,
and a proof touches CRASH_MARKER and then blocks until the test SIGKILLs the process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from linking_service.adapters.billing_sql import SqlBillingDirectory
from linking_service.adapters.sql.db import make_engine, make_sessions
from linking_service.config import load_settings
from linking_service.server import build


class BlockingDirectory:
    def __init__(self, inner, marker: Path) -> None:
        self._inner, self._marker = inner, marker

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _block(self) -> None:
        self._marker.touch()
        threading.Event().wait()

    def verify_internet(self, account_number, login, password):
        self._block()

    def verify_phone(self, account_number, phone, pin):
        self._block()


def main() -> None:
    settings = load_settings()
    directory = BlockingDirectory(
        SqlBillingDirectory(make_sessions(make_engine(settings.database_url))),
        Path(os.environ["CRASH_MARKER"]),
    )
    server = build(settings, directory=directory)
    Path(os.environ["CRASH_PORT_FILE"]).write_text(str(server.port))
    threading.Event().wait()


if __name__ == "__main__":
    main()
