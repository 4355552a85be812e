"""Captcha: the image renderer, single-use challenges, expiry, the adaptive policy, and
failing closed. Storage behaviour runs on both profiles of ``live`` (memory store, Redis)."""

from __future__ import annotations

import io
import random
import threading

import pytest
from PIL import Image

from idp.adapters.captcha_image import FixedCaptchaRenderer, ImageCaptchaRenderer
from idp.adapters.store_redis import RedisStore
from idp.ports import StoreUnavailable
from idp.services.captcha import (
    DEFAULT_ALPHABET,
    CaptchaPolicy,
    CaptchaService,
    CaptchaThrottled,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ADDRESS = "203.0.113.7"
PHONE = "+79991234567"


def service(live, ttl: int = 300) -> tuple[CaptchaService, FixedCaptchaRenderer]:
    renderer = FixedCaptchaRenderer()
    return CaptchaService(live.store, renderer, ttl=ttl), renderer


def closed_store() -> RedisStore:
    return RedisStore("redis://127.0.0.1:1/0", prefix="idp-test-captcha:closed:")


# --- rendering -------------------------------------------------------------------------------


def test_image_renderer_returns_a_png_of_320_by_90():
    png = ImageCaptchaRenderer().render("48273")
    assert png.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (320, 90)


def test_image_renderer_draws_dark_ink_on_a_light_ground():
    """Enough contrast for people: ink at most 60 per channel, ground at least 236."""
    image = Image.open(io.BytesIO(ImageCaptchaRenderer().render("48273"))).convert("L")
    darkest, lightest = image.getextrema()
    assert darkest <= 60 and lightest >= 230
    histogram = image.histogram()
    assert sum(histogram[:80]) > 0.05 * sum(histogram)  # the glyphs are really drawn


def test_image_renderer_with_a_seed_draws_the_same_image_and_without_one_never():
    assert ImageCaptchaRenderer(rng=random.Random(1)).render("48273") == ImageCaptchaRenderer(
        rng=random.Random(1)
    ).render("48273")
    renderer = ImageCaptchaRenderer()
    assert renderer.render("48273") != renderer.render("48273")


def test_image_renderer_is_safe_from_several_threads():
    renderer = ImageCaptchaRenderer()
    results: list[bytes] = []

    def draw() -> None:
        results.append(renderer.render("23456"))

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert all(png.startswith(PNG_MAGIC) for png in results)


def test_twin_records_texts_and_returns_a_png():
    renderer = FixedCaptchaRenderer()
    assert renderer.last is None
    assert renderer.render("AB12").startswith(PNG_MAGIC)
    renderer.render("CD34")
    assert renderer.texts == ["AB12", "CD34"]
    assert renderer.last == "CD34"


def test_alphabet_must_survive_normalisation():
    renderer = FixedCaptchaRenderer()
    with pytest.raises(ValueError):
        CaptchaService(None, renderer, alphabet="abc")  # lower case: answers are upper-cased
    with pytest.raises(ValueError):
        CaptchaService(None, renderer, length=2)
    with pytest.raises(ValueError):
        CaptchaService(None, renderer, per_flow=0)


# --- challenges ------------------------------------------------------------------------------


def test_new_challenge_shows_the_answer_only_in_the_image(live):
    captcha, renderer = service(live)
    challenge_id, png = captcha.new(ADDRESS)
    answer = renderer.last
    assert png.startswith(PNG_MAGIC)
    assert len(answer) == 5 and set(answer) <= set(DEFAULT_ALPHABET)
    stored = live.store.get(f"captcha:{challenge_id}")
    assert stored is not None and answer not in stored and len(stored) == 64  # a SHA-256
    assert answer not in challenge_id


def test_right_answer_passes_once(live):
    captcha, renderer = service(live)
    challenge_id, _ = captcha.new(ADDRESS)
    answer = renderer.last
    assert captcha.check(challenge_id, answer) is True
    assert captcha.check(challenge_id, answer) is False  # single use
    assert live.store.get(f"captcha:{challenge_id}") is None


def test_wrong_answer_burns_the_challenge(live):
    captcha, renderer = service(live)
    challenge_id, _ = captcha.new(ADDRESS)
    answer = renderer.last
    wrong = "".join("2" if ch != "2" else "3" for ch in answer)
    assert captcha.check(challenge_id, wrong) is False
    assert captcha.check(challenge_id, answer) is False


def test_answers_are_compared_after_normalisation(live):
    renderer = FixedCaptchaRenderer()
    captcha = CaptchaService(live.store, renderer, alphabet="ABEKMX23")
    challenge_id, _ = captcha.new(ADDRESS)
    answer = renderer.last
    # Lower case, spaces, full-width forms and Cyrillic look-alikes all count as typed right.
    typed = " ".join(answer.lower().translate(str.maketrans("abekmx2", "аВеКмх２")))
    assert captcha.check(challenge_id, typed) is True


def test_each_challenge_is_independent(live):
    captcha, renderer = service(live)
    first, _ = captcha.new(ADDRESS)
    first_answer = renderer.last
    second, _ = captcha.new(ADDRESS)
    second_answer = renderer.last
    assert first != second
    if first_answer != second_answer:
        assert captcha.check(second, first_answer) is False
    else:
        assert captcha.check(second, second_answer) is True
    assert captcha.check(first, first_answer) is True


@pytest.mark.parametrize("challenge_id", ["", "short", "../../etc", "x" * 200, None, "a b c d e"])
def test_malformed_ids_fail(live, challenge_id):
    captcha, _ = service(live)
    assert captcha.check(challenge_id, "23456") is False


def test_unknown_id_fails(live):
    captcha, _ = service(live)
    assert captcha.check("A" * 24, "23456") is False  # well-formed, never issued


def test_oversized_answer_fails_and_still_burns(live):
    captcha, renderer = service(live)
    challenge_id, _ = captcha.new(ADDRESS)
    assert captcha.check(challenge_id, renderer.last + " " * 100) is False
    assert captcha.check(challenge_id, renderer.last) is False


def test_parallel_checks_of_one_challenge_pass_exactly_once(live):
    captcha, renderer = service(live)
    challenge_id, _ = captcha.new(ADDRESS)
    answer = renderer.last
    barrier = threading.Barrier(16)
    results: list[bool] = []

    def check() -> None:
        barrier.wait(5)
        results.append(captcha.check(challenge_id, answer))

    threads = [threading.Thread(target=check) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [False] * 15 + [True]


def test_challenge_expires(live):
    captcha, renderer = service(live, ttl=120)
    challenge_id, _ = captcha.new(ADDRESS)
    assert 0 < live.store.ttl(f"captcha:{challenge_id}") <= 120
    if live.profile == "embedded":
        live.clock.advance(121)
        assert captcha.check(challenge_id, renderer.last) is False


# --- new images are rationed ---------------------------------------------------------------


def test_new_images_per_flow_are_limited(live):
    captcha = CaptchaService(live.store, FixedCaptchaRenderer(), per_flow=3, window=60)
    for _ in range(3):
        captcha.new(ADDRESS, "flow-a")
    with pytest.raises(CaptchaThrottled) as refused:
        captcha.new(ADDRESS, "flow-a")
    assert 0 < refused.value.retry_after <= 60
    captcha.new(ADDRESS, "flow-b")  # another flow from the same address still gets one


def test_new_images_per_address_are_limited(live):
    captcha = CaptchaService(live.store, FixedCaptchaRenderer(), per_address=4, window=60)
    for flow in "abcd":
        captcha.new(ADDRESS, flow)
    with pytest.raises(CaptchaThrottled):
        captcha.new(ADDRESS, "e")  # a fresh flow does not help
    captcha.new("198.51.100.1", "e")


def test_refused_images_draw_nothing_and_the_window_ends(live):
    renderer = FixedCaptchaRenderer()
    captcha = CaptchaService(live.store, renderer, per_flow=1, window=60)
    captcha.new(ADDRESS, "flow")
    for _ in range(3):
        with pytest.raises(CaptchaThrottled):
            captcha.new(ADDRESS, "flow")
    assert len(renderer.texts) == 1
    if live.profile == "embedded":
        live.clock.advance(61)
        captcha.new(ADDRESS, "flow")
        assert len(renderer.texts) == 2


def test_rate_keys_hold_no_address_in_clear(live):
    captcha = CaptchaService(live.store, FixedCaptchaRenderer())
    captcha.new(ADDRESS, "flow-secret")
    keys = _policy_keys(live, "captcha:new:")
    assert len(keys) == 2
    assert not any(ADDRESS in k or "flow-secret" in k for k in keys)


def test_store_down_propagates_store_unavailable():
    captcha = CaptchaService(closed_store(), FixedCaptchaRenderer())
    with pytest.raises(StoreUnavailable):
        captcha.new(ADDRESS, "flow")
    with pytest.raises(StoreUnavailable):
        captcha.check("A" * 24, "23456")


# --- adaptive policy -------------------------------------------------------------------------


def test_policy_address_threshold(live):
    policy = CaptchaPolicy(live.store, address_limit=3, address_window=600)
    for contact in ("+79990000001", "+79990000002", "+79990000003"):
        assert policy.required(ADDRESS, contact) is False
        policy.note_attempt(ADDRESS, contact)
    # The fourth attempt from the address needs a captcha, whatever contact it names.
    assert policy.required(ADDRESS, "+79990000004") is True
    assert policy.required(ADDRESS) is True
    assert policy.required("198.51.100.1", "+79990000004") is False
    assert 0 < max(live.store.ttl(k) for k in _policy_keys(live, "captcha:addr:")) <= 600


def test_policy_contact_threshold(live):
    policy = CaptchaPolicy(live.store, contact_limit=2, contact_window=3600)
    policy.note_attempt("198.51.100.1", PHONE)
    assert policy.required("198.51.100.2", PHONE) is False
    policy.note_attempt("198.51.100.2", PHONE)
    # Two attempts for one contact from two addresses: the third needs a captcha anywhere.
    assert policy.required("198.51.100.3", PHONE) is True
    assert policy.required("198.51.100.3", "ivan@example.com") is False


def test_policy_windows_expire(live):
    policy = CaptchaPolicy(live.store, address_limit=1, address_window=60)
    policy.note_attempt(ADDRESS, PHONE)
    assert policy.required(ADDRESS) is True
    if live.profile == "embedded":
        live.clock.advance(61)
        assert policy.required(ADDRESS) is False


def test_policy_sms_sent_means_captcha_for_a_day(live):
    policy = CaptchaPolicy(live.store)
    assert policy.always_for_sms(PHONE) is False
    policy.note_sms(PHONE)
    assert policy.always_for_sms(PHONE) is True
    assert policy.always_for_sms("+79990000009") is False
    assert 0 < max(live.store.ttl(k) for k in _policy_keys(live, "captcha:sms:")) <= 24 * 3600
    if live.profile == "embedded":
        live.clock.advance(24 * 3600 + 1)
        assert policy.always_for_sms(PHONE) is False


def test_policy_counts_parallel_attempts(live):
    policy = CaptchaPolicy(live.store, address_limit=3)
    barrier = threading.Barrier(12)

    def attempt() -> None:
        barrier.wait(5)
        policy.note_attempt(ADDRESS, PHONE)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [int(live.store.get(k)) for k in _policy_keys(live, "captcha:addr:")] == [12]


def test_policy_keys_hold_no_contact_in_clear(live):
    policy = CaptchaPolicy(live.store)
    policy.note_attempt(ADDRESS, PHONE)
    policy.note_sms(PHONE)
    keys = _policy_keys(live, "captcha:")
    assert len(keys) == 3
    assert not any(ADDRESS in k or PHONE in k or PHONE[1:] in k for k in keys)


def test_policy_store_down_propagates_store_unavailable():
    policy = CaptchaPolicy(closed_store())
    for call in (
        lambda: policy.required(ADDRESS, PHONE),
        lambda: policy.note_attempt(ADDRESS, PHONE),
        lambda: policy.note_sms(PHONE),
        lambda: policy.always_for_sms(PHONE),
    ):
        with pytest.raises(StoreUnavailable):
            call()


def _policy_keys(live, prefix: str) -> list[str]:
    """The store's keys under ``prefix``, read through each adapter's own storage."""
    store = live.store
    if live.profile == "embedded":
        return [k for k in store._data if k.startswith(prefix)]
    raw = [k[len(store._prefix) :] for k in store._redis.scan_iter(match=f"{store._prefix}*")]
    return [k for k in raw if k.startswith(prefix)]
