"""Image captcha («Введите код с картинки») and the adaptive policy that decides when to ask.

The seed allows a captcha "for security"; our choice is to show it only after repeated
attempts from one address or for one contact, and always before a second SMS to a number
within a day (SMS pumping). A challenge is checked server-side and once: an anti-automation
control of OWASP ASVS 4.0.3 V2.2.1, and one of the rate-limiting techniques that NIST SP 800-63B
§5.2.2 lists beside throttling.

Store layout (values are strings; every key expires):

* ``captcha:<id>`` — SHA-256 of the challenge id and the normalised answer, never the answer;
* ``captcha:addr:<h>``, ``captcha:contact:<h>`` — attempt counters (``h`` = SHA-256 prefix, so
  the store holds no address, phone or e-mail in clear);
* ``captcha:sms:<h>`` — an SMS went to this number;
* ``captcha:new:addr:<h>``, ``captcha:new:flow:<h>`` — images drawn in the current minute for
  one client address and for one flow (a page's session): a new image costs a bot nothing
  but our CPU, so it is rationed like any other attempt.

Any store error propagates as :class:`idp.ports.StoreUnavailable`: callers answer 503 rather
than skip the captcha (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

from idp.domain.errors import Throttled
from idp.ports import CaptchaRenderer, EphemeralStore

# Digits only: the same keys on Russian and Latin keyboard layouts, and 0/1 are left out
# because they read as O/I/l once distorted.
DEFAULT_ALPHABET = "23456789"
# Cyrillic letters a user may type for the Latin ones they look like, on a Russian layout.
_HOMOGLYPHS = str.maketrans("АВЕКМНОРСТУХ", "ABEKMHOPCTYX")
_CHALLENGE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_MAX_ANSWER = 64
# New images per minute. A person who mistypes or asks for another picture needs a handful;
# one address may be a carrier's NAT shared by many people, so its allowance is larger.
NEW_PER_FLOW = 6
NEW_PER_ADDRESS = 30
NEW_WINDOW = 60


class CaptchaThrottled(Throttled):
    """Too many new images for one flow or address; ``retry_after`` in seconds."""

    code = "captcha_throttled"


def normalize_answer(answer: str) -> str:
    """Fold what a person may type differently: width (NFKC), case, spaces, look-alike
    Cyrillic capitals."""
    folded = unicodedata.normalize("NFKC", answer).upper().translate(_HOMOGLYPHS)
    return "".join(folded.split())


def _digest(challenge_id: str, answer: str) -> str:
    return hashlib.sha256(f"{challenge_id}:{answer}".encode()).hexdigest()


def _key_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class CaptchaService:
    """Issues single-use image challenges, at most ``per_flow`` per flow and ``per_address``
    per client address in ``window`` seconds, and checks answers."""

    def __init__(
        self,
        store: EphemeralStore,
        renderer: CaptchaRenderer,
        ttl: int = 300,
        length: int = 5,
        alphabet: str = DEFAULT_ALPHABET,
        per_flow: int = NEW_PER_FLOW,
        per_address: int = NEW_PER_ADDRESS,
        window: int = NEW_WINDOW,
    ) -> None:
        if len(set(alphabet)) < 2 or normalize_answer(alphabet) != alphabet:
            # Characters the normalisation changes could never be answered correctly.
            raise ValueError("captcha alphabet must be distinct upper-case, width-normal symbols")
        if not 4 <= length <= 12 or ttl <= 0:
            raise ValueError("captcha length must be 4-12 and ttl positive")
        if min(per_flow, per_address, window) <= 0:
            raise ValueError("captcha image limits and window must be positive")
        self._store = store
        self._limits = ((per_address, "addr"), (per_flow, "flow"))
        self._window = window
        self._renderer = renderer
        self._alphabet = alphabet
        self.ttl = ttl
        self.length = length

    def new(self, address: str, flow: str | None = None) -> tuple[str, bytes]:
        """A fresh challenge: ``(challenge_id, png_bytes)``; the answer lives only in the
        image. The id goes in the form; it names the stored digest and nothing else.

        Raises :class:`CaptchaThrottled` when ``address`` or ``flow`` (any stable name of the
        person's flow, e.g. a session's) has had its images for this window; nothing is drawn
        then. Every call counts, refused ones too, so hammering does not reopen the window.
        """
        self._ration(address, flow)
        text = "".join(secrets.choice(self._alphabet) for _ in range(self.length))
        challenge_id = secrets.token_urlsafe(18)
        png = self._renderer.render(text)
        self._store.set(f"captcha:{challenge_id}", _digest(challenge_id, text), self.ttl)
        return challenge_id, png

    def _ration(self, address: str, flow: str | None) -> None:
        wait = 0
        for (limit, kind), value in zip(self._limits, (address, flow), strict=True):
            if value:
                key = f"captcha:new:{kind}:{_key_hash(value)}"
                if self._store.incr(key, self._window) > limit:
                    wait = max(wait, self._store.ttl(key), 1)
        if wait:
            raise CaptchaThrottled(wait)

    def check(self, challenge_id: str, answer: str) -> bool:
        """True once for the right answer. The challenge is consumed by the first check,
        right or wrong, so each image allows exactly one guess."""
        if not isinstance(challenge_id, str) or not _CHALLENGE_ID.fullmatch(challenge_id):
            return False
        stored = self._store.take(f"captcha:{challenge_id}")
        if stored is None or not isinstance(answer, str) or len(answer) > _MAX_ANSWER:
            return False
        given = _digest(challenge_id, normalize_answer(answer))
        return hmac.compare_digest(stored.encode(), given.encode())


class CaptchaPolicy:
    """When to demand a captcha.

    ``required`` is true once ``address_limit`` attempts came from one client address within
    ``address_window`` seconds, or ``contact_limit`` attempts named one contact within
    ``contact_window``. ``always_for_sms`` is true for ``sms_window`` seconds after an SMS
    went to a number. Callers combine them, e.g. for a phone contact::

        policy.required(ip, phone) or policy.always_for_sms(phone)

    and call ``note_attempt`` for every attempt (before checking it, so parallel requests
    all count) and ``note_sms`` after each SMS sent.
    """

    def __init__(
        self,
        store: EphemeralStore,
        address_limit: int = 3,
        address_window: int = 600,
        contact_limit: int = 2,
        contact_window: int = 3600,
        sms_window: int = 24 * 3600,
    ) -> None:
        self._store = store
        self._address = (address_limit, address_window)
        self._contact = (contact_limit, contact_window)
        self._sms_window = sms_window

    @staticmethod
    def _keys(address: str, contact_key: str | None) -> list[str]:
        keys = [f"captcha:addr:{_key_hash(address)}"]
        if contact_key:
            keys.append(f"captcha:contact:{_key_hash(contact_key)}")
        return keys

    def required(self, address: str, contact_key: str | None = None) -> bool:
        """True when this address or contact has used up its captcha-free attempts."""
        limits = (self._address[0], self._contact[0])
        return any(
            int(self._store.get(key) or 0) >= limit
            for key, limit in zip(self._keys(address, contact_key), limits, strict=False)
        )

    def note_attempt(self, address: str, contact_key: str | None = None) -> None:
        """Count one attempt for the address and the contact (atomic increments)."""
        windows = (self._address[1], self._contact[1])
        for key, window in zip(self._keys(address, contact_key), windows, strict=False):
            self._store.incr(key, window)

    def note_sms(self, phone: str) -> None:
        """Remember that an SMS went to ``phone`` (E.164): the next request needs a captcha."""
        self._store.set(f"captcha:sms:{_key_hash(phone)}", "1", self._sms_window)

    def always_for_sms(self, phone: str) -> bool:
        """True when an SMS went to ``phone`` within the last ``sms_window`` seconds."""
        return self._store.get(f"captcha:sms:{_key_hash(phone)}") is not None
