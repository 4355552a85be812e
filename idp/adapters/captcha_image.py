"""Captcha images: the real renderer (the ``captcha`` package) and a recording twin.

Both implement :class:`idp.ports.CaptchaRenderer`; the composition root picks one by
configuration. The renderer only draws: the answer is chosen, stored and checked by
:class:`idp.services.captcha.CaptchaService`.
"""

from __future__ import annotations

import base64
import threading

from captcha.image import ImageCaptcha

WIDTH = 200
HEIGHT = 70

# A valid 1x1 white PNG: what the twin returns, so callers and templates see real PNG bytes.
_BLANK_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)


class ImageCaptchaRenderer:
    """Draws distorted text with noise as a PNG of ``WIDTH`` x ``HEIGHT`` pixels, using the
    DroidSansMono font that the ``captcha`` package ships (Apache License 2.0)."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self._captcha = ImageCaptcha(width=width, height=height)
        # FreeType faces are loaded lazily and shared by every call; Pillow does not promise
        # that one face may be used from two threads at once, and a render takes milliseconds.
        self._lock = threading.Lock()

    def render(self, text: str) -> bytes:
        with self._lock:
            return self._captcha.generate(text, format="png").getvalue()


class FixedCaptchaRenderer:
    """The twin: returns the same blank PNG for every text and records the texts it was asked
    to draw, so tests (and the development outbox) can read the answer."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def render(self, text: str) -> bytes:
        with self._lock:
            self.texts.append(text)
        return _BLANK_PNG

    @property
    def last(self) -> str | None:
        """The most recently rendered text, or ``None`` before the first render."""
        with self._lock:
            return self.texts[-1] if self.texts else None
