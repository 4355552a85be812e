"""The cabinet over a real linking service: the IdP's gRPC client (``GrpcLinkingClient``) with
a token minted for the signed-in person, and the main page and attachment wizard over HTTP,
on the demo billing data (``linking_service.billing_demo``)."""

from __future__ import annotations

import re

import jwt
import pytest
import requests

from idp.adapters.linking_grpc import GrpcLinkingClient
from idp.domain import linking as dom
from idp.domain.errors import LinkingFailed
from idp.services.cabinet import Person
from linking_service.billing_demo import load_demo
from tests.linking_service.conftest import CHEAP
from tests.support import PASSWORD, csrf_of, make_user, submit_login

NUMBER = "159000000001"
REGION = "Пермский край"


@pytest.fixture
def cabinet(linking):
    """The IdP talking to the real linking service (demo billing data loaded)."""
    load_demo(linking.sessions, CHEAP)
    client = GrpcLinkingClient(linking.target, lambda: "", timeout=5)
    linking.idp.app.extensions["idp.linking"] = client
    yield linking
    client.close()


def _token(live, sub: str) -> str:
    with live.ctx():
        return live.services.tokens.customer_token(sub, "linking", "urn:elk:linking-service")


def test_the_person_token_is_the_persons_own_and_short(cabinet):
    live = cabinet.idp
    sub, _ = make_user(live)
    claims = jwt.decode(_token(live, sub), options={"verify_signature": False})
    assert claims["sub"] == sub and claims["scope"] == "linking"
    assert claims["aud"] == "urn:elk:linking-service" and claims["iss"] == live.url
    assert claims["exp"] - claims["iat"] <= 60
    assert jwt.get_unverified_header(_token(live, sub))["typ"] == "at+jwt"


def test_the_adapter_walks_the_flow_and_maps_errors(cabinet):
    live = cabinet.idp
    sub, _ = make_user(live)
    client = live.app.extensions["idp.linking"]
    token = _token(live, sub)
    assert client.list_accounts(token) == []
    flow = client.start_attachment(token, "r1", REGION, account_number=NUMBER)
    assert flow.state == dom.CHOOSE_SERVICE
    first = flow.flow_id
    flow = client.choose_service(token, "r2", flow.flow_id, dom.HOME_INTERNET)
    assert flow.state == dom.PROVE and flow.service_type == dom.HOME_INTERNET
    assert client.get_attachment(token, flow.flow_id).state == dom.PROVE
    flow = client.prove_service(
        token, "r3", flow.flow_id, login="ivanova.perm", password="Kv7pT2mq"
    )
    assert flow.state == dom.ATTACHED and flow.account.number == NUMBER
    assert client.get_attachment(token, flow.flow_id).account.number == NUMBER
    [account] = client.list_accounts(token)
    assert account.number == NUMBER and account.region == REGION
    assert set(account.services) == {dom.HOME_INTERNET, dom.HOME_PHONE}
    # the same request id answers the first answer again (no second flow)
    again = client.start_attachment(token, "r1", REGION, account_number=NUMBER)
    assert again.flow_id == first
    with pytest.raises(LinkingFailed) as error:
        client.start_attachment(token, "r1", REGION, account_number="159000000002")
    assert error.value.reason == "REQUEST_ID_REUSED"
    with pytest.raises(LinkingFailed) as error:
        client.get_attachment(token, "no-such-flow")
    assert error.value.reason == "FLOW_NOT_FOUND"
    client.detach_account(token, "r4", NUMBER)
    assert client.list_accounts(token) == []
    with pytest.raises(LinkingFailed) as error:
        client.detach_account(token, "r5", NUMBER)
    assert error.value.reason == "ACCOUNT_NOT_ATTACHED"
    # the IdP's own token is refused for a customer's call
    with live.ctx():
        own = live.services.tokens.service_token("linking:auto", "urn:elk:linking-service")
    with pytest.raises(LinkingFailed) as error:
        client.list_accounts(own)
    assert error.value.reason == "SCOPE_MISSING"


def test_limits_come_with_retry_after(cabinet):
    live = cabinet.idp
    sub, _ = make_user(live)
    with live.ctx():
        cabinet_service = live.services.cabinet
        from idp.services.cabinet import parse_lookup

        lookup = parse_lookup(REGION, "", "", "ivanova.perm", dom.HOME_INTERNET)
        failure = None
        for _ in range(8):
            flow = cabinet_service.start(Person(sub), lookup)
            try:
                flow = cabinet_service.prove(
                    Person(sub), flow, lookup, login="ivanova.perm", password="x"
                )
            except LinkingFailed as exc:
                failure = exc
                break
            assert flow.state == dom.REFUSED
    assert failure is not None and failure.reason == "TOO_MANY_ATTEMPTS"
    assert failure.retry_after and failure.retry_after > 0


