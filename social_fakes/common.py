"""What the six fakes share: test identities, the page where a person picks one or denies,
single-use short-lived codes, opaque tokens, and injected failures.

Reference: ../shared/reference/social-providers.md §8 ("common to all fakes"). The fakes are
test and demo infrastructure: the IdP never imports them and never knows it talks to one.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field, replace

from flask import Flask, Response, request
from markupsafe import escape


@dataclass(frozen=True)
class Identity:
    """A test person. ``flags`` switch provider quirks on for this person:
    ``unverified_email`` (Google ``email_verified: false``), ``legacy_issuer`` (Google's
    ``iss: accounts.google.com``), ``no_default_email`` (Yandex: empty ``default_email``,
    the address only in ``emails[]``)."""

    key: str
    subject: str
    given_name: str
    family_name: str
    email: str | None = None
    phone: str | None = None  # E.164; each fake renders it its own way
    flags: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        parts = [f"{self.given_name} {self.family_name}", self.email or "без e-mail"]
        parts.append(self.phone or "без телефона")
        parts += sorted(FLAG_LABELS[f] for f in self.flags)
        return " · ".join(parts)


FLAG_LABELS = {
    "unverified_email": "e-mail не подтверждён",
    "legacy_issuer": "iss без https://",
    "no_default_email": "default_email пуст",
}

IDENTITIES: tuple[Identity, ...] = (
    Identity("ivan", "100001", "Иван", "Петров", "ivan.petrov@example.ru", "+79161234567"),
    Identity("olga", "100002", "Ольга", "Смирнова", None, "+79167654321"),
    Identity("sergey", "100003", "Сергей", "Кузнецов", "s.kuznetsov@example.ru", None),
    Identity("anna", "100004", "Анна", "Соколова", None, None),
    Identity(
        "pavel",
        "100005",
        "Павел",
        "Морозов",
        "pavel.morozov@example.ru",
        "+79031112233",
        frozenset({"unverified_email", "legacy_issuer", "no_default_email"}),
    ),
)


def typed_identity(form) -> Identity | None:
    """A person typed at the fake's page; the same names and e-mail give the same subject,
    so a typed person can come back."""
    given = (form.get("given_name") or "").strip()
    family = (form.get("family_name") or "").strip()
    if not given or not family:
        return None
    email = (form.get("email") or "").strip() or None
    phone = (form.get("phone") or "").strip() or None
    seed = f"{given}|{family}|{email}".encode()
    subject = str(int(hashlib.sha256(seed).hexdigest()[:12], 16))
    return Identity("typed", subject, given, family, email, phone)


@dataclass
class FakeConfig:
    """One fake provider's registered application."""

    client_id: str
    client_secret: str = ""
    redirect_uris: tuple[str, ...] = ()
    application_key: str = ""  # OK
    scope: str = ""  # the scopes the application was registered with (Yandex)
    code_ttl: int = 600
    token_ttl: int = 3600
    identities: tuple[Identity, ...] = IDENTITIES
    # path → HTTP status to answer instead (a provider that is down); tests set it.
    fail: dict[str, int] = field(default_factory=dict)
    app_secret_required: bool = True  # Facebook's "Require App Secret" toggle
    # claims laid over the next ID tokens (Google); tests.
    id_token_claims: dict = field(default_factory=dict)
    # path → JSON fields laid over the fake's answer (a provider answering strangely); tests.
    override: dict[str, dict] = field(default_factory=dict)


