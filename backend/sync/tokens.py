"""Sync tokens: a position in one user's change log, opaque to clients.

A token is 29 bytes, base64url: a version byte, 4 bytes of a hash of the user id, the change
number and the todo id. The user hash is no secret and no signature (a token only positions
its holder in their own log, and every value is bound as a parameter); it catches the one
mix-up that would otherwise lose changes silently — a client passing one account's token
for another account — and turns it into a resync (410), like a token from the future.
"""

import base64
import binascii
import hashlib
import struct
from uuid import UUID

from backend.sync.errors import InvalidSyncToken
from backend.sync.records import Position

_VERSION = 1
_LAYOUT = struct.Struct(">B4sQ16s")


def _user_hash(user_id: str) -> bytes:
    return hashlib.blake2b(user_id.encode(), digest_size=4).digest()


def encode(user_id: str, position: Position) -> str:
    raw = _LAYOUT.pack(_VERSION, _user_hash(user_id), position.seq, position.id.bytes)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(user_id: str, token: str) -> tuple[Position, bool]:
    """The position `token` names and whether it was issued for `user_id`."""
    if len(token) != 39:  # 29 bytes, unpadded
        raise InvalidSyncToken()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * 3)
    except (binascii.Error, ValueError):
        raise InvalidSyncToken() from None
    if len(raw) != _LAYOUT.size:
        raise InvalidSyncToken()
    version, user_hash, seq, todo_id = _LAYOUT.unpack(raw)
    if version != _VERSION or seq >= 1 << 63:
        raise InvalidSyncToken()
    return Position(seq, UUID(bytes=todo_id)), user_hash == _user_hash(user_id)
