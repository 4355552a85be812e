"""The captcha on the registration page over real HTTP: the first picture comes with its
prompt and no error, a wrong answer gets the error, «Другая картинка» draws a new one, and new
pictures are rationed per flow with a clear message instead of a failure."""

from __future__ import annotations

import re

import requests

from tests.idp.test_registration_flow import step1
from tests.support import csrf_of

PROMPT = "Введите код с картинки"
WRONG = "Неверный код с картинки"
TOO_MANY = "Слишком много новых картинок"
PHONE = "8 (999) 555-77-01"


def captcha_id(html: str) -> str | None:
    found = re.search(r'name="captcha_id" value="([^"]+)"', html)
    return found.group(1) if found else None


def refresh(http: requests.Session, live, page_html: str) -> requests.Response:
    return http.post(
        f"{live.url}/register",
        data={
            "csrf_token": csrf_of(page_html),
            "family_name": "Соколова",
            "contact": PHONE,
            "captcha_refresh": "1",
        },
        allow_redirects=False,
    )


def test_first_picture_has_the_prompt_and_no_error(live):
    # An SMS went to the number: the next registration for it needs a captcha.
    assert step1(requests.Session(), live, PHONE).status_code == 303
    http = requests.Session()
    page = http.get(f"{live.url}/register")
    assert captcha_id(page.text) is None  # nothing asked yet

    first = step1(http, live, PHONE)
    assert first.status_code == 400
    assert captcha_id(first.text) and 'src="data:image/png;base64,' in first.text
    assert PROMPT in first.text
    assert WRONG not in first.text
    assert 'aria-invalid="true"' not in first.text
    assert "Соколова" in first.text  # nothing typed is lost

    wrong = step1(http, live, PHONE, captcha_id=captcha_id(first.text), captcha="ZZZZZ")
    assert wrong.status_code == 400
    assert WRONG in wrong.text
    assert captcha_id(wrong.text) not in (None, captcha_id(first.text))  # a new picture


def test_another_picture_on_request_is_not_a_submission(live):
    http = requests.Session()
    page = http.get(f"{live.url}/register")
    shown = refresh(http, live, page.text)
    assert shown.status_code == 200
    assert captcha_id(shown.text) and PROMPT in shown.text and WRONG not in shown.text
    again = refresh(http, live, shown.text)
    assert captcha_id(again.text) != captcha_id(shown.text)
    assert 'id="captcha-refresh"' in again.text
    assert "Соколова" in again.text
    # Nothing was registered: no SMS went out for the number.
    assert live.services.captcha_policy.always_for_sms("+79995557701") is False


def test_new_pictures_per_flow_are_rationed_with_a_message(live):
    assert step1(requests.Session(), live, PHONE).status_code == 303  # captcha needed now
    http = requests.Session()
    page = http.get(f"{live.url}/register")
    statuses = []
    for _ in range(7):
        response = refresh(http, live, page.text)
        statuses.append(response.status_code)
        page = response
    # Six pictures a minute for one flow; the seventh is refused without a failure.
    assert statuses == [200] * 6 + [429]
    assert TOO_MANY in page.text
    assert captcha_id(page.text) is None
    assert 0 < int(page.headers["Retry-After"]) <= 60
    assert "Соколова" in page.text

    # Submitting the form meanwhile gets the same message, never "wrong code" or a 500.
    submitted = step1(http, live, PHONE)
    assert submitted.status_code == 429
    assert TOO_MANY in submitted.text and WRONG not in submitted.text

    # Another browser (another flow) from the same address still gets a picture.
    other = requests.Session()
    fresh = refresh(other, live, other.get(f"{live.url}/register").text)
    assert fresh.status_code == 200 and captcha_id(fresh.text)


def test_pictures_per_address_follow_the_setting(make_live):
    live = make_live(IDP_CAPTCHA_IMAGES_PER_ADDRESS="2")
    statuses = []
    for _ in range(3):
        http = requests.Session()  # a new flow each time: only the address counts
        statuses.append(refresh(http, live, http.get(f"{live.url}/register").text).status_code)
    assert statuses == [200, 200, 429]


def test_recovery_first_picture_has_the_prompt_and_no_error(live):
    # An SMS went to the number: recovery for it now needs a captcha first.
    assert step1(requests.Session(), live, PHONE).status_code == 303
    http = requests.Session()
    page = http.get(f"{live.url}/recover")
    assert captcha_id(page.text) is None

    def recover(html, **extra):
        data = {"csrf_token": csrf_of(html), "login": PHONE, **extra}
        return http.post(f"{live.url}/recover", data=data, allow_redirects=False)

    first = recover(page.text)
    assert first.status_code == 400
    assert captcha_id(first.text) and PROMPT in first.text
    assert WRONG not in first.text
    assert "555-77-01" in first.text or "5557701" in first.text  # the login is kept

    wrong = recover(first.text, captcha_id=captcha_id(first.text), captcha="ZZZZZ")
    assert wrong.status_code == 400
    assert WRONG in wrong.text
