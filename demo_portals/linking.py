"""The portal's call to the linking service: ``ListAccounts`` with the person's own access
token (audience ``urn:elk:linking-service``, scope ``linking``), over the shared contract."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import grpc

from elk_proto.linking.v1 import linking_pb2 as pb
from elk_proto.linking.v1 import linking_pb2_grpc as pb_grpc

SERVICE_NAMES = {
    pb.SERVICE_TYPE_HOME_INTERNET: "Домашний Интернет",
    pb.SERVICE_TYPE_HOME_PHONE: "Домашний телефон",
}

# Plain Russian for the statuses a person can meet; anything else is «недоступен».
PROBLEMS = {
    grpc.StatusCode.UNAUTHENTICATED: "Токен доступа не принят (истёк или отозван) — войдите снова.",
    grpc.StatusCode.PERMISSION_DENIED: "У токена нет права «linking» на чтение лицевых счетов.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "Слишком много запросов — попробуйте через минуту.",
}
UNAVAILABLE = "Сервис лицевых счетов сейчас недоступен — попробуйте обновить страницу позже."


@dataclass(frozen=True)
class Account:
    number: str
    region: str
    services: tuple[str, ...]
    attached_at: str


@dataclass(frozen=True)
class Accounts:
    accounts: tuple[Account, ...] = ()
    problem: str | None = None


class LinkingReader:
    def __init__(self, target: str, timeout: float = 3.0) -> None:
        self._channel = grpc.insecure_channel(target)
        self._stub = pb_grpc.LinkingServiceStub(self._channel)
        self._timeout = timeout

    def list_accounts(self, access_token: str) -> Accounts:
        try:
            response = self._stub.ListAccounts(
                pb.ListAccountsRequest(),
                timeout=self._timeout,
                metadata=(("authorization", f"Bearer {access_token}"),),
            )
        except grpc.RpcError as exc:
            return Accounts(problem=PROBLEMS.get(exc.code(), UNAVAILABLE))
        return Accounts(
            tuple(
                Account(
                    a.number,
                    a.region,
                    tuple(SERVICE_NAMES.get(s, "Другая услуга") for s in a.services),
                    a.attached_at.ToDatetime().strftime("%d.%m.%Y")
                    if a.attached_at.seconds
                    else "",
                )
                for a in response.accounts
            )
        )

    def close(self) -> None:
        self._channel.close()


def _date(timestamp) -> str:
    return timestamp.ToDatetime().strftime("%d.%m.%Y") if timestamp.seconds else ""


def peek_claims(jwt_value: str) -> dict:
    """The payload of a JWT, NOT verified: only to show what the access token says. The
    portal is not its audience; the linking service verifies it."""
    try:
        payload = jwt_value.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
