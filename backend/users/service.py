"""User use cases: provisioning a user from their token on first sight, and their profile.

The service also remembers, per process, which users' rows already match their token (so a
known user's request costs no statement) and which users it found deleted (so their still
valid tokens get 401 until they expire, instead of provisioning them anew). Both memories are
bounded and safe to lose.
"""

import time
from collections.abc import Callable

from cachetools import LRUCache, TLRUCache

from backend.db import Database
from backend.users.errors import EmailTaken, UserGone
from backend.users.records import UserProfile, UserRecord
from backend.users.repository import UserRepository

MAX_REMEMBERED_USERS = 10_000


class UserService:
    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._known: LRUCache[str, UserProfile] = LRUCache(MAX_REMEMBERED_USERS)
        # user id -> until when its tokens are refused (the latest token's expiry)
        self._gone: TLRUCache[str, float] = TLRUCache(
            MAX_REMEMBERED_USERS, ttu=lambda _key, until, _now: until, timer=clock
        )

    async def sign_in(self, user_id: str, profile: UserProfile) -> None:
        """Make sure the user's row exists and matches `profile`; UserGone if the user was
        deleted while this process knew them."""
        if user_id in self._gone:
            raise UserGone()
        if self._known.get(user_id) == profile:
            return
        # A unique violation on the e-mail has two causes. Another id holds the address: a
        # 409. Or a concurrent first request of this very user inserted the row after this
        # statement's ON CONFLICT (id) check and committed it: the row is visible now, so one
        # retry settles it. Each attempt is its own statement (autocommit).
        for attempt in range(2):
            try:
                async with self._database.connection() as connection:
                    await UserRepository(connection, user_id).provision(profile)
                break
            except EmailTaken:
                if attempt:
                    raise
        # Only a committed row may count as known.
        self._known[user_id] = profile

    def forget(self, user_id: str, *, refuse_until: float) -> None:
        """The user was found deleted: refuse their tokens until `refuse_until` (epoch s)."""
        self._known.pop(user_id, None)
        self._gone[user_id] = refuse_until

    async def profile(self, user_id: str) -> UserRecord:
        async with self._database.connection() as connection:
            user = await UserRepository(connection, user_id).get()
        if user is None:  # known to this process, since deleted
            raise UserGone()
        return user


async def check_user_exists(database: Database, user_id: str) -> None:
    """An id of theirs was not found: is it because the user itself was deleted (by Better
    Auth, on a shared database) since this process provisioned them? Then UserGone: the
    answer is 401, and the process refuses the user's tokens from now on. Services call this
    only on a 404, so it costs a statement only then."""
    async with database.connection() as connection:
        if not await UserRepository(connection, user_id).exists():
            raise UserGone()
