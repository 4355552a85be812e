"""Captcha images: the real renderer (solid characters among outlined decoys) and a recording
twin.

Both implement :class:`idp.ports.CaptchaRenderer`; the composition root picks one by
configuration. The renderer only draws: the answer is chosen, stored and checked by
:class:`idp.services.captcha.CaptchaService`.

Why decoys. A distorted string alone is read by off-the-shelf OCR models: the ``captcha``
package's images were read two times in three by an untrained ``ddddocr``. Such models read
every character they see, left to right. Here the answer's characters are drawn *solid* and
three or four decoy characters of the same alphabet, colour, fonts and size are drawn
*outlined* between them; the page asks people to type only the solid ones. Grey-scaling or
thresholding cannot separate them (same ink), and the outline is as thick as a solid stroke, so
erosion or dilation removes or keeps both alike. A model that reads all characters perfectly
and then guesses which are decoys succeeds once in C(8, 3) = 56 or C(9, 4) = 126.
``tests/idp/test_captcha_ocr.py`` measures this against ``ddddocr``. Shape, not colour, tells
the decoys apart, so the image works for people who do not see colours.
"""

from __future__ import annotations

import base64
import io
import math
import random
import threading
from pathlib import Path

import captcha
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

WIDTH = 320
HEIGHT = 90
# The answer's alphabet (see idp.services.captcha.DEFAULT_ALPHABET): decoys come from it too,
# so a reader cannot drop them as characters the answer never holds.
DECOY_ALPHABET = "23456789"

# Two fonts that ship inside dependencies (no system fonts needed): DroidSansMono from the
# ``captcha`` package (Apache License 2.0) and Pillow's built-in Aileron (CC0).
_DROID = Path(captcha.__file__).parent / "data" / "DroidSansMono.ttf"
_SOLID_BOLDEN = 1  # extra stroke (px) around solid glyphs: a stroke of about 7 px
_OUTLINE_GROW = 9  # dilation window (px) that turns a glyph into its outline: rings ~4 px
_PAD = 10
# Degrees. More turns a 7 into a 1, which people would then type.
MAX_TILT = 15

# A valid 1x1 white PNG: what the twin returns, so callers and templates see real PNG bytes.
_BLANK_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)


class ImageCaptchaRenderer:
    """Draws ``text`` as solid characters with outlined decoys interleaved, on a light
    background, as a PNG of ``width`` x ``height`` pixels.

    Each character gets a random font of two, size and rotation; the line wanders up and down,
    two thin arcs cross it and the whole is bent by a gentle wave. ``rng`` defaults to the
    operating system's generator; tests pass a seeded one to draw the same images every run.
    """

    def __init__(
        self,
        width: int = WIDTH,
        height: int = HEIGHT,
        decoys: tuple[int, int] = (4, 5),
        alphabet: str = DECOY_ALPHABET,
        rng: random.Random | None = None,
    ) -> None:
        self.width, self.height = width, height
        self._decoys = decoys
        self._alphabet = alphabet
        self._rng = rng or random.SystemRandom()
        self._fonts: dict[tuple[int, int], ImageFont.FreeTypeFont] = {}
        # FreeType faces are shared by every call; Pillow does not promise that one face may
        # be used from two threads at once, and a render takes milliseconds.
        self._lock = threading.Lock()

    def render(self, text: str) -> bytes:
        with self._lock:
            return self._render(text)

    # --- drawing ---------------------------------------------------------------------------

    def _font(self, which: int, size: int) -> ImageFont.FreeTypeFont:
        key = (which, size)
        if key not in self._fonts:
            self._fonts[key] = (
                ImageFont.truetype(str(_DROID), size) if which else ImageFont.load_default(size)
            )
        return self._fonts[key]

    def _glyph(self, char: str, outlined: bool) -> Image.Image:
        """An ``L`` mask of one rotated character: solid, or its outline (a ring as thick as
        a solid stroke around a hollow the shape of the plain glyph)."""
        rng = self._rng
        font = self._font(rng.randrange(2), rng.randint(38, 44) - (2 if outlined else 0))
        left, top, right, bottom = font.getbbox(char, stroke_width=_SOLID_BOLDEN)
        mask = Image.new("L", (right - left + 2 * _PAD, bottom - top + 2 * _PAD), 0)
        ImageDraw.Draw(mask).text(
            (_PAD - left, _PAD - top),
            char,
            font=font,
            fill=255,
            stroke_width=_SOLID_BOLDEN,
            stroke_fill=255,
        )
        if outlined:
            mask = ImageChops.subtract(mask.filter(ImageFilter.MaxFilter(_OUTLINE_GROW)), mask)
        return mask.rotate(
            rng.uniform(-MAX_TILT, MAX_TILT), resample=Image.Resampling.BICUBIC, expand=True
        )

    def _render(self, text: str) -> bytes:
        rng, width, height = self._rng, self.width, self.height
        items = [(char, False) for char in text]
        for _ in range(rng.randint(*self._decoys)):
            items.insert(rng.randint(0, len(items)), (rng.choice(self._alphabet), True))
        glyphs = [self._glyph(char, outlined) for char, outlined in items]

        ink = Image.new("L", (width, height), 0)
        # Spread the glyphs over the width; they touch or overlap a little when crowded.
        overlap = (sum(g.width for g in glyphs) - (width - 8)) / max(1, len(glyphs) - 1)
        x = 4.0
        for glyph in glyphs:
            y = (height - glyph.height) // 2 + rng.randint(-8, 8)
            ink.paste(255, (int(x), y), glyph)
            x += glyph.width - overlap
        draw = ImageDraw.Draw(ink)
        for _ in range(2):
            x0, y0 = rng.randint(-40, 20), rng.randint(10, height - 10)
            box = (
                x0,
                y0 - rng.randint(30, 60),
                x0 + rng.randint(width, width + 80),
                y0 + rng.randint(30, 60),
            )
            draw.arc(box, rng.randint(180, 220), rng.randint(320, 360), fill=255, width=2)

        # A vertical wave, two columns at a time.
        amplitude, period, phase = rng.uniform(2, 4), rng.uniform(50, 90), rng.uniform(0, 6.3)
        bent = Image.new("L", (width, height), 0)
        for column in range(0, width, 2):
            shift = round(amplitude * math.sin(column / period * 2 * math.pi + phase))
            bent.paste(ink.crop((column, 0, column + 2, height)), (column, shift))

        background = tuple(rng.randint(236, 255) for _ in range(3))
        colour = tuple(rng.randint(0, 60) for _ in range(3))
        image = Image.new("RGB", (width, height), background)
        image.paste(colour, (0, 0, width, height), bent)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False)
        return out.getvalue()


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
