"""A browser and operating system named from a ``User-Agent`` header, for «Активные сеансы»
(«Chrome, Linux»). Deliberately simple: the few families people use, checked in an order
that respects how browsers borrow each other's tokens (Edge and Opera say "Chrome", Chrome
says "Safari", Android says "Linux", iOS says "like Mac OS X"). Anything else is ``None``."""

from __future__ import annotations

from dataclasses import dataclass

# (token in the header, name): the first match wins.
BROWSERS = (
    ("YaBrowser/", "Яндекс Браузер"),
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),  # Safari alone says Version/…; checked after every Chrome
    ("MSIE ", "Internet Explorer"),
    ("Trident/", "Internet Explorer"),
)
SYSTEMS = (
    ("Windows Phone", "Windows Phone"),
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("iPod", "iOS"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


@dataclass(frozen=True)
class Device:
    browser: str | None
    system: str | None

    def __str__(self) -> str:
        return ", ".join(part for part in (self.browser, self.system) if part)


def _first(header: str, table) -> str | None:
    return next((name for token, name in table if token in header), None)


def describe(header: str | None) -> Device:
    """``Mozilla/5.0 (X11; Linux x86_64) … Chrome/131.0 Safari/537.36`` → Chrome, Linux."""
    header = (header or "")[:512]
    browser = _first(header, BROWSERS)
    if browser == "Safari" and "Safari/" not in header:
        browser = None
    return Device(browser, _first(header, SYSTEMS))