class Grants:
    """Single-use codes and opaque tokens, in memory, thread-safe, with expiry."""

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.used: set[str] = set()

    def issue_code(self, **record) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {**record, "expires": time.monotonic() + self.config.code_ttl}
        return code

    def redeem(self, code: str) -> tuple[dict | None, str]:
        """``(record, "")`` once; ``(None, "reused"|"expired"|"unknown")`` otherwise."""
        with self.lock:
            if code in self.used:
                return None, "reused"
            record = self.codes.pop(code, None)
            if record is None:
                return None, "unknown"
            self.used.add(code)
        if record["expires"] < time.monotonic():
            return None, "expired"
        return record, ""

    def put_back(self, code: str, record: dict) -> None:
        """A request refused before the code was spent (bad client) keeps it usable, as
        providers check the client before burning the code."""
        with self.lock:
            self.used.discard(code)
            self.codes[code] = record

    def issue_token(self, **record) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = {**record, "expires": time.monotonic() + self.config.token_ttl}
        return token

    def token(self, token: str | None) -> dict | None:
        with self.lock:
            record = self.tokens.get(token or "")
        if record is None or record["expires"] < time.monotonic():
            return None
        return record


def base_app(name: str, config: FakeConfig) -> Flask:
    """A Flask app with the fake's config and grants, and injected failures answered first."""
    app = Flask(f"social_fakes.{name}")
    app.config["FAKE"] = config
    app.extensions["grants"] = Grants(config)

    @app.before_request
    def injected_failure():
        status = config.fail.get(request.path)
        if status:
            return Response("<h1>Internal Server Error</h1>", status, mimetype="text/html")
        return None

    @app.after_request
    def overridden(response: Response) -> Response:
        fields = config.override.get(request.path)
        if fields and response.is_json:
            body = response.get_json()
            container = body["user"] if isinstance(body.get("user"), dict) else body
            container.update(fields)
            response.set_data(json.dumps(body, ensure_ascii=False))
        return response

    return app


def grants(app: Flask) -> Grants:
    return app.extensions["grants"]


def chosen_identity(config: FakeConfig, form) -> Identity | None:
    key = form.get("identity", "")
    if key == "typed":
        return typed_identity(form)
    return next((i for i in config.identities if i.key == key), None)


def with_flags(identity: Identity, *flags: str) -> Identity:
    return replace(identity, flags=identity.flags | frozenset(flags))


PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>{title} — тестовый вход</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}
label{{display:block;margin:.3em 0}}fieldset{{margin:1em 0}}</style></head>
<body><h1>{title}</h1>
<p>Это <b>тестовый</b> {title}: настоящий провайдер не участвует. Сайт «{client}» просит доступ:
{scope}.</p>
{error}
<form method="post">
<fieldset><legend>Кто входит</legend>
{choices}
<label><input type="radio" name="identity" value="typed"> Другой человек:</label>
<label>Имя <input name="given_name"></label>
<label>Фамилия <input name="family_name"></label>
<label>E-mail <input name="email" type="email"></label>
<label>Телефон <input name="phone" placeholder="+79991234567"></label>
</fieldset>
<button type="submit" name="decision" value="allow">Разрешить</button>
<button type="submit" name="decision" value="deny">Отказать</button>
</form></body></html>"""


def pick_page(title: str, client: str, scope: str, config: FakeConfig, error: str = "") -> str:
    """The person picks or types a test identity, or denies (Russian, like the real pages)."""
    choices = "\n".join(
        f'<label><input type="radio" name="identity" value="{escape(i.key)}"'
        f"{' checked' if n == 0 else ''}> {escape(i.label)}</label>"
        for n, i in enumerate(config.identities)
    )
    return PAGE.format(
        title=escape(title),
        client=escape(client),
        scope=escape(scope or "профиль"),
        choices=choices,
        error=f'<p role="alert"><b>{escape(error)}</b></p>' if error else "",
    )


def error_page(title: str, message: str, status: int = 400) -> Response:
    """A request the provider refuses to redirect back (unknown client, foreign redirect_uri:
    RFC 6749 §4.1.2.1 forbids redirecting those)."""
    body = (
        f'<!doctype html><html lang="ru"><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<h1>{escape(title)}</h1><p>{escape(message)}</p></html>"
    )
    return Response(body, status, mimetype="text/html")


def form_and_query() -> dict[str, str]:
    """Query and form merged (some clients send token parameters in either, VK ID in both)."""
    merged = request.args.to_dict()
    merged.update(request.form.to_dict())
    return merged