def test_unreachable_service_is_one_error(live):
    client = GrpcLinkingClient("127.0.0.1:1", lambda: "", timeout=0.5)
    try:
        with pytest.raises(LinkingFailed) as error:
            client.list_accounts("token")
        assert error.value.reason == "UNAVAILABLE" and error.value.retry_after is None
    finally:
        client.close()


# --- the pages over HTTP ---------------------------------------------------------------------


def _signed_in(live, login: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{live.url}/login")
    response = submit_login(http, live, page, login, PASSWORD)
    assert response.status_code in (302, 303)
    return http


def _post(http, live, path: str, page, **data):
    data["csrf_token"] = csrf_of(page.text)
    return http.post(f"{live.url}{path}", data=data)


def test_attach_by_number_over_http(cabinet):
    live = cabinet.idp
    _, login = make_user(live, family_name="Иванова", given_name="Мария")
    http = _signed_in(live, login)
    home = http.get(f"{live.url}/account")
    assert "Мария Иванова" in home.text and "Персональная информация" in home.text
    assert "Лицевые счета не найдены" in home.text and "Привязать лицевой счет" in home.text
    step1 = http.get(f"{live.url}/account/attach?new=1")
    assert "Укажите данные для привязки лицевого счёта" in step1.text
    assert "12 цифр из Договора на оказание услуг связи" in step1.text
    assert "*Поля, обязательные для заполнения" in step1.text
    # the login link at the top right, as on the main page
    assert 'id="person-name">Мария Иванова<' in step1.text
    assert 'href="/account/profile">Персональная информация</a>' in step1.text
    # no CSRF token: refused, nothing started
    assert http.post(f"{live.url}/account/attach", data={"region": REGION}).status_code == 403
    bad = _post(http, live, "/account/attach", step1, region=REGION, account_number="12345")
    assert bad.status_code == 400 and "12 цифр из договора" in bad.text
    assert 'value="12345"' in bad.text
    step2 = _post(http, live, "/account/attach", step1, region=REGION, account_number=NUMBER)
    assert step2.url.endswith("/account/attach/service") and "Выберите услугу" in step2.text
    # out of order: the result page shows the step the flow is at
    assert http.get(f"{live.url}/account/attach/result").url.endswith("/service")
    step3 = _post(http, live, "/account/attach/service", step2, service_type="home_internet")
    assert "Укажите логин и пароль доступа" in step3.text
    wrong = _post(
        http, live, "/account/attach/proof", step3, login="ivanova.perm", password="wrong"
    )
    assert wrong.status_code == 400 and "не подтверждают право управления" in wrong.text
    assert 'value="ivanova.perm"' in wrong.text and "wrong" not in wrong.text
    # a refresh shows the refusal again, with the login kept
    again = http.get(f"{live.url}/account/attach/proof")
    assert "не подтверждают" in again.text and 'value="ivanova.perm"' in again.text
    done = _post(
        http, live, "/account/attach/proof", wrong, login="ivanova.perm", password="Kv7pT2mq"
    )
    assert done.url.endswith("/account/attach/result"), done.url
    assert f"Лицевой счёт № {NUMBER} привязан" in done.text
    assert done.text.count("✓") == 3
    assert 'id="person-name">Мария Иванова<' in done.text
    home = http.get(f"{live.url}/account")
    assert f"ЛС № {NUMBER}" in home.text and REGION in home.text
    assert "Домашний Интернет" in home.text and "Лицевые счета не найдены" not in home.text


def test_attach_by_service_login_skips_step_two(cabinet):
    live = cabinet.idp
    _, login = make_user(live)
    http = _signed_in(live, login)
    step1 = http.get(f"{live.url}/account/attach?new=1")
    missing = _post(http, live, "/account/attach", step1, region=REGION, service_login="ivanov.ps")
    assert missing.status_code == 400 and "Выберите услугу" in missing.text
    step3 = _post(
        http,
        live,
        "/account/attach",
        step1,
        region=REGION,
        service_login="ivanov.ps",
        service_type="home_internet",
    )
    assert step3.url.endswith("/account/attach/proof") and 'value="ivanov.ps"' in step3.text
    done = _post(http, live, "/account/attach/proof", step3, login="ivanov.ps", password="Rb4xN8wd")
    assert "159000000002 привязан" in done.text


def test_the_main_page_survives_the_linking_service_down(live):
    live.app.extensions["idp.linking"] = client = GrpcLinkingClient(
        "127.0.0.1:1", lambda: "", timeout=0.5
    )
    try:
        _, login = make_user(live)
        http = _signed_in(live, login)
        home = http.get(f"{live.url}/account")
        assert home.status_code == 200 and "сервис временно недоступен" in home.text
        assert "UNAVAILABLE" not in home.text and "Выйти" in home.text
        step1 = http.get(f"{live.url}/account/attach")
        kept = _post(http, live, "/account/attach", step1, region=REGION, account_number=NUMBER)
        assert kept.status_code == 503 and "недоступен" in kept.text
        assert f'value="{NUMBER}"' in kept.text and "UNAVAILABLE" not in kept.text
    finally:
        client.close()


def test_pages_need_a_session(live):
    response = requests.get(f"{live.url}/account/attach", allow_redirects=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")
    assert re.search(r"/login$", response.headers["Location"])


def test_detach_asks_first(cabinet):
    live = cabinet.idp
    sub, login = make_user(live)
    with live.ctx():
        from idp.services.cabinet import parse_lookup

        service = live.services.cabinet
        lookup = parse_lookup(REGION, "", "", "ivanov.ps", dom.HOME_INTERNET)
        flow = service.start(Person(sub), lookup)
        flow = service.prove(Person(sub), flow, lookup, login="ivanov.ps", password="Rb4xN8wd")
        assert flow.state == dom.ATTACHED
    http = _signed_in(live, login)
    home = http.get(f"{live.url}/account")
    assert "/account/accounts/159000000002/detach" in home.text
    confirm = http.get(f"{live.url}/account/accounts/159000000002/detach")
    assert "Отвязать лицевой счёт № 159000000002?" in confirm.text
    # GET asked; nothing changed yet, and a POST without the CSRF token changes nothing
    path = "/account/accounts/159000000002/detach"
    assert http.post(f"{live.url}{path}").status_code == 403
    assert "ЛС № 159000000002" in http.get(f"{live.url}/account").text
    done = _post(http, live, path, confirm)
    assert done.url.endswith("/account?detached=159000000002")
    assert "Лицевой счёт № 159000000002 отвязан" in done.text
    assert "ЛС № 159000000002" not in done.text and "Лицевые счета не найдены" in done.text


def test_the_wizard_speaks_english(cabinet):
    live = cabinet.idp
    _, login = make_user(live)
    http = _signed_in(live, login)
    step1 = http.get(f"{live.url}/account/attach?new=1&lang=en")
    assert "Enter the details of the billing account to attach" in step1.text
    assert "12 digits from your telecommunication services contract" in step1.text
    home = http.get(f"{live.url}/account")
    assert "No billing accounts were found" in home.text
    assert "Attach a billing account" in home.text


def test_back_refresh_and_an_expired_flow(cabinet):
    live = cabinet.idp
    _, login = make_user(live)
    http = _signed_in(live, login)
    step1 = http.get(f"{live.url}/account/attach?new=1")
    step2 = _post(http, live, "/account/attach", step1, region=REGION, account_number=NUMBER)
    step3 = _post(http, live, "/account/attach/service", step2, service_type="home_phone")
    assert "Укажите номер телефона и PIN-код" in step3.text
    # a refresh of step 3 stays there; step 2 opened now shows step 3
    assert "PIN-код" in http.get(f"{live.url}/account/attach/proof").text
    assert http.get(f"{live.url}/account/attach/service").url.endswith("/proof")
    # «Назад» from step 3: step 2 again (a new flow from the same data)
    back = _post(http, live, "/account/attach/back", step3, to="service")
    assert back.url.endswith("/account/attach/service") and "Выберите услугу" in back.text
    # step 1 keeps what was typed
    again = http.get(f"{live.url}/account/attach")
    assert f'value="{NUMBER}"' in again.text and 'value="Пермский край"' in again.text


def test_an_expired_flow_says_so(live, make_linking):
    linking = make_linking(LINKING_FLOW_TTL="2")
    load_demo(linking.sessions, CHEAP)
    live.app.extensions["idp.linking"] = client = GrpcLinkingClient(linking.target, lambda: "")
    try:
        _, login = make_user(live)
        http = _signed_in(live, login)
        step1 = http.get(f"{live.url}/account/attach?new=1")
        _post(http, live, "/account/attach", step1, region=REGION, account_number=NUMBER)
        # the linking service's clock is the test's: two seconds on, the flow has expired
        live.clock.advance(3)
        expired = http.get(f"{live.url}/account/attach/service")
        assert "Время на привязку истекло" in expired.text
        assert "Укажите данные для привязки лицевого счёта" in expired.text
        assert f'value="{NUMBER}"' in expired.text
    finally:
        client.close()


def test_attach_by_home_phone_pin(cabinet):
    live = cabinet.idp
    _, login = make_user(live)
    http = _signed_in(live, login)
    step1 = http.get(f"{live.url}/account/attach?new=1")
    step2 = _post(
        http, live, "/account/attach", step1, region="Москва", phone_number="+7 495 765-43-21"
    )
    step3 = _post(http, live, "/account/attach/service", step2, service_type="home_phone")
    done = _post(
        http, live, "/account/attach/proof", step3, proof_phone="8 495 765-43-21", pin="3907"
    )
    assert "177000000003 привязан" in done.text


def test_too_many_attempts_is_a_plain_message(cabinet):
    live = cabinet.idp
    _, login = make_user(live)
    http = _signed_in(live, login)
    step1 = http.get(f"{live.url}/account/attach?new=1")
    page = _post(
        http,
        live,
        "/account/attach",
        step1,
        region=REGION,
        service_login="ivanova.perm",
        service_type="home_internet",
    )
    for _ in range(10):
        page = _post(
            http, live, "/account/attach/proof", page, login="ivanova.perm", password="nope"
        )
        if page.status_code == 429:
            break
    assert page.status_code == 429
    assert re.search(r"Слишком много попыток\. Попробуйте снова через \d+ мин\.", page.text)
    assert "TOO_MANY_ATTEMPTS" not in page.text and 'value="ivanova.perm"' in page.text


def test_finish_registration_without_attaching(cabinet):
    live = cabinet.idp
    sub, login = make_user(live)
    http = _signed_in(live, login)
    home = http.get(f"{live.url}/account")
    assert "Завершить регистрацию без привязки лицевого счета" in home.text
    done = _post(http, live, "/account/finish-without-attachment", home)
    assert "доступен ограниченный перечень сервисов ЕЛК" in done.text
    assert "Завершить регистрацию без привязки" not in done.text
    assert "Привязать лицевой счет" in done.text
    with live.ctx():
        assert live.services.users.get(sub).attach_skipped_at is not None


def test_a_second_tab_lands_where_the_flow_is(cabinet):
    live = cabinet.idp
    _, login = make_user(live)
    http = _signed_in(live, login)
    step1 = http.get(f"{live.url}/account/attach?new=1")
    step2 = _post(http, live, "/account/attach", step1, region=REGION, account_number=NUMBER)
    step3 = _post(http, live, "/account/attach/service", step2, service_type="home_internet")
    # the other tab still shows step 2 and submits it: step 3, the flow unchanged
    stale = _post(http, live, "/account/attach/service", step2, service_type="home_phone")
    assert stale.url.endswith("/proof") and "Укажите логин и пароль доступа" in stale.text
    done = _post(
        http, live, "/account/attach/proof", step3, login="ivanova.perm", password="Kv7pT2mq"
    )
    assert "привязан" in done.text
    # the other tab submits step 3 again: the result, nothing attached twice
    again = _post(
        http, live, "/account/attach/proof", stale, login="ivanova.perm", password="Kv7pT2mq"
    )
    assert again.url.endswith("/result") and f"{NUMBER} привязан" in again.text
    assert http.get(f"{live.url}/account").text.count(f"ЛС № {NUMBER}") == 1


def test_the_service_down_mid_wizard_loses_nothing(cabinet):
    live = cabinet.idp
    _, login = make_user(live)
    http = _signed_in(live, login)
    step1 = http.get(f"{live.url}/account/attach?new=1")
    step2 = _post(http, live, "/account/attach", step1, region=REGION, account_number=NUMBER)
    step3 = _post(http, live, "/account/attach/service", step2, service_type="home_internet")
    working = live.app.extensions["idp.linking"]
    down = GrpcLinkingClient("127.0.0.1:1", lambda: "", timeout=0.5)
    live.app.extensions["idp.linking"] = down
    try:
        page = http.get(f"{live.url}/account/attach/proof")
        assert page.status_code == 503 and "сейчас недоступен" in page.text
        assert "Попробовать ещё раз" in page.text
        kept = _post(
            http, live, "/account/attach/proof", step3, login="ivanova.perm", password="Kv7pT2mq"
        )
        assert kept.status_code == 503 and "сейчас недоступен" in kept.text
        assert "Kv7pT2mq" not in kept.text
    finally:
        live.app.extensions["idp.linking"] = working
        down.close()
    # back again: the same flow, at step 3, with the login typed while it was down
    page = http.get(f"{live.url}/account/attach/proof")
    assert page.status_code == 200 and 'value="ivanova.perm"' in page.text
    done = _post(
        http, live, "/account/attach/proof", page, login="ivanova.perm", password="Kv7pT2mq"
    )
    assert f"{NUMBER} привязан" in done.text
