"""The SQL adapter of :class:`idp.persistence.SocialIdentityStore`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.models import SocialIdentity


class SqlSocialIdentityStore:
    def __init__(self, session: Session | scoped_session) -> None:
        self._db = session

    def find(self, provider: str, subject: str) -> SocialIdentity | None:
        return self._db.scalar(
            select(SocialIdentity).where(
                SocialIdentity.provider == provider, SocialIdentity.subject == subject
            )
        )

    def get(self, identity_id: int) -> SocialIdentity | None:
        return self._db.get(SocialIdentity, identity_id)

    def for_user(self, user_id: str) -> list[SocialIdentity]:
        return list(
            self._db.scalars(
                select(SocialIdentity)
                .where(SocialIdentity.user_id == user_id)
                .order_by(SocialIdentity.created_at, SocialIdentity.id)
            )
        )

    def add(self, identity: SocialIdentity) -> None:
        self._db.add(identity)
        self._db.flush()  # the unique (provider, subject) answers now, inside the transaction

    def remove(self, identity: SocialIdentity) -> None:
        self._db.delete(identity)
