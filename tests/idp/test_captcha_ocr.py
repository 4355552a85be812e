"""The image captcha against an off-the-shelf OCR model: ``ddddocr`` from PyPI, untrained on
our images, with the preprocessing a bot would try first.

The production renderer draws 100 images from a fixed seed (the same images every run, so the
bound cannot flicker); an image counts as read when *any* variant of the OCR gives the answer,
which is more than a bot gets (one guess per image). Issue 7 asks for fewer than 1 in 20.
The model also reads the ``captcha`` package's images, the renderer used before: that
baseline shows the harness really reads captchas, so a low score is the renderer's doing.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

import ddddocr
import pytest
from captcha.image import ImageCaptcha
from PIL import Image, ImageFilter, ImageOps

from idp.adapters.captcha_image import ImageCaptchaRenderer
from idp.services.captcha import DEFAULT_ALPHABET

IMAGES = 100
LENGTH = 5
SEED = 20261202
BOUND = IMAGES // 20  # "fewer than 1 in 20"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _gray(image: Image.Image) -> Image.Image:
    return ImageOps.grayscale(image)


# What a bot would do before OCR (the model grey-scales every input itself). Max/Min filters
# on dark ink: erosion thins strokes (and removes thin ones), dilation thickens them.
VARIANTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "raw": lambda image: image,
    "threshold": lambda image: _gray(image).point(lambda p: 255 if p > 128 else 0),
    "erode3": lambda image: _gray(image).filter(ImageFilter.MaxFilter(3)),
    "erode5": lambda image: _gray(image).filter(ImageFilter.MaxFilter(5)),
    "dilate3": lambda image: _gray(image).filter(ImageFilter.MinFilter(3)),
}


@pytest.fixture(scope="module")
def ocr():
    """The model restricted to our alphabet, as a bot that knows it would set it."""
    model = ddddocr.DdddOcr(show_ad=False)
    model.set_ranges(DEFAULT_ALPHABET)
    return model


def _texts(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(DEFAULT_ALPHABET) for _ in range(LENGTH)) for _ in range(count)]


def _subsequence_chance(read: str, answer: str) -> float:
    """The chance that dropping ``len(read) - len(answer)`` characters of ``read`` at random
    leaves ``answer``: what a bot gets that reads every glyph and guesses the decoys."""
    if len(read) < len(answer):
        return 0.0
    # ways[j] = number of ways to pick answer[:j] from the prefix of read seen so far
    ways = [1] + [0] * len(answer)
    for char in read:
        for j in range(len(answer), 0, -1):
            if answer[j - 1] == char:
                ways[j] += ways[j - 1]
    return ways[-1] / math.comb(len(read), len(answer))


def test_ocr_reads_the_old_captcha_package_images(ocr):
    """The baseline: without decoys the model reads most images (79 of 100 when measured;
    the old renderer draws from ``secrets``, so the bound is loose: 20 of 40)."""
    old = ImageCaptcha(width=200, height=70)
    texts = _texts(random.Random(SEED), 40)
    solved = sum(ocr.classification(old.generate(text).getvalue()) == text for text in texts)
    assert solved >= 20, solved


def test_ocr_reads_fewer_than_1_in_20_of_our_images(ocr):
    """Measured (seed above): no variant reads a single image of 100; a bot that reads every
    glyph and drops decoys at random would solve at most 1.7 per variant, 2.0 if it could
    always pick the best variant per image (it cannot know which)."""
    rng = random.Random(SEED)
    renderer = ImageCaptchaRenderer(rng=rng)
    solved = dict.fromkeys(VARIANTS, 0)
    guessed = dict.fromkeys(VARIANTS, 0.0)
    solved_by_any = 0
    guessed_best = 0.0
    for text in _texts(rng, IMAGES):
        image = Image.open(io.BytesIO(renderer.render(text))).convert("RGB")
        readings = {name: ocr.classification(_png(f(image))) for name, f in VARIANTS.items()}
        chances = {name: _subsequence_chance(reading, text) for name, reading in readings.items()}
        for name in VARIANTS:
            solved[name] += readings[name] == text
            guessed[name] += chances[name]
        solved_by_any += text in readings.values()
        guessed_best += max(chances.values())
    assert solved_by_any < BOUND, solved
    assert max(guessed.values()) < BOUND, guessed
    assert guessed_best < BOUND, guessed_best


def test_subsequence_chance():
    assert _subsequence_chance("23456", "23456") == 1.0
    assert _subsequence_chance("2345", "23456") == 0.0
    assert _subsequence_chance("723456", "23456") == pytest.approx(1 / 6)
    assert _subsequence_chance("22222", "2222") == 1.0
    assert _subsequence_chance("98765432", "23456") == 0.0
