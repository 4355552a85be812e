"""Debian's Chromium driven by Playwright (the Playwright browser download is blocked here):
one launch for every browser test."""

from __future__ import annotations

from pathlib import Path

import pytest

# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots and traces: kept for a person to look at, never committed.
RESULTS = Path(__file__).resolve().parents[2] / "test-results"


def launch_chromium():
    """A context manager yielding a headless Debian Chromium."""
    from contextlib import contextmanager

    from playwright.sync_api import sync_playwright

    @contextmanager
    def launched():
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield browser
            finally:
                browser.close()

    return launched()


@pytest.fixture
def chromium():
    with launch_chromium() as browser:
        yield browser
