"""«Активные сеансы» name the browser and system, not the raw User-Agent."""

from __future__ import annotations

import pytest

from idp.domain.user_agent import describe

CASES = [
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome, Linux",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
        "Chrome, Linux",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
        "Edge, Windows",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 YaBrowser/24.12.0.0 Safari/537.36",
        "Яндекс Браузер, Windows",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0",
        "Opera, Windows",
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox, Linux",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Safari/605.1.15",
        "Safari, macOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Safari, iOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "Chrome, iOS",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        "Samsung Internet, Android",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.81 Mobile Safari/537.36",
        "Chrome, Android",
    ),
    ("python-requests/2.32.3", ""),
    ("", ""),
    (None, ""),
]


@pytest.mark.parametrize(("header", "expected"), CASES)
def test_describe(header, expected):
    assert str(describe(header)) == expected


def test_a_huge_header_is_cut_not_scanned_whole():
    assert str(describe("x" * 100_000 + " Firefox/1")) == ""
